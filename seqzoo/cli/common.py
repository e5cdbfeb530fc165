"""Helpers the subcommands share: output verbosity and reading texts for a seq2seq model."""

import argparse
import os
import sys

from seqzoo.errors import InputError
from seqzoo.io import read_lines, read_stream_lines

TRANSLATE_BATCH = 64
# Default bound on the source tokens of a text to `seqzoo predict` and `eval`.
MAX_SOURCE_LENGTH = 1000


def _int_at_least(minimum, expected):
    """An argparse type: an integer >= `minimum` (argparse names the flag in its error)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
non_negative_int = _int_at_least(0, "an integer >= 0")


def non_negative_float(text):
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


BEAM_OPTIONS = {"length_penalty": "--length-penalty", "coverage_penalty": "--coverage-penalty",
                "length_normalization": "--length-normalization"}


def add_decoding_arguments(p, texts=True):
    """The decoding options of `seqzoo predict`, `eval` and (`texts=False`) `export`."""
    g = p.add_argument_group("decoding options")
    if texts:
        g.add_argument("--max-source-length", type=positive_int, default=MAX_SOURCE_LENGTH,
                       metavar="N", help="refuse input texts of more than N source tokens, "
                       f"naming the line (default {MAX_SOURCE_LENGTH}): the encoder's memory "
                       "grows with the length of the longest text of a batch")
        g.add_argument("--jit-compile", action="store_true",
                       help="compile the search with XLA on TensorFlow: faster decoding, "
                       "slower to compile each new batch shape (JAX always uses XLA)")
        g.add_argument("--replace-unk", action="store_true",
                       help="replace each <unk> of an output by the most attended source "
                       "token (attention models)")
    g.add_argument("--min-length", type=non_negative_int, default=0, metavar="N",
                   help="at least N tokens before </s> (default 0)")
    g.add_argument("--no-repeat-ngram-size", type=non_negative_int, default=0, metavar="N",
                   help="never repeat an n-gram of N tokens within an output (default 0: off)")
    g.add_argument("--length-penalty", type=non_negative_float, default=0.0, metavar="ALPHA",
                   help="GNMT length penalty ((5 + |Y|) / 6) ** ALPHA (beam search; default 0)")
    g.add_argument("--length-normalization", choices=("gnmt", "average"), default="gnmt",
                   help="gnmt: the length penalty above; average: scores per token "
                   "(beam search)")
    g.add_argument("--coverage-penalty", type=non_negative_float, default=0.0, metavar="BETA",
                   help="GNMT coverage penalty (beam search, attention models; default 0)")


def decoding_options(args, model, beam):
    """The search options of the decoding flags; `InputError` where they cannot apply."""
    if args.max_length is not None and args.min_length >= args.max_length:
        raise InputError(f"--min-length {args.min_length} bans </s> up to --max-length "
                         f"{args.max_length}: no output could end; expected --min-length below "
                         "--max-length")
    options = {"min_length": args.min_length, "no_repeat_ngram_size": args.no_repeat_ngram_size,
               "length_penalty": args.length_penalty,
               "coverage_penalty": args.coverage_penalty,
               "length_normalization": args.length_normalization}
    defaults = {"length_penalty": 0.0, "coverage_penalty": 0.0, "length_normalization": "gnmt"}
    given = [flag for key, flag in BEAM_OPTIONS.items() if options[key] != defaults[key]]
    if given and not beam:
        raise InputError(f"{', '.join(given)}: beam-search options; pass --beam-size 2 or more")
    if args.coverage_penalty and not model.has_attention:
        raise InputError("--coverage-penalty needs an attention model; this one has none")
    if getattr(args, "replace_unk", False):
        if not model.has_attention:
            raise InputError("--replace-unk needs an attention model; this one has none")
        options["replace_unk"] = True
    return options


def progress_verbosity():
    """1 (progress bars) on a terminal, else 2 (one line per epoch).

    Output to a file or a pipe gets one line per epoch: progress-bar frames
    would fill it with carriage returns.
    """
    return 1 if sys.stdout.isatty() else 2


def load_seq2seq(path):
    """The `Seq2Seq` model saved at `path`, with both tokenizers (it reads text)."""
    import seqzoo
    from seqzoo.models import Seq2Seq

    model = seqzoo.load(path)
    if not isinstance(model, Seq2Seq):
        raise InputError(f"{path}: expected a seq2seq model, got {type(model).__name__}")
    if model.source_tokenizer is None or model.target_tokenizer is None:
        raise InputError(f"{path}: the model was saved without its tokenizers, so it "
                         "cannot read text")
    return model


def _where(path):
    return "<stdin>" if path == "-" else path


def read_texts(path, what, strip=True):
    """The lines of `path` (`-` is standard input, named `<stdin>` in errors), with
    leading and trailing whitespace removed (`strip`), as `seqzoo train` reads its
    training and dev pairs."""
    if path != "-":
        lines = [text for _, text in read_lines(path, what)]
    elif getattr(sys.stdin, "buffer", None) is None:  # a text stream without bytes (tests)
        lines = [line.rstrip("\n").rstrip("\r") for line in sys.stdin]
    else:
        lines = [text for _, text in read_stream_lines(sys.stdin.buffer, "<stdin>")]
    return [text.strip() for text in lines] if strip else lines


def check_output_file(path, overwrite, flag):
    """Refuses, before any work, an output file that cannot be written: a folder, a
    file there already (without `--overwrite`), a folder that is missing or not
    writable."""
    if os.path.isdir(path):
        raise InputError(f"{flag} {path}: is a folder; expected a file name")
    if os.path.lexists(path) and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{flag} {path}: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{flag} {path}: the folder {folder} is not writable")


def check_not_empty(texts, path):
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise InputError(f"{_where(path)}:{number}: empty line; expected text to translate")


def check_known(texts, path, tokenizer, max_length=None, side="source"):
    """An `InputError` naming the file and line of the first text with unknown
    tokens or (with `max_length`) more than `max_length` source tokens; `side`
    names the vocabulary in the message."""
    for number, text in enumerate(texts, start=1):
        # No tokenizer makes more than 4 tokens of a character (bytes of UTF-8).
        if max_length is not None and len(text) * 4 > max_length:
            length = len(tokenizer.encode_batch([text])[0])
            if length > max_length:
                raise InputError(
                    f"{_where(path)}:{number}: {length} source tokens, more than "
                    f"--max-source-length {max_length}; split the text or raise the bound")
        unknown = tokenizer.unknown_tokens(text)
        if unknown:
            raise InputError(f"{_where(path)}:{number}: {text[:80]!r} has tokens outside the "
                             f"{side} vocabulary: {unknown[:10]}")


def translate_all(model, texts, alignments=False, **kwargs):
    """`(outputs, scores)` of `model.translate` over `texts`, in length-ordered batches of
    `TRANSLATE_BATCH`; with `alignments`, `(outputs, scores, alignments, lengths)`."""
    result = model.translate(texts, return_scores=True, return_alignments=alignments,
                             batch_size=TRANSLATE_BATCH, **kwargs)
    scores = [list(map(float, row)) for row in result["scores"]]
    if alignments:
        return result["texts"], scores, result["alignments"], result["lengths"]
    return result["texts"], scores


def hard_alignment(alignment, length):
    """`"S-T ..."`: for each output token `T` (`</s>` excluded), the most attended source
    token `S` (OpenNMT's `-report_align` pairs)."""
    import numpy as np

    return " ".join(f"{int(np.argmax(alignment[t]))}-{t}" for t in range(length))
