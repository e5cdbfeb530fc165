import pytest

from seqzoo.errors import DataError, VocabularyError
from seqzoo.text import SPECIAL_TOKENS, UNK_ID, Vocabulary


def _write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# --- construction and lookup -------------------------------------------------


def test_specials_take_ids_0_to_3_and_tokens_follow_in_order():
    vocab = Vocabulary(["b", "a"])
    assert vocab.tokens == SPECIAL_TOKENS + ("b", "a")
    tokens = ["<pad>", "<unk>", "<s>", "</s>", "b", "a"]
    assert [vocab.token_to_id(t) for t in tokens] == [0, 1, 2, 3, 4, 5]


def test_empty_vocabulary_holds_only_specials():
    assert len(Vocabulary()) == 4
    assert Vocabulary().tokens == SPECIAL_TOKENS


def test_lookup_reverse_lookup_and_unknown():
    vocab = Vocabulary(["x", "y"])
    assert vocab.token_to_id("y") == 5
    assert vocab.token_to_id("nope") == UNK_ID
    assert vocab.id_to_token(4) == "x"
    assert vocab.encode(["y", "x", "nope"]) == [5, 4, 1]
    assert vocab.decode([5, 4, 1]) == ["y", "x", "<unk>"]
    assert "x" in vocab and "nope" not in vocab
    assert list(vocab) == list(vocab.tokens)


@pytest.mark.parametrize("bad_id", [6, -1, 100])
def test_id_to_token_out_of_range_names_id_and_size(bad_id):
    with pytest.raises(ValueError, match=rf"0 <= id < 6.*token_id={bad_id}"):
        Vocabulary(["x", "y"]).id_to_token(bad_id)


def test_equality_and_len():
    assert Vocabulary(["a", "b"]) == Vocabulary(["a", "b"])
    assert Vocabulary(["a", "b"]) != Vocabulary(["b", "a"])
    assert len(Vocabulary(["a", "b"])) == 6
    assert hash(Vocabulary(["a"])) == hash(Vocabulary(["a"]))


def test_repr_shows_size_and_first_tokens():
    text = repr(Vocabulary(list("abcdefg")))
    assert text.startswith("Vocabulary(size=11, tokens=['<pad>'")
    assert text.endswith("'d', ...])")


@pytest.mark.parametrize(
    "tokens, match",
    [
        (["a", "b", "a"], r"Duplicate token at positions 0 and 2. Received: token='a'"),
        (["a", ""], r"non-empty.*Received: token=''"),
        (["a\nb"], r"line breaks.*Received: token='a\\nb'"),
        (["a\r"], r"line breaks.*Received: token='a\\r'"),
        (["<s>"], r"Special tokens are added automatically.*Received: token='<s>'"),
    ],
)
def test_constructor_rejects_bad_tokens(tokens, match):
    with pytest.raises(VocabularyError, match=match):
        Vocabulary(tokens)


def test_constructor_rejects_a_single_string():
    with pytest.raises(TypeError, match="Received: tokens='abc'"):
        Vocabulary("abc")


# --- build ---------------------------------------------------------------------


CORPUS = [["b", "a", "c"], ["a", "c", "d"], ["a", "e"], ["c"]]  # a:3 c:3 b:1 d:1 e:1


def test_build_orders_by_count_then_token():
    vocab = Vocabulary.build(CORPUS)
    assert vocab.tokens[4:] == ("a", "c", "b", "d", "e")


def test_build_is_deterministic_whatever_the_input_order():
    assert Vocabulary.build(CORPUS) == Vocabulary.build(list(reversed(CORPUS)))


def test_build_min_freq_drops_rare_tokens():
    assert Vocabulary.build(CORPUS, min_freq=2).tokens[4:] == ("a", "c")


def test_build_max_size_counts_the_specials():
    assert len(Vocabulary.build(CORPUS, max_size=6)) == 6
    assert Vocabulary.build(CORPUS, max_size=6).tokens[4:] == ("a", "c")
    assert Vocabulary.build(CORPUS, max_size=4).tokens == SPECIAL_TOKENS


def test_build_skips_special_tokens_in_the_corpus():
    assert Vocabulary.build([["<unk>", "x", "</s>"]]).tokens[4:] == ("x",)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_freq": 0}, r"Received: min_freq=0"),
        ({"min_freq": 1.5}, r"Received: min_freq=1.5"),
        ({"max_size": 3}, r">= 4.*Received: max_size=3"),
    ],
)
def test_build_rejects_bad_arguments(kwargs, match):
    with pytest.raises(VocabularyError, match=match):
        Vocabulary.build(CORPUS, **kwargs)


@pytest.mark.parametrize("corpus", [[], [[], []], [["<pad>"]]])
def test_build_rejects_an_empty_corpus(corpus):
    with pytest.raises(VocabularyError, match=r"empty corpus.*Received: \d+ token lists"):
        Vocabulary.build(corpus)


def test_build_reports_distinct_tokens_and_highest_count_when_min_freq_keeps_nothing():
    match = r"5 distinct tokens.*occurs 3 times. Received: min_freq=4"
    with pytest.raises(VocabularyError, match=match):
        Vocabulary.build(CORPUS, min_freq=4)


def test_build_rejects_strings_as_token_lists():
    with pytest.raises(TypeError, match=r"Received: token_lists\[1\]='ab'"):
        Vocabulary.build([["a"], "ab"])


def test_build_rejects_empty_token_in_corpus():
    with pytest.raises(VocabularyError, match=r"token_lists\[0\].*Received: token=''"):
        Vocabulary.build([["a", ""]])


# --- save / load / config -------------------------------------------------------------


def test_save_load_round_trip_with_space_and_non_ascii_tokens(tmp_path):
    vocab = Vocabulary([" ", "é", "日本", "\t", "a b", "🙂"])
    path = tmp_path / "sub" / "vocab.txt"
    vocab.save(path)
    assert path.read_text(encoding="utf-8").splitlines()[:5] == list(SPECIAL_TOKENS) + [" "]
    assert Vocabulary.load(path) == vocab
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_load_with_add_specials_prepends_them(tmp_path):
    path = _write(tmp_path / "v.txt", "hello\nworld\n")
    vocab = Vocabulary.load(path, add_specials=True)
    assert vocab.tokens == SPECIAL_TOKENS + ("hello", "world")


def test_load_with_add_specials_accepts_a_saved_vocabulary(tmp_path):
    vocab = Vocabulary(["a"])
    vocab.save(tmp_path / "v.txt")
    assert Vocabulary.load(tmp_path / "v.txt", add_specials=True) == vocab


def test_load_without_specials_names_line_expected_token_and_option(tmp_path):
    path = _write(tmp_path / "v.txt", "<pad>\n<unk>\nhello\n")
    match = r"v\.txt:3: expected the special token '<s>'.*add_specials=True"
    with pytest.raises(DataError, match=match) as info:
        Vocabulary.load(path)
    assert info.value.line == 3


def test_load_short_file_of_specials_is_an_error(tmp_path):
    path = _write(tmp_path / "v.txt", "<pad>\n<unk>\n")
    with pytest.raises(DataError, match=r"v\.txt: the file has only 2 lines"):
        Vocabulary.load(path)


def test_load_with_add_specials_rejects_a_special_later_in_the_file(tmp_path):
    path = _write(tmp_path / "v.txt", "a\nb\n</s>\n")
    with pytest.raises(DataError, match=r"v\.txt:3: special token '</s>' out of place"):
        Vocabulary.load(path, add_specials=True)


def test_load_rejects_a_special_after_the_header(tmp_path):
    path = _write(tmp_path / "v.txt", "\n".join(SPECIAL_TOKENS + ("a", "<unk>")) + "\n")
    with pytest.raises(DataError, match=r"v\.txt:6: special token '<unk>'"):
        Vocabulary.load(path)


def test_load_rejects_empty_line_with_file_and_line(tmp_path):
    path = _write(tmp_path / "v.txt", "a\n\nb\n")
    with pytest.raises(DataError, match=r"v\.txt:2: empty line"):
        Vocabulary.load(path, add_specials=True)


def test_load_rejects_duplicate_naming_both_lines(tmp_path):
    path = _write(tmp_path / "v.txt", "a\nb\nc\nb\n")
    with pytest.raises(DataError, match=r"v\.txt:4: duplicate token 'b' \(first on line 2\)"):
        Vocabulary.load(path, add_specials=True)


def test_load_rejects_empty_file(tmp_path):
    path = _write(tmp_path / "v.txt", "")
    with pytest.raises(DataError, match=r"v\.txt: empty vocabulary file"):
        Vocabulary.load(path, add_specials=True)


def test_load_rejects_non_utf8_with_line_number(tmp_path):
    path = _write(tmp_path / "v.txt", b"ok\n\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"v\.txt:2: line is not valid UTF-8"):
        Vocabulary.load(path, add_specials=True)


def test_load_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        Vocabulary.load(tmp_path / "missing.txt")


def test_config_round_trip_holds_only_the_other_tokens():
    vocab = Vocabulary(["a", " ", "ü"])
    assert vocab.get_config() == {"tokens": ["a", " ", "ü"]}
    assert Vocabulary.from_config(vocab.get_config()) == vocab


def test_from_config_rejects_missing_tokens():
    with pytest.raises(VocabularyError, match="Received: config={}"):
        Vocabulary.from_config({})
