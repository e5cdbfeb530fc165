import json

import numpy as np
import pytest

from seqzoo.errors import DataError, TokenizerError, VocabularyError
from seqzoo.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    CharTokenizer,
    Tokenizer,
    Vocabulary,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_config,
)

TEXTS = ["hello world", "sort these letters", "héllo wörld"]


@pytest.fixture
def chars():
    return CharTokenizer.build(TEXTS)


@pytest.fixture
def words():
    return WordTokenizer.build(["The cat sat", "the dog sat down"], lowercase=True)


# --- character tokenizer -------------------------------------------------------


def test_char_tokenizer_round_trips_text_with_spaces(chars):
    for text in TEXTS:
        ids = chars.encode(text)
        assert len(ids) == len(text)
        assert min(ids) >= 4
        assert chars.decode(ids) == text
    assert chars.token_to_id(" ") >= 4


def test_char_tokenizer_unknown_characters_become_unk(chars):
    ids = chars.encode("hello!")
    assert ids[-1] == UNK_ID
    assert chars.decode(ids) == "hello<unk>"
    assert chars.unknown_tokens("hé!lo?!") == ["!", "?"]
    assert chars.unknown_tokens("hello") == []


def test_char_tokenizer_vocab_order_and_size_limits():
    tokenizer = CharTokenizer.build(["aab", "ac"], max_size=5)
    assert tokenizer.vocab_size == 5
    assert tokenizer.id_to_token(4) == "a"
    assert CharTokenizer.build(["aab", "ac"], min_freq=2).vocabulary.tokens[4:] == ("a",)


def test_bos_eos_are_added_on_request(chars):
    plain = chars.encode("hello")
    assert chars.encode("hello", add_bos=True) == [BOS_ID] + plain
    assert chars.encode("hello", add_eos=True) == plain + [EOS_ID]
    assert chars.encode("hello", add_bos=True, add_eos=True) == [BOS_ID] + plain + [EOS_ID]


def test_decode_drops_pad_and_bos_and_stops_at_first_eos(chars):
    ids = chars.encode("hello", add_bos=True, add_eos=True) + chars.encode("world")
    ids += [EOS_ID, PAD_ID]
    assert chars.decode(ids) == "hello"
    assert chars.decode([PAD_ID, BOS_ID] + chars.encode("he") + [PAD_ID]) == "he"
    assert chars.decode([]) == ""
    assert chars.decode([EOS_ID]) == ""


def test_decode_accepts_numpy_arrays_of_any_int_dtype(chars):
    ids = chars.encode("sort", add_eos=True)
    for dtype in ["int32", "int64", "uint16"]:
        assert chars.decode(np.array(ids + [0, 0], dtype=dtype)) == "sort"


def test_decode_rejects_out_of_range_ids_naming_id_and_size(chars):
    size = chars.vocab_size
    with pytest.raises(ValueError, match=rf"0 <= id < {size}.*Received: id={size}"):
        chars.decode([4, size])
    with pytest.raises(ValueError, match=r"Received: id=-1"):
        chars.decode(np.array([4, -1]))


def test_decode_ignores_garbage_after_eos(chars):
    assert chars.decode([4, EOS_ID, 10**6]) == chars.id_to_token(4)


def test_decode_rejects_2d_and_float_input(chars):
    with pytest.raises(ValueError, match="decode_batch"):
        chars.decode(np.zeros((2, 3), dtype="int32"))
    with pytest.raises(TypeError, match="dtype float"):
        chars.decode(np.array([4.0, 5.0]))


def test_batch_versions_match_single_calls(chars):
    batch = chars.encode_batch(TEXTS, add_eos=True)
    assert batch == [chars.encode(t, add_eos=True) for t in TEXTS]
    assert chars.decode_batch(batch) == TEXTS


def test_decode_batch_accepts_a_padded_2d_array(chars):
    batch = chars.encode_batch(["hello", "sort"], add_eos=True)
    padded = np.zeros((2, 8), dtype="int32")
    for row, ids in zip(padded, batch):
        row[: len(ids)] = ids
    assert chars.decode_batch(padded) == ["hello", "sort"]
    with pytest.raises(ValueError, match=r"2-D.*shape \(8,\)"):
        chars.decode_batch(padded[0])


def test_encode_rejects_non_strings(chars):
    with pytest.raises(TypeError, match=r"Received: text=\[1, 2\]"):
        chars.encode([1, 2])
    with pytest.raises(TypeError, match="not a single string"):
        chars.encode_batch("hello")


def test_char_build_rejects_a_single_string_and_line_breaks():
    with pytest.raises(TypeError, match="not a single string"):
        CharTokenizer.build("hello")
    with pytest.raises(VocabularyError, match=r"line breaks.*token='\\n'"):
        CharTokenizer.build(["two\nlines"])


# --- word tokenizer ------------------------------------------------------------


def test_word_tokenizer_splits_on_whitespace_and_joins_with_single_spaces(words):
    ids = words.encode("the  cat\tsat\n", add_eos=True)
    assert len(ids) == 4 and ids[-1] == EOS_ID
    assert words.decode(ids) == "the cat sat"


def test_word_tokenizer_lowercases_when_asked(words):
    assert words.encode("THE Dog") == words.encode("the dog")
    cased = WordTokenizer.build(["The the"])
    assert cased.vocab_size == 6
    assert cased.encode("THE") == [UNK_ID]


def test_word_tokenizer_unknown_words(words):
    assert words.decode(words.encode("the bird sat")) == "the <unk> sat"
    assert words.unknown_tokens("the bird sat on the bird mat") == ["bird", "on", "mat"]


def test_special_strings_in_text_are_never_control_ids():
    tokenizer = WordTokenizer(Vocabulary(["a"]))
    assert tokenizer.encode("a </s> <s> <pad> <unk> a") == [4, UNK_ID, UNK_ID, UNK_ID, UNK_ID, 4]
    assert tokenizer.unknown_tokens("a </s>") == ["</s>"]


def test_word_tokenizer_from_files_reports_bad_bytes_with_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"corpus\.txt:2: line is not valid UTF-8"):
        WordTokenizer.from_files(path)


def test_from_files_reads_several_files(tmp_path):
    (tmp_path / "a.txt").write_text("b a\na\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("c a b\n", encoding="utf-8")
    tokenizer = WordTokenizer.from_files([tmp_path / "a.txt", str(tmp_path / "b.txt")])
    assert tokenizer.vocabulary.tokens[4:] == ("a", "b", "c")
    chars = CharTokenizer.from_files(tmp_path / "a.txt")
    assert chars.vocabulary.tokens[4:] == ("a", " ", "b")


def test_from_files_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        CharTokenizer.from_files([tmp_path / "nope.txt"])


# --- config, save and load -------------------------------------------------------


@pytest.mark.parametrize("name", ["chars", "words"])
def test_save_and_load_round_trip(name, tmp_path, request):
    tokenizer = request.getfixturevalue(name)
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["class"] == type(tokenizer).__name__
    restored = load_tokenizer(path)
    assert type(restored) is type(tokenizer)
    assert restored.get_config() == tokenizer.get_config()
    text = "héllo the dog"
    assert restored.encode(text) == tokenizer.encode(text)


def test_config_round_trip_keeps_lowercase(words):
    config = {"class": "WordTokenizer", "config": words.get_config()}
    restored = tokenizer_from_config(json.loads(json.dumps(config)))
    assert restored.lowercase is True
    assert restored.vocabulary == words.vocabulary
    assert isinstance(restored, Tokenizer)


def test_tokenizer_from_config_rejects_unknown_class():
    with pytest.raises(TokenizerError, match=r"Received: class='Nope'.*CharTokenizer"):
        tokenizer_from_config({"class": "Nope", "config": {}})
    with pytest.raises(TokenizerError, match="keys"):
        tokenizer_from_config({"config": {}})


def test_load_tokenizer_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.json"):
        load_tokenizer(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "content, match",
    [
        (b'{"class": "CharTokenizer",\n "config": ', r"bad\.json:2: not a tokenizer file: invalid"),
        (b"\xff\xfe", r"bad\.json: not a tokenizer file: expected UTF-8"),
        (b'{"class": "Foo", "config": {}}', r"bad\.json: not a valid tokenizer file.*class='Foo'"),
        (b'{"class": "CharTokenizer", "config": {}}', r"bad\.json: not a valid.*vocabulary"),
        (
            b'{"class": "CharTokenizer", "config": {"vocabulary": {"tokens": ["a", "a"]}}}',
            r"bad\.json: not a valid tokenizer file.*Duplicate token",
        ),
    ],
)
def test_load_tokenizer_bad_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(TokenizerError, match=match):
        load_tokenizer(path)


def test_tokenizer_base_class_is_abstract():
    with pytest.raises(TypeError):
        Tokenizer()
