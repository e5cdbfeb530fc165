"""`seqzoo export`: a saved seq2seq model as a TensorFlow SavedModel (`seqzoo.export`)."""

import os
import sys

from seqzoo.cli.common import add_decoding_arguments, decoding_options, positive_int
from seqzoo.errors import InputError
from seqzoo.export.savedmodel import (
    DEFAULT_MAX_LENGTH,
    check_tensorflow_backend,
    export_savedmodel,
    in_graph_tokenizer_kind,
)


def run(args):
    """`seqzoo export`: writes a saved seq2seq model as a SavedModel."""
    import seqzoo
    from seqzoo.models import Seq2Seq

    if args.format != "savedmodel":
        raise InputError(f"expected --format savedmodel. Received: --format {args.format}")
    path = args.model
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    out = os.path.abspath(args.out)
    if os.path.lexists(args.out) and not args.overwrite:
        raise InputError(f"{args.out} exists; pass --overwrite to replace it")
    if os.path.exists(path) and (os.path.abspath(path) + os.sep).startswith(out + os.sep):
        raise InputError(f"--out {args.out} holds the model {path}; choose another folder")
    check_tensorflow_backend()
    model = seqzoo.load(path, compile=False)
    if not isinstance(model, Seq2Seq):
        raise InputError(f"{path}: expected a seq2seq model, got {type(model).__name__}")
    options = decoding_options(args, model, beam=args.beam_size > 1)
    names = export_savedmodel(model, args.out, beam_size=args.beam_size, n_best=args.n_best,
                              max_length=args.max_length, overwrite=args.overwrite, **options)
    print(f"wrote {args.out}: signatures {', '.join(names)}")
    kinds = [in_graph_tokenizer_kind(t) for t in (model.source_tokenizer, model.target_tokenizer)]
    if not all(kinds):
        print("no 'translate' (text) signature: the model's tokenizers are missing or cannot "
              "run inside a TensorFlow graph (SentencePiece needs tensorflow-text); feed token "
              "ids to 'greedy'/'beam'", file=sys.stderr)
    return 0


def add_parser(commands):
    p = commands.add_parser(
        "export", help="export a saved seq2seq model (TensorFlow SavedModel)",
        description="Writes a TensorFlow SavedModel with greedy and beam search signatures "
        "on token ids, and a 'translate' signature on strings for character and word "
        "tokenizers. Needs the TensorFlow backend.")
    p.add_argument("--model", required=True, help="a .keras file or a folder with model.keras")
    p.add_argument("--out", required=True, help="the SavedModel folder to write")
    p.add_argument("--format", default="savedmodel", choices=["savedmodel"])
    p.add_argument("--beam-size", type=positive_int, default=4, help="1 = greedy search only")
    p.add_argument("--n-best", type=positive_int, default=1,
                   help="hypotheses of the 'beam' signature")
    p.add_argument("--max-length", type=positive_int, default=DEFAULT_MAX_LENGTH,
                   help="most output tokens, </s> included")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_decoding_arguments(p, texts=False)
    return p
