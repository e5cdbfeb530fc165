"""`seqzoo finetune`: continue training a saved seq2seq model with a new vocabulary."""

import os

from seqzoo.cli.common import load_seq2seq
from seqzoo.cli.train import (
    add_common_arguments,
    check_output,
    embeddings_spec,
    fit,
    resolve_settings,
    start_run,
    verbosity,
)
from seqzoo.errors import InputError

FREEZE_PARTS = ("encoder", "embeddings", "decoder")


def _new_tokenizers(args, model, corpus):
    """The new (source, target) tokenizers the options ask for; `None` keeps a side."""
    from seqzoo.training.finetune import load_vocabulary_source, train_vocabulary

    shared = model.source_tokenizer is model.target_tokenizer or (
        model.source_tokenizer.get_config() == model.target_tokenizer.get_config())
    given = [v for v in (args.vocab, args.train_vocab) if v is not None]
    if len(given) > 1:
        raise InputError("expected one of --vocab and --train-vocab, not both")
    sides = args.side or ("both" if shared else "source")
    if args.vocab is not None:
        like = model.source_tokenizer if sides != "target" else model.target_tokenizer
        new = load_vocabulary_source(args.vocab, like=like)
    elif args.train_vocab is not None:
        texts = {"source": corpus.sources, "target": corpus.targets,
                 "both": corpus.sources + corpus.targets}[sides]
        like = model.source_tokenizer if sides != "target" else model.target_tokenizer
        new = train_vocabulary(texts, args.train_vocab, like=like)
    else:
        return None, None
    return (new if sides in ("source", "both") else None,
            new if sides in ("target", "both") else None)


def run(args):
    from seqzoo.training.data import read_corpus
    from seqzoo.training.finetune import swap_vocabulary
    from seqzoo.training.freezing import FreezeFor
    from seqzoo.training.trainer import Trainer

    if not args.train or not args.out:
        raise InputError("expected --from MODEL, --train SRC TGT (or FILE.tsv) and --out DIR")
    args.model = "seq2seq_luong"  # settings are checked against the Seq2Seq arguments
    settings, overrides = resolve_settings(args)
    if overrides:
        raise InputError(f"model.* settings {sorted(overrides)}: a fine-tuned model keeps "
                         "the architecture of --from")
    if settings["distribute"] == "multiworker":
        # TensorFlow must set up collective ops before it loads the model to fine-tune.
        raise InputError("--distribute multiworker is not supported by seqzoo finetune; use "
                         "mirrored, or the Python API with distribution_scope first")
    embeddings = embeddings_spec(args)
    check_output(args.out, args.overwrite)
    if args.freeze_steps and not args.freeze:
        raise InputError("--freeze-steps needs --freeze encoder|embeddings|decoder")
    if args.freeze and embeddings and embeddings.get("freeze"):
        raise InputError("expected one of --freeze and --freeze-embeddings, not both")
    model = load_seq2seq(args.from_model)
    corpus = read_corpus(args.train, "train")
    source, target = _new_tokenizers(args, model, corpus)
    new_model, report = swap_vocabulary(model, source, target, init=args.init)
    print(report)
    config = new_model.get_config()
    for key in ("source_tokenizer", "target_tokenizer"):
        config.pop(key)
    freeze = ({"parts": args.freeze, "steps": args.freeze_steps}
              if args.freeze and args.freeze_steps else None)
    callbacks = [FreezeFor(freeze["steps"], freeze["parts"])] if freeze else []
    name = os.path.basename(os.path.normpath(args.from_model))
    trainer = Trainer(args.out, f"finetune of {name}", settings, None, args.train, args.dev,
                      verbose=verbosity(args), model=new_model, callbacks=callbacks,
                      model_config=config, extra={"freeze": freeze} if freeze else None,
                      embeddings=embeddings)
    start_run(trainer, args.overwrite)
    trainer.record["finetune"] = {
        "from": os.path.abspath(args.from_model), "init": args.init, "freeze": freeze,
        "vocabulary": {side: {"kept": c.kept, "added": len(c.added),
                               "dropped": len(c.dropped)}
                       for side, c in report.changes.items()}}
    return fit(trainer)


def add_parser(commands):
    p = commands.add_parser(
        "finetune", help="fine-tune a saved seq2seq model, optionally with a new vocabulary",
        description="Builds a copy of --from with the new vocabulary (embedding and output "
        "rows of shared tokens copied, new tokens' rows the mean of the old ones, all other "
        "weights copied), prints how many tokens were kept, added and dropped, and trains it "
        "on --train like seqzoo train (checkpoints, --resume with seqzoo train --resume DIR).")
    p.add_argument("--from", dest="from_model", required=True, metavar="MODEL",
                   help="a .keras file or a run folder with model.keras")
    p.add_argument("--vocab", help="the new vocabulary: a SentencePiece .model, a tokenizer "
                   ".json, or a vocabulary file (one token a line, <pad> <unk> <s> </s> first)")
    p.add_argument("--train-vocab", type=int, metavar="SIZE",
                   help="instead, build a vocabulary of SIZE tokens on the new training data "
                   "(SentencePiece for a SentencePiece model)")
    p.add_argument("--side", choices=("both", "source", "target"),
                   help="which vocabulary to replace (default: both when the model shares "
                   "one tokenizer, else source)")
    p.add_argument("--init", choices=("mean", "random"), default="mean",
                   help="rows of new tokens: the mean of the old rows (default) or random")
    p.add_argument("--freeze", choices=FREEZE_PARTS,
                   help="keep this part unchanged for the first --freeze-steps steps")
    p.add_argument("--freeze-steps", type=int, default=0, metavar="N")
    add_common_arguments(p)
    return p
