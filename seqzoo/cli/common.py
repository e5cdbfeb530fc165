"""Helpers the subcommands share: output verbosity and reading texts for a seq2seq model."""

import argparse
import sys

from seqzoo.errors import InputError
from seqzoo.io import read_lines

TRANSLATE_BATCH = 64


def positive_int(text):
    """An argparse type: an integer >= 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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


def read_texts(path, what):
    """The lines of `path` (`-` is standard input); an empty line is an error naming it."""
    if path == "-":
        texts = [line.rstrip("\n").rstrip("\r") for line in sys.stdin]
    else:
        texts = [text for _, text in read_lines(path, what)]
    return texts


def check_not_empty(texts, path):
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise InputError(f"{path}:{number}: empty line; expected text to translate")


def translate_all(model, texts, **kwargs):
    """`(outputs, scores)` of `model.translate` over `texts`, in batches."""
    outputs, scores = [], []
    for start in range(0, len(texts), TRANSLATE_BATCH):
        result = model.translate(texts[start:start + TRANSLATE_BATCH], return_scores=True,
                                 **kwargs)
        outputs += result["texts"]
        scores += [list(map(float, row)) for row in result["scores"]]
    return outputs, scores
