"""`seqzoo train`: train a seq2seq preset on parallel files, with checkpoints and resume."""

import json
import os
import sys

from seqzoo.cli.common import positive_int, progress_verbosity
from seqzoo.errors import InputError

# Options that are shortcuts for settings: (flag, setting, type, help).
SHORTCUTS = (
    ("--epochs", "epochs", int, "number of epochs (default 10)"),
    ("--batch-size", "batch_size", int, "sequences per batch (default 64)"),
    ("--learning-rate", "learning_rate", float, "Adam learning rate (default 1e-3)"),
    ("--schedule", "schedule", str, "constant | exponential | warmup | plateau | cosine (over "
     "the steps, or over --budget)"),
    ("--budget", "budget_minutes", float, "stop training after MINUTES of wall-clock time, dev "
     "evaluations included"),
    ("--average-from", "average_from", float, "average the weights every average_every steps "
     "from this share of training on (e.g. 0.8); kept if better on dev"),
    ("--clipnorm", "clipnorm", float, "clip gradients by global norm (default 5.0)"),
    ("--clipvalue", "clipvalue", float, "clip gradients by value instead (sets clipnorm off)"),
    ("--accumulate", "accumulate", int, "average the gradients of N batches before each "
     "update: the update of an N times larger batch (default 1)"),
    ("--tokenizer", "tokenizer", str, "char | word | sentencepiece (default char)"),
    ("--vocab-size", "vocab_size", int, "SentencePiece size / most words (default 8000)"),
    ("--monitor", "monitor", str, "dev metric for the best checkpoint (default dev_loss)"),
    ("--patience", "patience", int, "epochs without improvement before early stopping"),
    ("--checkpoint-every", "checkpoint_every", int, "also checkpoint every N steps"),
    ("--keep-checkpoints", "keep_checkpoints", int, "how many recent checkpoints to keep"),
    ("--seed", "seed", int, "random seed (default 0): CPU runs repeat exactly"),
    ("--distribute", "distribute", str, "mirrored | multiworker: train on several devices"),
)
RUN_FILES = ("config.json", "run.json", "model.keras", "checkpoints", "tokenizers",
             "embeddings.json")
# The statuses of a run that has ended: `--resume` leaves it as it is.
FINISHED = ("completed", "early stopped", "budget spent")
# What a start writes before its config.json (`Trainer.prepare`): alone, they are
# a start that never began to train.
BEFORE_CONFIG = {"tokenizers", "embeddings.json"}


def _shortcut_sources(args):
    """`[(option, {key: value})]` of the options given, so that an error names its option."""
    sources = []
    for flag, key, _, _ in SHORTCUTS:
        value = getattr(args, key)
        if value is not None:
            sources.append((f"{flag} {value}", {key: value}))
    for flag, key in (("--early-stopping", "early_stopping"), ("--tensorboard", "tensorboard")):
        if getattr(args, key):
            sources.append((flag, {key: True}))
    if args.mixed_precision:
        sources.append((f"--mixed-precision {args.mixed_precision}",
                        {"mixed_precision": args.mixed_precision}))
    return sources


def _model_arguments(preset):
    from seqzoo.models.registry import MODEL_CLASSES, PRESETS, _arguments

    seq2seq = sorted(n for n, p in PRESETS.items() if p["class"] == "Seq2Seq")
    if preset not in PRESETS:
        raise InputError(f"--model {preset!r}: unknown preset; expected one of {seq2seq}")
    if preset not in seq2seq:
        raise InputError(f"--model {preset}: seqzoo train trains seq2seq presets (parallel "
                         f"data), one of {seq2seq}; for other models use the Python API")
    return set(_arguments(MODEL_CLASSES[PRESETS[preset]["class"]])) - {
        "source_vocab_size", "target_vocab_size", "source_tokenizer", "target_tokenizer"}


def embeddings_spec(args):
    """The run's pre-trained embeddings (`seqzoo.training.pretrained`), or `None`."""
    from seqzoo.training.pretrained import check_spec

    return check_spec({
        "source": args.source_embeddings and os.path.abspath(args.source_embeddings),
        "target": args.target_embeddings and os.path.abspath(args.target_embeddings),
        "format": args.embeddings_format, "freeze": args.freeze_embeddings,
        "unfreeze_after": args.unfreeze_embeddings_after})


def resolve_settings(args):
    """`(settings, model_overrides)` from defaults, `--config`, `--set` and the shortcuts."""
    from seqzoo.training.config import parse_assignments, read_config_file, resolve

    sources = []
    if args.config:
        sources.append((args.config, read_config_file(args.config)))
    sources.append(("--set", parse_assignments(args.set)))
    sources += _shortcut_sources(args)
    return resolve(sources, _model_arguments(args.model))


def check_output(out, overwrite):
    """Refuses to write over an earlier run unless `--overwrite`."""
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
    if "checkpoints" in present and not _has_checkpoint(out):
        present.remove("checkpoints")
    if "config.json" not in present and set(present) <= BEFORE_CONFIG:
        present = []  # a start killed before its config.json: it never began to train
    if present and not overwrite:
        raise InputError(f"{out} already holds a run ({', '.join(present)}); continue it with "
                         "--resume, or pass --overwrite to start again")
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out}: exists and is not a folder")


def start_run(trainer, overwrite):
    """Prepares the trainer, then (with `--overwrite`) removes an earlier run's files and
    writes `config.json`: bad data or settings fail in `prepare`, before anything is lost."""
    from seqzoo.training.divergence import DIVERGED

    trainer.prepare()
    if overwrite:
        for name in ("run.json", "model.keras"):
            path = os.path.join(trainer.out, name)
            if os.path.exists(path):
                os.remove(path)
        for step in trainer.checkpoints.steps():
            os.remove(trainer.checkpoints.path(step))
        # An earlier run's NaN mark would set the new run's checkpoints aside on --resume.
        mark = os.path.join(trainer.checkpoints.directory, DIVERGED)
        if os.path.exists(mark):
            os.remove(mark)
    from seqzoo.io import atomic_write

    with atomic_write(os.path.join(trainer.out, "config.json")) as f:
        json.dump(trainer.run_config(), f, indent=2)


def verbosity(args):
    return 0 if args.quiet else progress_verbosity()


def fit(trainer):
    from seqzoo.training.trainer import TrainingError

    try:
        trainer.fit()
    except TrainingError as e:
        print(f"seqzoo train: {e}", file=sys.stderr)
        return 1
    out = trainer.out
    best = trainer.state["best"]
    print(f"saved {os.path.join(out, 'model.keras')} and {os.path.join(out, 'run.json')}"
          + (f"; best {trainer.settings['monitor']} {best['value']:.4f} at epoch "
             f"{best['epoch']}" if best else ""))
    return 0


def stored_settings(config):
    """The settings of a run's `config.json` to resume it with: a run from before the
    `budget_schedule` setting keeps the schedule it began with (by the clock)."""
    return {"budget_schedule": "time", **config["settings"]}


def resume(args):
    from seqzoo.training.config import resolve
    from seqzoo.training.trainer import Trainer

    out = args.resume
    path = os.path.join(out, "config.json")
    if not os.path.isfile(path):
        raise InputError(f"--resume {out}: not a run folder of seqzoo train (no config.json)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        settings, _ = resolve([(path, stored_settings(config))])
        preset, overrides = config["preset"], config["model_overrides"]
        train, dev = config["train"], config["dev"]
        model_config, freeze = config.get("model_config"), config.get("freeze")
        embeddings = config.get("embeddings")
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a valid run config ({e})") from None
    record = os.path.join(out, "run.json")
    run_record = {}
    if os.path.isfile(record):
        with open(record, encoding="utf-8") as f:
            run_record = json.load(f)
        status = run_record.get("status")
        if status in FINISHED:
            print(f"{out}: the run is already {status}; nothing to do")
            return 0
    if model_config is not None and not _has_checkpoint(out):
        # A fine-tune starts from the weights of --from, which the run folder does not
        # hold: without a checkpoint, a resume would start from random weights.
        origin = (run_record.get("finetune") or {}).get("from", "MODEL")
        raise InputError(f"--resume {out}: the fine-tune stopped before its first checkpoint, "
                         f"and its starting weights are those of --from; start it again: "
                         f"seqzoo finetune --from {origin} ... --out {out} --overwrite")
    trainer = Trainer(out, preset, settings, overrides, train, dev, verbose=verbosity(args),
                      model_config=model_config, extra={"freeze": freeze} if freeze else None,
                      embeddings=embeddings)
    trainer.prepare(resume=True)
    checkpoint = trainer.restore(fall_back=getattr(args, "resume_from_latest_good", False))
    for reason in trainer.unreadable:
        print(f"passed over an unreadable checkpoint: {reason}")
    if trainer.set_aside:
        print(f"the run stopped on a NaN loss: moved the {len(trainer.set_aside)} "
              f"checkpoint(s) written after its last sane one into "
              f"{os.path.dirname(trainer.set_aside[0])}")
    if checkpoint is None and embeddings:
        trainer.load_pretrained()  # starting again: from the vectors, as the run did
    if freeze and freeze["steps"] > trainer.state["step"]:
        from seqzoo.training.freezing import FreezeFor

        trainer.callbacks.append(FreezeFor(freeze["steps"] - trainer.state["step"],
                                           freeze["parts"]))
    st = trainer.state
    print(f"resuming {out} from {checkpoint or 'the start (no checkpoint yet)'}: epoch "
          f"{st['epoch'] + 1}, batch {st['batch']}, step {st['step']}")
    return fit(trainer)


def _has_checkpoint(out):
    from seqzoo.training.checkpoints import checkpoint_steps

    return bool(checkpoint_steps(os.path.join(out, "checkpoints")))


def _options_besides_resume(args):
    """The options of `args` given a value other than their default, but those that go
    with `--resume` (which would otherwise be dropped without a word)."""
    import argparse

    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    defaults = vars(parser.parse_args([]))
    flags = {key: flag for flag, key, *_ in SHORTCUTS}
    return [flags.get(key, "--" + key.replace("_", "-")) for key, value in vars(args).items()
            if key in defaults and value != defaults[key]
            and key not in ("resume", "resume_from_latest_good", "quiet")]


def run(args):
    from seqzoo.training.trainer import Trainer

    if args.resume:
        given = _options_besides_resume(args)
        if given:
            raise InputError(f"--resume DIR continues a run with its own settings (its "
                             f"config.json); don't pass {', '.join(given)} with it")
        return resume(args)
    if getattr(args, "resume_from_latest_good", False):
        raise InputError("--resume-from-latest-good goes with --resume DIR")
    if not args.train or not args.out:
        raise InputError("expected --train SRC TGT (or FILE.tsv) and --out DIR "
                         "(or --resume DIR)")
    settings, overrides = resolve_settings(args)
    embeddings = embeddings_spec(args)
    check_output(args.out, args.overwrite)
    trainer = Trainer(args.out, args.model, settings, overrides, args.train, args.dev,
                      verbose=verbosity(args), embeddings=embeddings)
    start_run(trainer, args.overwrite)
    data = trainer.record["data"]
    print(f"{args.model}: {trainer.model.count_params():,} parameters; train "
          f"{data['train']['pairs']} "
          f"pairs ({data['train']['skipped']['count']} skipped)"
          + (f", dev {data['dev']['pairs']} pairs" if "dev" in data else "")
          + f"; vocabularies {trainer.source_tokenizer.vocab_size} / "
          f"{trainer.target_tokenizer.vocab_size}; {len(trainer.batches)} batches an epoch")
    return fit(trainer)


def settings_epilog():
    from seqzoo.training.config import DEFAULTS

    return ("settings for --set KEY=VALUE and --config (defaults): "
            + ", ".join(f"{k}={json.dumps(v)}" for k, v in DEFAULTS.items())
            + "; model.<argument>=VALUE overrides a preset argument")


def add_common_arguments(p):
    p.add_argument("--train", nargs="+", metavar="FILE",
                   help="training data: SOURCE TARGET files, or one FILE.tsv")
    p.add_argument("--dev", nargs="+", metavar="FILE", help="dev data, the same way")
    p.add_argument("--out", help="the run folder (model, checkpoints, run.json)")
    p.add_argument("--config", help="a JSON file of settings")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a setting, e.g. --set epochs=5 or --set model.units=256 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    for flag, key, kind, text in SHORTCUTS:
        metavar = "MINUTES" if key == "budget_minutes" else kind.__name__.upper()
        p.add_argument(flag, dest=key, type=kind, help=text, metavar=metavar)
    p.add_argument("--early-stopping", action="store_true",
                   help="stop when --monitor has not improved for --patience epochs")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    p.add_argument("--mixed-precision", nargs="?", const="auto",
                   choices=("auto", "float16", "bfloat16"),
                   help="compute in float16 with loss scaling on a GPU, bfloat16 elsewhere "
                   "(auto, the default of the flag), or as named; attention and losses stay "
                   "float32")
    v = p.add_argument_group("pre-trained embeddings (GloVe, word2vec, fastText .vec; gzip too)")
    v.add_argument("--source-embeddings", metavar="PATH",
                   help="start the source embedding from these word vectors")
    v.add_argument("--target-embeddings", metavar="PATH",
                   help="start the target embedding from these word vectors")
    v.add_argument("--embeddings-format", default="auto",
                   choices=("auto", "glove", "word2vec", "word2vec-binary", "fasttext"),
                   help="the vectors files' format (default: detected)")
    v.add_argument("--freeze-embeddings", action="store_true",
                   help="keep the pre-trained embeddings unchanged (the whole run, or "
                   "--unfreeze-embeddings-after epochs)")
    v.add_argument("--unfreeze-embeddings-after", type=positive_int, metavar="EPOCHS",
                   help="train the frozen embeddings from this many epochs on")


def add_parser(commands):
    p = commands.add_parser(
        "train", help="train a seq2seq preset on parallel text files",
        description="Train a seq2seq preset: builds tokenizers, trains with a progress bar, "
        "evaluates on the dev set each epoch, checkpoints, and writes model.keras and run.json "
        "into --out. Settings: seqzoo.training.config.DEFAULTS, via --config, --set or the "
        "options below.", epilog=settings_epilog())
    p.add_argument("--model", default="seq2seq_luong", help="a seq2seq preset (seqzoo list)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    p.add_argument("--resume-from-latest-good", action="store_true",
                   help="with --resume: pass over checkpoints that cannot be read (corrupt, "
                   "truncated; they stay on disk) and go on from the newest readable one")
    add_common_arguments(p)
    return p
