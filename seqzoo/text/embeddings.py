"""Pre-trained word vectors (GloVe, word2vec, fastText) as a matrix for a vocabulary.

`load_embeddings` streams the file once and keeps only the rows the
vocabulary asks for, so building a 20,000-word matrix from a file of millions
of vectors holds about three vectors per vocabulary word in memory, never the
file. Formats:

- `"glove"`: text, one `word v1 ... vD` per line, no header (GloVe).
- `"word2vec"`: text with a `count dim` header line, then lines as GloVe's
  (word2vec's text output; fastText's `.vec` files are this format too,
  `"fasttext"` is an alias).
- `"word2vec-binary"`: a `count dim` header line, then per word its UTF-8
  bytes, a space and `dim` little-endian float32 values (word2vec's `.bin`).

Any of them may be gzip-compressed. `format="auto"` reads the first bytes:
gzip by its magic number, a header by its two integers, binary by the `.bin`
suffix or by bytes after the header that are not a text vector.

Rows of the matrix:

- a vocabulary word found in the file takes its vector;
- with `case_fallback=True` (the default), a word missing from the file takes
  the vector of its lowercased form, else of its capitalised form (`"paris"`
  from `"Paris"`), when the file has one; a SentencePiece piece `"▁word"`
  tries `"word"` the same way;
- `<pad>` (id 0) is all zeros;
- `<unk>`, `<s>`, `</s>` and the words still missing follow `oov`:
  `"random"` draws each value from a normal distribution with mean 0 and the
  standard deviation of all values of the vectors found (seeded by `seed`),
  `"zeros"` leaves zeros, `"mean"` takes the mean of the vectors found.
"""

import dataclasses
import gzip
import os
import zlib

import numpy as np

from seqzoo.errors import DataError, InputError
from seqzoo.io import check_file, decode_line
from seqzoo.text.specials import NUM_SPECIAL, PAD_ID

FORMATS = ("auto", "glove", "word2vec", "word2vec-binary", "fasttext")
OOV_RULES = ("random", "zeros", "mean")
_SPIECE = "\u2581"
_MISSING_SHOWN = 20


@dataclasses.dataclass
class PretrainedEmbeddings:
    """A `[vocabulary size, dim]` float32 matrix and how it was filled.

    Attributes:
        matrix: numpy float32 array; row `i` is the vector of token id `i`.
        report: a dict: `path`, `format`, `dim`, `file_words` (vectors in the
            file), `vocabulary_size`, `words` (vocabulary words other than the
            four specials), `found` (found exactly), `found_by_case` (found
            only through case fallback), `missing`, `coverage` (found or found
            by case, over `words`), `oov` (the rule for the other rows),
            `missing_words` (up to 20 missing words: the most frequent first
            with their counts when `counts` was given, else in id order).
    """

    matrix: np.ndarray
    report: dict

    def summary(self):
        """The report as one line, e.g. for a training log."""
        r = self.report
        line = (f"embeddings {r['path']} ({r['format']}, dim {r['dim']}, "
                f"{r['file_words']:,} vectors): {r['found']:,} of {r['words']:,} words found, "
                f"{r['found_by_case']:,} by case, {r['missing']:,} missing "
                f"({100 * r['coverage']:.1f}% coverage); other rows: {r['oov']}")
        if r["missing_words"]:
            shown = ", ".join(w if c is None else f"{w} ({c})" for w, c in r["missing_words"][:8])
            line += f"; most frequent missing: {shown}" if r["missing_counts"] else (
                f"; missing: {shown}")
        return line


def load_embeddings(path, vocabulary, format="auto", oov="random", case_fallback=True,
                    counts=None, seed=0):
    """Reads the vectors of `vocabulary`'s tokens from a word-vector file.

    Args:
        path: a GloVe, word2vec (text or binary) or fastText `.vec` file,
            optionally gzip-compressed.
        vocabulary: a `seqzoo.text.Vocabulary`, a tokenizer (anything with
            `vocab_size` and `id_to_token`) or a list of tokens in id order
            whose first four are the special tokens.
        format: one of `"auto"`, `"glove"`, `"word2vec"`, `"word2vec-binary"`,
            `"fasttext"` (the module docstring describes them).
        oov: the rule for special tokens other than `<pad>` and for words the
            file lacks: `"random"`, `"zeros"` or `"mean"`.
        case_fallback: whether a missing word may take the vector of its
            lowercased or capitalised form.
        counts: optional `{token: count}` (e.g. the training corpus' token
            counts), to list the most frequent missing words first.
        seed: the seed of `oov="random"`.

    Returns:
        A `PretrainedEmbeddings` with `.matrix` and `.report`.

    Raises:
        FileNotFoundError: `path` does not exist.
        DataError: the file is empty, has a bad header, a vector of the wrong
            length, a value that is not a number, a line that is not UTF-8, is
            truncated, or holds none of the vocabulary's words (the message
            names the file and, where it applies, the line).
        InputError: an argument is not one of the values above.
    """
    if format not in FORMATS:
        raise InputError(f"Expected format to be one of {FORMATS}. Received: format={format!r}")
    if oov not in OOV_RULES:
        raise InputError(f"Expected oov to be one of {OOV_RULES}. Received: oov={oov!r}")
    tokens = _tokens_of(vocabulary)
    path = check_file(path, "embeddings file")
    wanted = {token: i for i, token in enumerate(tokens) if i >= NUM_SPECIAL}
    fallbacks = _fallback_keys(wanted, case_fallback)

    exact, by_key = {}, {}
    try:
        with _open(path) as f:
            fmt, reader = _reader(f, path, format)
            for word, parse in reader:
                if word in wanted and word not in exact:
                    exact[word] = _finite(parse(), word, path)
                if word in fallbacks and word not in by_key:
                    by_key[word] = _finite(parse(), word, path)
            file_words, dim = reader.count, reader.dim
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:  # a cut or damaged gzip stream
        raise DataError(f"truncated or corrupt gzip file ({e}); expected the whole "
                        "compressed file", path=path) from None

    matrix = np.zeros((len(tokens), dim), np.float32)
    found_rows, case_rows = [], []
    for word, row in wanted.items():
        if word in exact:
            matrix[row] = exact[word]
            found_rows.append(row)
            continue
        key = next((k for k in _candidates(word, case_fallback) if k in by_key), None)
        if key is not None:
            matrix[row] = by_key[key]
            case_rows.append(row)
    filled = found_rows + case_rows
    if not filled:
        sample = ", ".join(repr(t) for t in list(wanted)[:5]) + (", ..." if len(wanted) > 5 else "")
        raise DataError(f"none of the vocabulary's {len(wanted):,} words ({sample}) is in "
                        f"the file's {file_words:,} vectors; expected vectors for its words "
                        "(same tokenisation and case?)", path=path)
    missing = sorted(set(wanted.values()) - set(filled))
    _fill(matrix, [i for i in range(len(tokens)) if 0 < i < NUM_SPECIAL and i != PAD_ID]
          + missing, matrix[filled], oov, seed)
    matrix[PAD_ID] = 0.0
    report = {
        "path": path, "format": fmt, "dim": dim, "file_words": file_words,
        "vocabulary_size": len(tokens), "words": len(wanted), "found": len(found_rows),
        "found_by_case": len(case_rows), "missing": len(missing),
        "coverage": len(filled) / len(wanted), "oov": oov,
        "missing_counts": counts is not None,
        "missing_words": _missing_words([tokens[i] for i in missing], counts),
    }
    return PretrainedEmbeddings(matrix, report)


def _tokens_of(vocabulary):
    if hasattr(vocabulary, "id_to_token") and hasattr(vocabulary, "vocab_size"):
        return [vocabulary.id_to_token(i) for i in range(vocabulary.vocab_size)]
    if hasattr(vocabulary, "tokens") and not callable(vocabulary.tokens):
        return list(vocabulary.tokens)
    if isinstance(vocabulary, (list, tuple)) and all(isinstance(t, str) for t in vocabulary):
        if len(vocabulary) <= NUM_SPECIAL:
            raise InputError("Expected a vocabulary with words beyond the four special tokens. "
                             f"Received: {len(vocabulary)} tokens")
        return list(vocabulary)
    raise InputError("Expected vocabulary to be a Vocabulary, a tokenizer or a list of tokens "
                     f"in id order. Received: vocabulary={type(vocabulary).__name__}")


def _candidates(word, case_fallback):
    """The other spellings a missing `word` may take its vector from, best first."""
    if not case_fallback:
        return ()
    bases = [word] + ([word[1:]] if word.startswith(_SPIECE) and len(word) > 1 else [])
    out = []
    for base in bases:
        for key in (base, base.lower(), base[:1].upper() + base[1:].lower()):
            if key != word and key not in out:
                out.append(key)
    return out


def _fallback_keys(wanted, case_fallback):
    return {key for word in wanted for key in _candidates(word, case_fallback)}


def _fill(matrix, rows, vectors, rule, seed):
    if not rows or rule == "zeros":
        return
    if rule == "mean":
        matrix[rows] = vectors.mean(axis=0)
        return
    scale = float(vectors.std()) or 1.0
    matrix[rows] = np.random.default_rng(seed).normal(0.0, scale, (len(rows), matrix.shape[1]))


def _missing_words(words, counts):
    if counts is None:
        return [(w, None) for w in words[:_MISSING_SHOWN]]
    ranked = sorted(words, key=lambda w: -counts.get(w, 0))[:_MISSING_SHOWN]
    return [(w, int(counts.get(w, 0))) for w in ranked]


def _finite(vector, word, path):
    if not np.isfinite(vector).all():
        bad = vector[~np.isfinite(vector)][0]
        raise DataError(f"the vector of {word!r} holds {bad} (not a finite number); expected "
                        "finite numbers", path=path)
    return vector


def _open(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _reader(f, path, fmt):
    """Picks the format (reading at most the header and one vector); returns it and a reader."""
    first = f.readline()
    if not first:
        raise DataError("the file is empty; expected word vectors", path=path)
    header = _header(first, path, required=fmt in ("word2vec", "fasttext", "word2vec-binary"))
    if fmt == "auto":
        if header is None:
            fmt = "glove"
        elif _stem(path).endswith(".bin") or not _looks_like_text(f, header[1]):
            fmt = "word2vec-binary"
        else:
            fmt = "word2vec"
    elif fmt == "glove" and header is not None:
        raise DataError(f"line 1 is a 'count dim' header ({first.decode().strip()!r}), which "
                        "GloVe files do not have; expected format='word2vec'", path=path, line=1)
    if fmt == "word2vec-binary":
        return fmt, _BinaryReader(f, path, *header)
    if header is None:
        return fmt, _TextReader(f, path, first_line=first)
    return fmt, _TextReader(f, path, count=header[0], dim=header[1])


def _stem(path):
    path = os.fspath(path).lower()
    return path[:-3] if path.endswith(".gz") else path


def _header(line, path, required):
    fields = line.split()
    if len(fields) == 2 and all(x.isdigit() for x in fields):
        count, dim = int(fields[0]), int(fields[1])
        if count <= 0 or dim <= 0:
            raise DataError(f"bad header {line.decode().strip()!r}: expected 'count dim', two "
                            "positive integers", path=path, line=1)
        return count, dim
    if required or (len(fields) == 2 and fields[0].isdigit() and not _is_number(fields[1])):
        shown = line[:60].decode("utf-8", "replace").strip()
        raise DataError(f"bad header {shown!r}: expected 'count dim', two positive integers",
                        path=path, line=1)
    return None


def _looks_like_text(f, dim):
    """Whether the next record is a text line of `dim` numbers (the stream is rewound)."""
    position = f.tell()
    chunk = f.read(dim * 32 + 4096)
    f.seek(position)
    line = chunk.split(b"\n", 1)[0]
    try:
        fields = line.decode("utf-8").rstrip().split(" ")
        [float(x) for x in fields[-dim:]]
    except (UnicodeDecodeError, ValueError):
        return False
    return len(fields) > dim


class _TextReader:
    """Yields `(word, parse)` per text line; `parse()` returns the float32 vector."""

    def __init__(self, f, path, first_line=None, count=None, dim=None):
        self.f, self.path, self.first_line = f, path, first_line
        self.header_count, self.dim = count, dim
        self.count = 0

    def __iter__(self):
        if self.first_line is not None:
            yield from self._entry(self.first_line, 1)
        for number, raw in enumerate(self.f, start=2):
            yield from self._entry(raw, number)
        if self.count == 0:
            raise DataError("no vectors after the header; expected word vectors",
                            path=self.path)

    def _entry(self, raw, number):
        text = decode_line(raw, self.path, number).rstrip()
        if not text:
            return
        if self.dim is None:
            self.dim = text.count(" ")
            if self.dim == 0:
                raise DataError(f"expected 'word v1 ... vD'. Received: {text[:60]!r}",
                                path=self.path, line=number)
        word, values = self._fields(text, number)
        self.count += 1
        yield word, lambda: self._parse(values, number)

    def _fields(self, text, number):
        """`(word, values)`: the last `dim` fields are the vector; a word may hold spaces
        (GloVe's Common Crawl files have such words) unless it ends in a number."""
        word, _, values = text.partition(" ")
        extra = values.count(" ") - (self.dim - 1)
        if extra > 0:
            parts = text.split(" ", extra + 1)
            word, values = " ".join(parts[:-1]), parts[-1]
            if _is_number(parts[-2]):
                extra = -extra
        if extra < 0 or not word or not values:
            size = len(text.split(" ")) - 1
            raise DataError(f"a vector of {size} values; expected {self.dim} (the "
                            f"{'header' if self.header_count else 'first line'}'s dimension)",
                            path=self.path, line=number)
        return word, values

    def _parse(self, values, number):
        try:
            return np.array(values.split(" "), dtype=np.float32)
        except ValueError:
            bad = next(v for v in values.split(" ") if not _is_number(v))
            raise DataError(f"value {bad[:30]!r} is not a number; expected {self.dim} numbers",
                            path=self.path, line=number) from None


def _is_number(value):
    try:
        float(value)
    except ValueError:
        return False
    return True


class _BinaryReader:
    """Yields `(word, parse)` per entry of a word2vec binary file."""

    def __init__(self, f, path, count, dim):
        self.f, self.path, self.header_count, self.dim = f, path, count, dim
        self.count = 0

    def __iter__(self):
        size = 4 * self.dim
        for entry in range(1, self.header_count + 1):
            word = self._word(entry)
            if word is None:
                break
            vector = self.f.read(size)
            if len(vector) != size:
                raise DataError(f"the file ends inside the vector of entry {entry} ({word!r}): "
                                f"{len(vector)} of {size} bytes; expected {self.header_count:,} "
                                "entries as the header says (truncated?)", path=self.path)
            self.count += 1
            yield word, lambda v=vector: np.frombuffer(v, "<f4").astype(np.float32)
        if self.count == 0:
            raise DataError("no vectors after the header; expected word vectors",
                            path=self.path)

    def _word(self, entry):
        raw = bytearray()
        while True:
            byte = self.f.read(1)
            if not byte:
                if raw.strip():
                    raise DataError(f"the file ends inside the word of entry {entry}; "
                                    "expected a word, a space and its vector (truncated?)",
                                    path=self.path)
                return None
            if byte == b" ":
                break
            if byte != b"\n" or raw:
                raw += byte
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"the word of entry {entry} is not valid UTF-8: {bytes(raw[:40])!r}",
                            path=self.path) from None


__all__ = ["FORMATS", "OOV_RULES", "PretrainedEmbeddings", "load_embeddings"]
