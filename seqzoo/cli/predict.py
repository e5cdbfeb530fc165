"""`seqzoo predict`: translate text with a saved seq2seq model (or an ensemble of them)."""

import os
import sys

from seqzoo.cli.common import (
    add_decoding_arguments,
    check_not_empty,
    decoding_options,
    load_seq2seq,
    read_texts,
    translate_all,
)
from seqzoo.errors import InputError
from seqzoo.io import atomic_write


def _load_models(paths):
    """One model, or a `Seq2SeqEnsemble` of several (`--model` given more than once)."""
    from seqzoo.models import Seq2SeqEnsemble

    models = [load_seq2seq(path) for path in paths]
    if len(models) == 1:
        return models[0]
    try:
        return Seq2SeqEnsemble(models)
    except ValueError as e:
        raise InputError(f"--model {' '.join(paths)}: cannot decode as an ensemble: {e}") from None


def run(args):
    """Translates each line of `--input` (or stdin) and writes one line per input."""
    if not 1 <= args.n_best <= args.beam_size:
        raise InputError(f"expected 1 <= --n-best <= --beam-size. Received: --n-best "
                         f"{args.n_best}, --beam-size {args.beam_size}")
    model = _load_models(args.model)
    options = decoding_options(args, model, beam=args.beam_size > 1 or args.n_best > 1)
    texts = read_texts(args.input, "input file")
    check_not_empty(texts, args.input)
    if args.output and os.path.exists(args.output) and not args.overwrite:
        raise InputError(f"{args.output} exists; pass --overwrite to replace it")
    outputs, scores = translate_all(model, texts, beam_size=args.beam_size,
                                    n_best=args.n_best, max_length=args.max_length, **options)
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


def add_parser(commands):
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
    add_decoding_arguments(p)
    return p
