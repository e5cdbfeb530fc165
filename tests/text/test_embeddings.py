"""Pre-trained word vectors: formats, case fallback, rows of special and missing tokens, errors."""

import gzip
import tracemalloc

import numpy as np
import pytest

from seqzoo.errors import DataError, InputError
from seqzoo.text import CharTokenizer, Vocabulary
from seqzoo.text.embeddings import load_embeddings

VOCAB = Vocabulary(["the", "Paris", "cat", "qqq", "\u2581dog"])
VECTORS = {"the": [1, 2, 3], "paris": [4, 5, 6], "cat": [7, 8, 9], "Dog": [-1, 0, 1],
           "other": [9, 9, 9]}


def _text(vectors, header=False):
    lines = [f"{len(vectors)} 3"] if header else []
    lines += [w + " " + " ".join(f"{x:g}" for x in v) for w, v in vectors.items()]
    return "\n".join(lines) + "\n"


def _binary(vectors, newline=True):
    out = f"{len(vectors)} 3\n".encode()
    for word, vector in vectors.items():
        out += word.encode() + b" " + np.asarray(vector, "<f4").tobytes() + (b"\n" if newline
                                                                             else b"")
    return out


def _check_rows(matrix):
    np.testing.assert_array_equal(matrix[4], [1, 2, 3])  # the
    np.testing.assert_array_equal(matrix[5], [4, 5, 6])  # Paris <- paris
    np.testing.assert_array_equal(matrix[6], [7, 8, 9])  # cat
    np.testing.assert_array_equal(matrix[8], [-1, 0, 1])  # ▁dog <- dog <- Dog
    np.testing.assert_array_equal(matrix[0], 0)  # <pad>


@pytest.mark.parametrize("name, content, fmt", [
    ("glove.txt", _text(VECTORS).encode(), "glove"),
    ("w2v.txt", _text(VECTORS, header=True).encode(), "word2vec"),
    ("crawl.vec", _text(VECTORS, header=True).replace("\n", " \n").encode(), "word2vec"),
    ("w2v.bin", _binary(VECTORS), "word2vec-binary"),
    ("w2v-no-newlines.bin", _binary(VECTORS, newline=False), "word2vec-binary"),
    ("unnamed", _binary(VECTORS), "word2vec-binary"),
])
@pytest.mark.parametrize("compressed", [False, True])
def test_every_format_is_detected_and_read(tmp_path, name, content, fmt, compressed):
    path = tmp_path / (name + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(content) if compressed else content)
    loaded = load_embeddings(path, VOCAB)
    assert loaded.matrix.dtype == np.float32 and loaded.matrix.shape == (9, 3)
    _check_rows(loaded.matrix)
    report = loaded.report
    assert report["format"] == fmt and report["dim"] == 3 and report["file_words"] == 5
    assert (report["words"], report["found"], report["found_by_case"], report["missing"]) == (
        5, 2, 2, 1)
    assert report["coverage"] == pytest.approx(0.8)
    assert report["missing_words"] == [("qqq", None)]
    # The format named explicitly reads the same.
    np.testing.assert_array_equal(load_embeddings(path, VOCAB, format=fmt).matrix,
                                  loaded.matrix)


def test_fasttext_is_the_word2vec_text_format(tmp_path):
    path = tmp_path / "wiki.vec"
    path.write_text(_text(VECTORS, header=True), encoding="utf-8")
    _check_rows(load_embeddings(path, VOCAB, format="fasttext").matrix)


def test_without_case_fallback_only_exact_words_are_found(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(_text(VECTORS), encoding="utf-8")
    loaded = load_embeddings(path, VOCAB, case_fallback=False, oov="zeros")
    assert (loaded.report["found"], loaded.report["found_by_case"]) == (2, 0)
    np.testing.assert_array_equal(loaded.matrix[5], 0)


def test_an_exact_match_wins_over_a_case_variant(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("paris 1 1 1\nParis 2 2 2\nthe 0 0 1\n", encoding="utf-8")
    np.testing.assert_array_equal(load_embeddings(path, VOCAB).matrix[5], [2, 2, 2])


def test_rows_of_special_and_missing_tokens_follow_the_oov_rule(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(_text(VECTORS), encoding="utf-8")
    others = [1, 2, 3, 7]  # <unk>, <s>, </s>, qqq
    found = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, 0, 1]], np.float32)

    zeros = load_embeddings(path, VOCAB, oov="zeros").matrix
    np.testing.assert_array_equal(zeros[others], 0)
    mean = load_embeddings(path, VOCAB, oov="mean").matrix
    np.testing.assert_allclose(mean[others], np.tile(found.mean(0), (4, 1)))
    np.testing.assert_array_equal(mean[0], 0)

    random = load_embeddings(path, VOCAB, oov="random", seed=3).matrix
    again = load_embeddings(path, VOCAB, oov="random", seed=3).matrix
    np.testing.assert_array_equal(random, again)
    assert not np.array_equal(random, load_embeddings(path, VOCAB, seed=4).matrix)
    assert np.all(random[others] != 0) and np.all(random[0] == 0)
    _check_rows(random)


def test_random_rows_have_the_spread_of_the_vectors_found(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    lines = [w + " " + " ".join(f"{x:.5f}" for x in rng.normal(0, 0.3, 50)) for w in words]
    path = tmp_path / "g.txt"
    path.write_text("\n".join(lines[:200]) + "\n", encoding="utf-8")
    loaded = load_embeddings(path, Vocabulary(words))  # 200 found, 200 missing
    assert loaded.report["missing"] == 200
    assert loaded.matrix[204:].std() == pytest.approx(0.3, rel=0.05)


def test_missing_words_are_listed_most_frequent_first_when_counts_are_known(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("the 1 2 3\n", encoding="utf-8")
    counts = {"the": 50, "cat": 3, "qqq": 9, "Paris": 7}
    report = load_embeddings(path, VOCAB, counts=counts, case_fallback=False).report
    assert report["missing_words"] == [("qqq", 9), ("Paris", 7), ("cat", 3), ("\u2581dog", 0)]
    assert "most frequent missing: qqq (9), Paris (7)" in load_embeddings(
        path, VOCAB, counts=counts, case_fallback=False).summary()


def test_words_with_spaces_and_a_byte_order_mark_free_file(tmp_path):
    path = tmp_path / "crawl.txt"
    path.write_text("the 1 2 3\n. . . 4 5 6\ncat 7 8 9\n", encoding="utf-8")
    loaded = load_embeddings(path, Vocabulary(["the", ". . .", "cat"]))
    np.testing.assert_array_equal(loaded.matrix[5], [4, 5, 6])


def test_a_tokenizer_or_a_token_list_is_a_vocabulary(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("a 1 0\nb 0 1\n", encoding="utf-8")
    tokenizer = CharTokenizer.build(["ab"])
    from_tokenizer = load_embeddings(path, tokenizer).matrix
    from_list = load_embeddings(path, [tokenizer.id_to_token(i)
                                       for i in range(tokenizer.vocab_size)]).matrix
    np.testing.assert_array_equal(from_tokenizer, from_list)
    assert from_tokenizer.shape == (tokenizer.vocab_size, 2)
    np.testing.assert_array_equal(from_tokenizer[tokenizer.token_to_id("b")], [0, 1])


def test_only_the_vocabulary_rows_are_kept_in_memory(tmp_path):
    """A 20,000 x 100 file (about 10 MB of text): reading 50 words' rows allocates far
    less than the file's 8 MB of float32 vectors."""
    rng = np.random.default_rng(1)
    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(20_000):
            f.write(f"w{i} " + " ".join(f"{x:.4f}" for x in rng.normal(size=100)) + "\n")
    vocab = Vocabulary([f"w{i}" for i in range(0, 20_000, 400)])
    tracemalloc.start()
    loaded = load_embeddings(path, vocab)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert loaded.report["found"] == 50 and loaded.report["file_words"] == 20_000
    assert peak < 1_000_000, f"peak {peak:,} bytes"


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"3 300\n", "no vectors after the header"),
    (b"the 1 2 3\ncat 1 2\n", r":2: a vector of 2 values; expected 3 \(the first line's"),
    (b"2 3\nthe 1 2 3\ncat 1 2 3 4\n", r":3: a vector of 4 values; expected 3 \(the header's"),
    (b"the 1 2 3\ncat 1 x 3\n", r":2: value 'x' is not a number"),
    (b"the 1 2 3\nc\xe9t 1 2 3\n", r":2: line is not valid UTF-8"),
    (b"3 x\nthe 1 2\n", r":1: bad header '3 x'"),
    (b"0 3\nthe 1 2 3\n", r":1: bad header '0 3'"),
    (b"foo 1 2 3\nbar 1 2 3\n", r"none of the vocabulary's 5 words \('the', 'Paris'"),
    (b"the 1 nan 3\n", r"the vector of 'the' holds nan \(not a finite number\)"),
    (b"the 1 2 3\nParis inf 1 2\n", r"the vector of 'Paris' holds inf"),
])
def test_bad_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_embeddings(path, VOCAB)
    assert str(path) in str(error.value)


def test_a_cut_or_damaged_gzip_file_is_named(tmp_path):
    whole = gzip.compress(_text(VECTORS).encode() * 50)
    path = tmp_path / "vectors.txt.gz"
    path.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    with pytest.raises(DataError, match="truncated or corrupt gzip file") as error:
        load_embeddings(path, VOCAB)
    assert str(path) in str(error.value)
    damaged = bytearray(whole)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=str(path)):
        load_embeddings(path, VOCAB)


def test_bad_binary_files_and_bad_headers_for_the_format_asked(tmp_path):
    path = tmp_path / "cut.bin"
    path.write_bytes(_binary(VECTORS)[:-10])
    with pytest.raises(DataError, match=r"ends inside the vector of entry 5 \('other'\).*"
                                        "truncated"):
        load_embeddings(path, VOCAB)
    path.write_bytes(b"2 3\nth\xffe " + np.zeros(3, "<f4").tobytes())
    with pytest.raises(DataError, match="word of entry 1 is not valid UTF-8"):
        load_embeddings(path, VOCAB)
    glove = tmp_path / "g.txt"
    glove.write_text(_text(VECTORS), encoding="utf-8")
    with pytest.raises(DataError, match=r"g.txt:1: bad header 'the 1 2 3'"):
        load_embeddings(glove, VOCAB, format="word2vec")
    with_header = tmp_path / "w.txt"
    with_header.write_text(_text(VECTORS, header=True), encoding="utf-8")
    with pytest.raises(DataError, match="w.txt:1: line 1 is a 'count dim' header"):
        load_embeddings(with_header, VOCAB, format="glove")


def test_bad_arguments_are_named(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(_text(VECTORS), encoding="utf-8")
    with pytest.raises(InputError, match="format='csv'"):
        load_embeddings(path, VOCAB, format="csv")
    with pytest.raises(InputError, match="oov='unk'"):
        load_embeddings(path, VOCAB, oov="unk")
    with pytest.raises(InputError, match="vocabulary=dict"):
        load_embeddings(path, {"the": 4})
    with pytest.raises(FileNotFoundError, match="embeddings file not found"):
        load_embeddings(tmp_path / "nope.txt", VOCAB)
