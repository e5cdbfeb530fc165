import logging

import pytest

from seqzoo.data import ParallelCorpus, SkippedPair, encode_parallel, read_parallel
from seqzoo.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def two_files(tmp_path):
    src = write(tmp_path / "train.src", "hello world\nsort me\n")
    tgt = write(tmp_path / "train.tgt", "ehllo dlorw\norst em\n")
    return src, tgt


class FakeTokenizer:
    """Ids are 4 + the letter's position in the alphabet; spaces are dropped."""

    def encode(self, text, add_bos=False, add_eos=False):
        return [4 + ord(c) - ord("a") for c in text if c != " "]


class FakeBatchTokenizer(FakeTokenizer):
    def __init__(self):
        self.batch_calls = 0

    def encode_batch(self, texts):
        self.batch_calls += 1
        return [self.encode(t) for t in texts]


def test_reads_two_aligned_files(two_files):
    corpus = read_parallel(*two_files)
    assert corpus.sources == ["hello world", "sort me"]
    assert corpus.targets == ["ehllo dlorw", "orst em"]
    assert corpus.line_numbers == [1, 2]
    assert len(corpus) == 2 and corpus.num_skipped == 0
    assert corpus.summary() == "kept 2 pairs, skipped 0: 0 empty"


def test_reads_tsv_and_strips_whitespace(tmp_path):
    path = write(tmp_path / "pairs.tsv", "abc\tcba\n  xy \t yx\r\n")
    corpus = read_parallel(path)
    assert corpus.sources == ["abc", "xy"]
    assert corpus.targets == ["cba", "yx"]
    assert corpus.source_path == corpus.target_path == str(path)


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path):
    src = write(tmp_path / "a.src", "1\n2\n3\n")
    tgt = write(tmp_path / "a.tgt", "1\n2\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, tgt)
    message = str(info.value)
    assert f"{src} has 3" in message and f"{tgt} has 2" in message


@pytest.mark.parametrize("line, found", [("a\tb\tc", 3), ("no tab here", 1)])
def test_tsv_wrong_field_count_names_file_line_and_count(tmp_path, line, found):
    path = write(tmp_path / "bad.tsv", f"ok\tfine\n{line}\n")
    with pytest.raises(DataError) as info:
        read_parallel(path)
    assert info.value.path == str(path) and info.value.line == 2
    assert f"{path}:2:" in str(info.value)
    assert f"found {found}" in str(info.value)


def test_non_utf8_line_names_file_and_line(tmp_path):
    src = write(tmp_path / "x.src", "a\nb\n")
    tgt = tmp_path / "x.tgt"
    tgt.write_bytes(b"a\n\xff\xfeb\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, tgt)
    assert info.value.path == str(tgt) and info.value.line == 2
    assert "UTF-8" in str(info.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.src"):
        read_parallel(tmp_path / "missing.src", tmp_path / "missing.tgt")


def test_empty_pairs_are_skipped_and_recorded(tmp_path):
    src = write(tmp_path / "e.src", "a\n   \nc\nd\n")
    tgt = write(tmp_path / "e.tgt", "A\nB\n\nD\n")
    corpus = read_parallel(src, tgt, log=False)
    assert corpus.sources == ["a", "d"]
    assert corpus.line_numbers == [1, 4]
    assert corpus.skipped == [
        SkippedPair(str(src), 2, "empty", "empty source"),
        SkippedPair(str(tgt), 3, "empty", "empty target"),
    ]
    assert corpus.summary() == "kept 2 pairs, skipped 2: 2 empty"


def test_blank_tsv_line_is_an_empty_pair(tmp_path):
    path = write(tmp_path / "p.tsv", "a\tb\n\nc\td\n")
    corpus = read_parallel(path, log=False)
    assert corpus.line_numbers == [1, 3]
    assert corpus.skipped[0].line == 2
    assert corpus.skipped[0].detail == "empty source and target"


def test_empty_pair_raises_in_error_mode(tmp_path):
    src = write(tmp_path / "e.src", "a\nb\n")
    tgt = write(tmp_path / "e.tgt", "A\n \n")
    with pytest.raises(DataError, match="empty target") as info:
        read_parallel(src, tgt, on_empty="error")
    assert (info.value.path, info.value.line) == (str(tgt), 2)


def test_long_pairs_are_skipped_by_token_count(tmp_path):
    path = write(tmp_path / "l.tsv", "a b\tc\na b c d\te\nf\tg h i j k\n")
    corpus = read_parallel(path, max_length=3, log=False)
    assert corpus.sources == ["a b"]
    assert [(s.line, s.reason) for s in corpus.skipped] == [(2, "too_long"), (3, "too_long")]
    assert corpus.skipped[0].detail == "source length 4 > max_length=3"
    assert corpus.skipped[1].detail == "target length 5 > max_length=3"
    assert corpus.summary() == "kept 1 pairs, skipped 2: 0 empty, 2 longer than max_length=3"


def test_length_fn_measures_characters(tmp_path):
    path = write(tmp_path / "c.tsv", "abcd\tdcba\nabcdef\tfedcba\n")
    corpus = read_parallel(path, max_length=5, length_fn=len, log=False)
    assert corpus.sources == ["abcd"]
    assert corpus.skipped[0].detail.startswith("source length 6 > max_length=5")


def test_long_pair_raises_in_error_mode_with_location_and_lengths(tmp_path):
    src = write(tmp_path / "l.src", "a\nb\nc\n")
    tgt = write(tmp_path / "l.tgt", "A\nB\nC C C\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, tgt, max_length=2, on_long="error")
    assert (info.value.path, info.value.line) == (str(tgt), 3)
    assert "target length 3 > max_length=2" in str(info.value)


def test_zero_pairs_after_filtering_raises_with_counts(tmp_path):
    path = write(tmp_path / "z.tsv", "\na b c\td\n")
    with pytest.raises(DataError) as info:
        read_parallel(path, max_length=2)
    message = str(info.value)
    assert "no pairs left" in message
    assert "skipped 2: 1 empty, 1 longer than max_length=2" in message


def test_empty_file_raises(tmp_path):
    path = write(tmp_path / "empty.tsv", "")
    with pytest.raises(DataError, match="no lines"):
        read_parallel(path)


def test_skipped_pairs_are_logged_with_counts_and_locations(tmp_path, caplog):
    path = write(tmp_path / "w.tsv", "a\tb\n\t\nc\td d d\n")
    with caplog.at_level(logging.WARNING, logger="seqzoo"):
        read_parallel(path, max_length=2)
    records = [r for r in caplog.records if r.name == "seqzoo"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    text = records[0].getMessage()
    assert "kept 1 pairs, skipped 2: 1 empty, 1 longer than max_length=2" in text
    assert f"{path}:2" in text and f"{path}:3" in text


def test_no_warning_when_nothing_skipped_or_log_false(tmp_path, caplog):
    path = write(tmp_path / "w.tsv", "a\tb\n\t\n")
    with caplog.at_level(logging.WARNING, logger="seqzoo"):
        read_parallel(path, log=False)
        read_parallel(write(tmp_path / "ok.tsv", "a\tb\n"))
    assert not [r for r in caplog.records if r.name == "seqzoo"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"on_long": "drop"}, "Received: on_long='drop'; expected one of"),
        ({"on_empty": None}, "Received: on_empty=None; expected one of"),
        ({"max_length": 0}, "Received: max_length=0"),
        ({"length_fn": 3}, "Received: length_fn=3"),
    ],
)
def test_bad_arguments_raise_value_error(two_files, kwargs, match):
    with pytest.raises(ValueError, match=match):
        read_parallel(*two_files, **kwargs)


def test_corpus_rejects_unaligned_lists():
    with pytest.raises(ValueError, match="len\\(targets\\)=1"):
        ParallelCorpus(["a", "b"], ["x"], [1, 2])


def test_encode_parallel_uses_encode(two_files):
    corpus = read_parallel(*two_files)
    source_ids, target_ids = encode_parallel(corpus, FakeTokenizer(), FakeTokenizer())
    assert source_ids[1] == [22, 18, 21, 23, 16, 8]  # "sortme"
    assert target_ids[1] == [18, 21, 22, 23, 8, 16]  # "orstem"
    assert len(source_ids) == len(target_ids) == 2


def test_encode_parallel_prefers_encode_batch(two_files):
    corpus = read_parallel(*two_files)
    tokenizer = FakeBatchTokenizer()
    source_ids, _ = encode_parallel(corpus, tokenizer, tokenizer)
    assert tokenizer.batch_calls == 2
    assert source_ids[0][:2] == [11, 8]  # "he"


def test_encode_parallel_empty_encoding_names_line(tmp_path):
    path = write(tmp_path / "p.tsv", "ab\tba\n?\tx\n")
    corpus = read_parallel(path)
    with pytest.raises(DataError) as info:
        drops_question_marks = lambda_tokenizer(lambda t: [] if t == "?" else [5])
        encode_parallel(corpus, drops_question_marks, FakeTokenizer())
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert "source text '?' encodes to no ids" in str(info.value)


def test_encode_parallel_rejects_non_tokenizer(two_files):
    corpus = read_parallel(*two_files)
    with pytest.raises(TypeError, match="Received: source_tokenizer="):
        encode_parallel(corpus, object(), FakeTokenizer())


def lambda_tokenizer(fn):
    class _Tokenizer:
        def encode(self, text):
            return fn(text)

    return _Tokenizer()
