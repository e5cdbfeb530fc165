"""`seqzoo predict` and `seqzoo eval`: use a saved seq2seq model on text files."""

import os
import sys

from seqzoo.errors import InputError
from seqzoo.io import atomic_write, read_lines

BATCH = 64


def _load_seq2seq(path):
    import seqzoo
    from seqzoo.models import Seq2Seq

    model = seqzoo.load(path)
    if not isinstance(model, Seq2Seq):
        raise InputError(f"{path}: expected a seq2seq model, got {type(model).__name__}")
    if model.source_tokenizer is None or model.target_tokenizer is None:
        raise InputError(f"{path}: the model was saved without its tokenizers, so it "
                         "cannot read text")
    return model


def _load_models(paths):
    """One model, or a `Seq2SeqEnsemble` of several (`--model` given more than once)."""
    from seqzoo.models import Seq2SeqEnsemble

    models = [_load_seq2seq(path) for path in paths]
    if len(models) == 1:
        return models[0]
    try:
        return Seq2SeqEnsemble(models)
    except ValueError as e:
        raise InputError(f"--model {' '.join(paths)}: cannot decode as an ensemble: {e}") from None


def _read_texts(path, what):
    if path == "-":
        return [line.rstrip("\n").rstrip("\r") for line in sys.stdin]
    return [text for _, text in read_lines(path, what)]


def _translate_all(model, texts, **kwargs):
    outputs, scores = [], []
    for start in range(0, len(texts), BATCH):
        result = model.translate(texts[start:start + BATCH], return_scores=True, **kwargs)
        outputs += result["texts"]
        scores += [list(map(float, row)) for row in result["scores"]]
    return outputs, scores


def _check_empty(texts, path):
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise InputError(f"{path}:{number}: empty line; expected text to translate")


def predict(args):
    """Translates each line of `--input` (or stdin) and writes one line per input."""
    if not 1 <= args.n_best <= args.beam_size:
        raise InputError(f"expected 1 <= --n-best <= --beam-size. Received: --n-best "
                         f"{args.n_best}, --beam-size {args.beam_size}")
    model = _load_models(args.model)
    texts = _read_texts(args.input, "input file")
    _check_empty(texts, args.input)
    if args.output and os.path.exists(args.output) and not args.overwrite:
        raise InputError(f"{args.output} exists; pass --overwrite to replace it")
    outputs, scores = _translate_all(model, texts, beam_size=args.beam_size,
                                     n_best=args.n_best, max_length=args.max_length)
    lines = []
    for index, (hyps, hyp_scores) in enumerate(zip(outputs, scores)):
        if args.n_best == 1:
            lines.append(hyps + (f"\t{hyp_scores[0]:.4f}" if args.scores else ""))
        else:
            lines += [f"{index}\t{h}\t{s:.4f}" for h, s in zip(hyps, hyp_scores)]
    text = "".join(line + "\n" for line in lines)
    if args.output:
        with atomic_write(args.output) as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def evaluate(args):
    """Translates `--source` and scores it against `--target`."""
    import numpy as np

    from seqzoo.data import decoder_io, pad_sequences
    from seqzoo.metrics import character_error_rate, word_error_rate

    model = _load_seq2seq(args.model)
    sources = _read_texts(args.source, "source file")
    targets = _read_texts(args.target, "target file")
    if len(sources) != len(targets):
        raise InputError(f"{args.source} has {len(sources)} lines but {args.target} has "
                         f"{len(targets)}; expected aligned files")
    _check_empty(sources, args.source)
    outputs, _ = _translate_all(model, sources, beam_size=args.beam_size,
                                max_length=args.max_length)
    exact = float(np.mean([o == t for o, t in zip(outputs, targets)]))
    dec_in, dec_out = decoder_io(model.target_tokenizer.encode_batch(targets))
    x = {"source_ids": pad_sequences(model.source_tokenizer.encode_batch(sources)),
         "decoder_input_ids": dec_in}
    model.compile()
    forced = model.evaluate(x, dec_out, verbose=0, return_dict=True, batch_size=BATCH)
    report = {
        "sentences": len(sources),
        "exact_match": exact,
        "token_accuracy (teacher forced)": forced["token_accuracy"],
        "perplexity (teacher forced)": forced["perplexity"],
        "character_error_rate": character_error_rate(outputs, targets),
        "word_error_rate": word_error_rate(outputs, targets),
    }
    from seqzoo.text import CharTokenizer

    if not isinstance(model.target_tokenizer, CharTokenizer):
        import sacrebleu  # word-level and subword targets

        report["bleu"] = float(sacrebleu.corpus_bleu(outputs, [targets]).score)
    for name, value in report.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    return 0


def add_parsers(commands):
    p = commands.add_parser("predict", help="translate text with a saved seq2seq model")
    p.add_argument("--model", required=True, action="append",
                   help="a .keras file or a folder with model.keras; given more than once, "
                   "the models decode as an ensemble (the mean of their log-probabilities; "
                   "they must share their vocabularies)")
    p.add_argument("--input", default="-", help="one text per line (default: stdin)")
    p.add_argument("--output", help="write here instead of stdout (atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy search")
    p.add_argument("--n-best", type=int, default=1,
                   help="hypotheses per input; above 1 each line is INDEX<TAB>TEXT<TAB>SCORE")
    p.add_argument("--scores", action="store_true", help="append <TAB>SCORE to each line")
    p.add_argument("--max-length", type=int, help="most output tokens")
    p.set_defaults(func=predict)
    e = commands.add_parser("eval", help="score a saved seq2seq model on parallel files")
    e.add_argument("--model", required=True, help="a .keras file or a folder with model.keras")
    e.add_argument("--source", required=True, help="source texts, one per line")
    e.add_argument("--target", required=True, help="reference texts, aligned with --source")
    e.add_argument("--beam-size", type=int, default=1)
    e.add_argument("--max-length", type=int)
    e.set_defaults(func=evaluate)
