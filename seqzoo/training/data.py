"""The data side of a training run: parallel files, tokenizers, batches."""

import os
import tempfile

from seqzoo.data import BucketedBatches, encode_parallel, read_parallel
from seqzoo.data.corpus import SkippedPair
from seqzoo.errors import DataError, InputError
from seqzoo.text import CharTokenizer, SentencePieceTokenizer, WordTokenizer, load_tokenizer


def read_corpus(paths, what):
    """A `ParallelCorpus` from `[SRC, TGT]` or `[FILE.tsv]`."""
    if not paths or len(paths) > 2:
        raise InputError(f"--{what}: expected SOURCE TARGET or one FILE.tsv. Received: "
                         f"{paths!r}")
    return read_parallel(*paths, log=False)


def build_tokenizer(kind, texts, settings, prefix):
    """A tokenizer of `kind` built (or, for SentencePiece, trained) on `texts`."""
    if kind == "char":
        return CharTokenizer.build(texts, min_freq=settings["min_freq"])
    if kind == "word":
        return WordTokenizer.build(texts, min_freq=settings["min_freq"],
                                   max_size=settings["vocab_size"])
    return SentencePieceTokenizer.train_from_texts(
        texts, prefix, settings["vocab_size"], model_type=settings["sentencepiece_type"])


def make_tokenizers(corpus, settings):
    """Builds (or trains) the source and target tokenizers of a corpus."""
    with tempfile.TemporaryDirectory(prefix="seqzoo-tokenizers-") as directory:
        return _make_tokenizers(corpus, settings, directory)


def save_tokenizers(source, target, directory):
    source.save(os.path.join(directory, "source.json"))
    target.save(os.path.join(directory, "target.json"))


def _make_tokenizers(corpus, settings, directory):
    source_kind = settings["tokenizer"]
    target_kind = settings["target_tokenizer"] or source_kind
    if settings["shared_vocabulary"]:
        if source_kind != target_kind:
            raise InputError("shared_vocabulary needs one tokenizer kind for both sides. "
                             f"Received: tokenizer={source_kind}, target_tokenizer={target_kind}")
        shared = build_tokenizer(source_kind, corpus.sources + corpus.targets, settings,
                                 os.path.join(directory, "shared"))
        source, target = shared, shared
    else:
        source = build_tokenizer(source_kind, corpus.sources, settings,
                                 os.path.join(directory, "source"))
        target = build_tokenizer(target_kind, corpus.targets, settings,
                                 os.path.join(directory, "target"))
    return source, target


def load_tokenizers(directory):
    """The tokenizers a run saved (for `--resume`)."""
    return (load_tokenizer(os.path.join(directory, "source.json")),
            load_tokenizer(os.path.join(directory, "target.json")))


def encode_corpus(corpus, source_tokenizer, target_tokenizer, max_length=None):
    """`(source_ids, target_ids, skipped)`: pairs longer than `max_length` tokens are skipped."""
    source_ids, target_ids = encode_parallel(corpus, source_tokenizer, target_tokenizer)
    skipped = list(corpus.skipped)
    if max_length is None:
        return source_ids, target_ids, skipped
    kept_s, kept_t = [], []
    for s, t, line in zip(source_ids, target_ids, corpus.line_numbers):
        if len(s) > max_length or len(t) > max_length:
            skipped.append(SkippedPair(corpus.source_path, line, "too_long",
                                       f"{len(s)} source / {len(t)} target tokens"))
        else:
            kept_s.append(s)
            kept_t.append(t)
    if not kept_s:
        raise DataError(f"no pairs left after filtering: every pair is longer than "
                        f"max_length={max_length} tokens", path=corpus.source_path)
    return kept_s, kept_t, skipped


def make_batches(source_ids, target_ids, settings, shuffle=True):
    """The run's bucketed batches. On JAX, which compiles the training step once per
    batch shape, lengths are padded to a multiple of 8 (masked: the same results)
    so that the epochs see a few shapes instead of one per longest pair."""
    import keras

    multiple = 8 if keras.backend.backend() == "jax" else 1
    return BucketedBatches(source_ids, target_ids, batch_size=settings["batch_size"],
                           num_buckets=settings["num_buckets"], shuffle=shuffle,
                           seed=settings["seed"], pad_to_multiple=multiple)


def describe_skipped(skipped, limit=5):
    """A JSON-friendly summary of skipped pairs: counts by reason and the first few."""
    reasons = {}
    for pair in skipped:
        reasons[pair.reason] = reasons.get(pair.reason, 0) + 1
    return {"count": len(skipped), "by_reason": reasons,
            "first": [f"{p.path}:{p.line}: {p.reason} ({p.detail})" for p in skipped[:limit]]}
