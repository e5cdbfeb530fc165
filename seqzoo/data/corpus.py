"""Reading and validating parallel corpora (source/target text pairs).

A corpus is two aligned files (line `i` of the source translates line `i` of
the target) or one TSV file of `source<TAB>target` lines. Bad input is never
loaded silently: misaligned files and malformed lines raise a `DataError`
with the file and line, and every pair left out by a filter is recorded in
`ParallelCorpus.skipped` and logged.
"""

import dataclasses
import logging
import os
from typing import NamedTuple

from seqzoo.errors import ArgumentError, DataError
from seqzoo.io import read_lines

logger = logging.getLogger("seqzoo")

EMPTY = "empty"
TOO_LONG = "too_long"
_MODES = ("skip", "error")
_NUM_LOGGED = 5


class SkippedPair(NamedTuple):
    """A pair left out of a corpus, and why.

    Attributes:
        path: the file holding the offending line.
        line: the 1-based line number.
        reason: `"empty"` or `"too_long"`.
        detail: what exactly was wrong, e.g. `"target length 12 > max_length=10"`.
    """

    path: str
    line: int
    reason: str
    detail: str = ""


@dataclasses.dataclass
class ParallelCorpus:
    """Aligned source and target texts, with where each came from.

    Attributes:
        sources: the source texts, stripped of surrounding whitespace.
        targets: the target texts, aligned with `sources`.
        line_numbers: the 1-based line of each kept pair.
        skipped: a `SkippedPair` for every pair left out.
        max_length: the length limit the corpus was read with, or `None`.
        source_path: the source (or TSV) file, when read from files.
        target_path: the target (or TSV) file, when read from files.
    """

    sources: list
    targets: list
    line_numbers: list
    skipped: list = dataclasses.field(default_factory=list)
    max_length: int | None = None
    source_path: str | None = None
    target_path: str | None = None

    def __post_init__(self):
        sizes = (len(self.sources), len(self.targets), len(self.line_numbers))
        if len(set(sizes)) != 1:
            raise ArgumentError(
                "Expected as many sources, targets and line numbers. Received: "
                f"len(sources)={sizes[0]}, len(targets)={sizes[1]}, "
                f"len(line_numbers)={sizes[2]}"
            )

    def __len__(self):
        return len(self.sources)

    @property
    def num_skipped(self):
        """The number of pairs left out."""
        return len(self.skipped)

    def count_skipped(self, reason):
        """The number of pairs left out for `reason` (`"empty"` or `"too_long"`)."""
        return sum(1 for s in self.skipped if s.reason == reason)

    def summary(self):
        """A one-line account of what was kept and skipped.

        Returns:
            e.g. `"kept 98 pairs, skipped 3: 1 empty, 2 longer than max_length=50"`.
        """
        return f"kept {len(self)} pairs, {self._skipped_text()}"

    def _skipped_text(self):
        text = f"skipped {self.num_skipped}: {self.count_skipped(EMPTY)} empty"
        if self.max_length is not None:
            text += f", {self.count_skipped(TOO_LONG)} longer than max_length={self.max_length}"
        return text


def _num_tokens(text):
    return len(text.split())


def _check_arguments(max_length, length_fn, on_long, on_empty):
    for name, value in (("on_long", on_long), ("on_empty", on_empty)):
        if value not in _MODES:
            raise ArgumentError(f"Received: {name}={value!r}; expected one of {_MODES}")
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        raise ArgumentError(f"Received: max_length={max_length!r}; expected an int >= 1 or None")
    if length_fn is not None and not callable(length_fn):
        raise ArgumentError(f"Received: length_fn={length_fn!r}; expected a callable or None")


def _file_pairs(source, target):
    """Yields `(line, source_text, target_text)` from two aligned files."""
    sources = list(read_lines(source, "source file"))
    targets = list(read_lines(target, "target file"))
    if len(sources) != len(targets):
        raise DataError(
            "source and target files have different numbers of lines: "
            f"{source} has {len(sources)}, {target} has {len(targets)}; "
            "expected aligned files with one pair per line"
        )
    for (line, src), (_, tgt) in zip(sources, targets):
        yield line, src, tgt


def _tsv_pairs(path):
    """Yields `(line, source_text, target_text)` from a `source<TAB>target` file."""
    for line, text in read_lines(path, "TSV file"):
        if not text.strip():
            # A blank line is an empty pair, left to `on_empty`.
            yield line, "", ""
            continue
        fields = text.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"expected 2 tab-separated fields (source<TAB>target), found {len(fields)}",
                path=path,
                line=line,
            )
        yield line, fields[0], fields[1]


def _empty_check(line, src, tgt, paths, on_empty):
    sides = [side for side, text in zip(("source", "target"), (src, tgt)) if not text]
    if not sides:
        return None
    path = paths[sides[0]]
    detail = "empty " + " and ".join(sides)
    if on_empty == "error":
        raise DataError(
            f"{detail}; expected non-empty text on both sides "
            "(pass on_empty='skip' to skip such pairs)",
            path=path,
            line=line,
        )
    return SkippedPair(path, line, EMPTY, detail)


def _length_check(line, src, tgt, paths, max_length, length_fn, on_long):
    long_sides = []
    for side, text in (("source", src), ("target", tgt)):
        length = length_fn(text)
        if length > max_length:
            long_sides.append((side, length))
    if not long_sides:
        return None
    path = paths[long_sides[0][0]]
    detail = ", ".join(f"{side} length {n} > max_length={max_length}" for side, n in long_sides)
    if on_long == "error":
        raise DataError(
            f"{detail}; expected at most {max_length} "
            "(pass on_long='skip' to skip such pairs)",
            path=path,
            line=line,
        )
    return SkippedPair(path, line, TOO_LONG, detail)


def _log_skipped(corpus):
    first = ", ".join(f"{s.path}:{s.line} ({s.detail})" for s in corpus.skipped[:_NUM_LOGGED])
    more = "" if corpus.num_skipped <= _NUM_LOGGED else ", ..."
    logger.warning(
        "Reading %s: %s; first skipped: %s%s", corpus.source_path, corpus.summary(), first, more
    )


def read_parallel(
    source,
    target=None,
    *,
    max_length=None,
    length_fn=None,
    on_long="skip",
    on_empty="skip",
    log=True,
):
    """Reads a parallel corpus from two aligned files or one TSV file.

    Texts are stripped of surrounding whitespace. A pair with an empty side,
    or with a side longer than `max_length`, is skipped (and recorded in
    `ParallelCorpus.skipped`) or raises, as `on_empty` and `on_long` say.

    Args:
        source: the source file, or a TSV file of `source<TAB>target` lines
            when `target` is `None`. In a TSV file a blank line counts as an
            empty pair; any other line must have exactly two fields.
        target: the target file, aligned line by line with `source`.
        max_length: the longest side allowed, as measured by `length_fn`, or
            `None` for no limit.
        length_fn: how to measure a text; defaults to the number of
            whitespace-separated tokens. Pass `len` for characters or
            `lambda t: len(tokenizer.encode(t))` for model tokens.
        on_long: `"skip"` or `"error"` for pairs longer than `max_length`.
        on_empty: `"skip"` or `"error"` for pairs with an empty side.
        log: log a warning on the `"seqzoo"` logger when pairs were skipped.

    Returns:
        A `ParallelCorpus`.

    Raises:
        FileNotFoundError: a file does not exist.
        DataError: the files have different numbers of lines, a line is not
            UTF-8, a TSV line does not have two fields, a pair is empty or
            too long in `"error"` mode, or no pair is left. The message names
            the file and 1-based line where there is one.
        ValueError: an argument is invalid.
    """
    _check_arguments(max_length, length_fn, on_long, on_empty)
    length_fn = length_fn or _num_tokens
    source = os.fspath(source)
    if target is None:
        pairs = _tsv_pairs(source)
        paths = {"source": source, "target": source}
    else:
        target = os.fspath(target)
        pairs = _file_pairs(source, target)
        paths = {"source": source, "target": target}

    corpus = ParallelCorpus(
        [],
        [],
        [],
        max_length=max_length,
        source_path=paths["source"],
        target_path=paths["target"],
    )
    num_lines = 0
    for line, src, tgt in pairs:
        num_lines += 1
        src, tgt = src.strip(), tgt.strip()
        skip = _empty_check(line, src, tgt, paths, on_empty)
        if skip is None and max_length is not None:
            skip = _length_check(line, src, tgt, paths, max_length, length_fn, on_long)
        if skip is not None:
            corpus.skipped.append(skip)
            continue
        corpus.sources.append(src)
        corpus.targets.append(tgt)
        corpus.line_numbers.append(line)

    if not corpus.sources:
        if num_lines == 0:
            raise DataError("the corpus has no lines; expected at least one pair", path=source)
        raise DataError(
            f"no pairs left after filtering: read {num_lines} lines, "
            f"{corpus._skipped_text()}; expected at least one pair",
            path=source,
        )
    if log and corpus.skipped:
        _log_skipped(corpus)
    return corpus


def _encode_all(tokenizer, texts, name):
    if hasattr(tokenizer, "encode_batch"):
        encoded = tokenizer.encode_batch(texts)
    elif hasattr(tokenizer, "encode"):
        encoded = [tokenizer.encode(text) for text in texts]
    else:
        raise TypeError(
            f"Expected a tokenizer with an `encode` or `encode_batch` method. "
            f"Received: {name}={tokenizer!r}"
        )
    encoded = [list(ids) for ids in encoded]
    if len(encoded) != len(texts):
        raise ArgumentError(
            f"Expected {name} to return one id list per text. Received: "
            f"{len(encoded)} id lists for {len(texts)} texts"
        )
    return encoded


def encode_parallel(corpus, source_tokenizer, target_tokenizer):
    """Encodes both sides of a corpus into ids, without BOS or EOS.

    `decoder_io` (or `BucketedBatches`) adds BOS and EOS to the targets later.

    Args:
        corpus: a `ParallelCorpus`.
        source_tokenizer: an object with `encode_batch(texts)` or
            `encode(text)` returning a list of ids.
        target_tokenizer: the same, for the targets.

    Returns:
        A tuple `(source_ids, target_ids)` of lists of id lists.

    Raises:
        DataError: a text encodes to no ids (names the file and line).
        TypeError: a tokenizer has neither `encode` nor `encode_batch`.
    """
    source_ids = _encode_all(source_tokenizer, corpus.sources, "source_tokenizer")
    target_ids = _encode_all(target_tokenizer, corpus.targets, "target_tokenizer")
    sides = (
        ("source", source_ids, corpus.sources, corpus.source_path),
        ("target", target_ids, corpus.targets, corpus.target_path),
    )
    for side, ids, texts, path in sides:
        for i, seq in enumerate(ids):
            if not seq:
                raise DataError(
                    f"the {side} text {texts[i]!r} encodes to no ids; expected at least one",
                    path=path,
                    line=corpus.line_numbers[i],
                )
    return source_ids, target_ids
