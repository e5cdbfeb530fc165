"""`seqzoo predict`: translate text with a saved seq2seq model (or an ensemble of them)."""

import sys

from seqzoo.cli.common import (
    add_decoding_arguments,
    check_known,
    check_not_empty,
    check_output_file,
    decoding_options,
    hard_alignment,
    load_seq2seq,
    positive_int,
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
    if args.output:
        check_output_file(args.output, args.overwrite, "--output")
    model = _load_models(args.model)
    model.search_jit_compile = args.jit_compile
    options = decoding_options(args, model, beam=args.beam_size > 1 or args.n_best > 1)
    texts = read_texts(args.input, "input file")
    check_not_empty(texts, args.input)
    check_known(texts, args.input, model.source_tokenizer, args.max_source_length)
    if args.prefix:
        prefixes = read_texts(args.prefix, "prefix file", strip=False)
        if len(prefixes) != len(texts):
            raise InputError(f"--prefix {args.prefix} has {len(prefixes)} lines but the input "
                             f"has {len(texts)}; expected one prefix (or an empty line) per "
                             "input line")
        check_known(prefixes, args.prefix, model.target_tokenizer, side="target")
        options["prefixes"] = prefixes
    if args.report_align and not model.has_attention:
        raise InputError("--report-align needs an attention model; this one has none")
    decoded = translate_all(model, texts, alignments=args.report_align,
                            beam_size=args.beam_size, n_best=args.n_best,
                            max_length=args.max_length, **options)
    outputs, scores = decoded[:2]
    aligns = decoded[2] if args.report_align else [None] * len(texts)
    lengths = decoded[3] if args.report_align else [None] * len(texts)

    def align(index, rank):
        if not args.report_align:
            return ""
        return " ||| " + hard_alignment(aligns[index][rank], lengths[index][rank])

    lines = []
    for index, (hyps, hyp_scores) in enumerate(zip(outputs, scores)):
        if args.n_best == 1:
            lines.append(hyps + align(index, 0)
                         + (f"\t{hyp_scores[0]:.4f}" if args.scores else ""))
        else:
            lines += [f"{index}\t{h}{align(index, rank)}\t{s:.4f}"
                      for rank, (h, s) in enumerate(zip(hyps, hyp_scores))]
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
    p.add_argument("--beam-size", type=positive_int, default=1, help="1 = greedy search")
    p.add_argument("--n-best", type=positive_int, default=1,
                   help="hypotheses per input; above 1 each line is INDEX<TAB>TEXT<TAB>SCORE")
    p.add_argument("--scores", action="store_true", help="append <TAB>SCORE to each line")
    p.add_argument("--max-length", type=positive_int, help="most output tokens")
    p.add_argument("--prefix", metavar="FILE",
                   help="target prefixes, one per input line (empty: none): each output "
                   "starts with its prefix")
    p.add_argument("--report-align", action="store_true",
                   help="append ' ||| S-T ...' to each output: for each output token T, the "
                   "most attended source token S (attention models)")
    add_decoding_arguments(p)
    return p
