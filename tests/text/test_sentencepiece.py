import io
import random

import numpy as np
import pytest
import sentencepiece as spm

from seqzoo.errors import DataError, TokenizerError
from seqzoo.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    SentencePieceTokenizer,
    load_tokenizer,
    tokenizer_from_config,
)

ENGLISH = (
    "the a small large red blue green quiet loud cat dog bird fox horse sorts reads "
    "finds sees letters words stones rivers over under near beside quickly slowly"
).split()
HEADS = "ka lo mi ne ru sa".split()
TAILS = "te vo zi bel dor fen gal hup".split()
MADE_UP = [head + tail + end for head in HEADS for tail in TAILS for end in ("", "n", "s")]
WORDS = ENGLISH + MADE_UP
SAMPLE = "the small cat quickly sorts letters near rivers"


def _sentences(n=300, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("spm") / "corpus.txt"
    path.write_text("\n".join(_sentences()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def trained(request, corpus, tmp_path_factory):
    prefix = tmp_path_factory.mktemp(request.param) / "model"
    return SentencePieceTokenizer.train(corpus, prefix, vocab_size=60, model_type=request.param)


@pytest.fixture(scope="module")
def default_ids_model(corpus):
    """A model trained with SentencePiece's own defaults: unk=0, bos=1, eos=2, no pad."""
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(corpus), vocab_size=50, minloglevel=2, model_writer=writer
    )
    return writer.getvalue()


# --- training --------------------------------------------------------------------


def test_train_writes_model_and_vocab_files(trained):
    model_file = trained.model_file
    assert model_file.endswith("model.model")
    with open(model_file, "rb") as f:
        assert f.read() == trained.serialized_model_proto
    with open(model_file[: -len(".model")] + ".vocab", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) == trained.vocab_size == 60
    assert [line.split("\t")[0] for line in lines[:4]] == list(SPECIAL_TOKENS)


def test_trained_model_has_our_special_ids(trained):
    assert [trained.id_to_token(i) for i in range(4)] == list(SPECIAL_TOKENS)
    assert [trained.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    # Models trained here need no remapping: seqzoo's ids are SentencePiece's ids.
    processor = spm.SentencePieceProcessor(model_proto=trained.serialized_model_proto)
    assert trained.encode(SAMPLE) == processor.encode(SAMPLE)


def test_round_trip_encode_decode(trained):
    for text in _sentences(20, seed=1) + [SAMPLE]:
        ids = trained.encode(text)
        assert min(ids) >= 4
        assert trained.decode(ids) == text


def test_add_eos_ends_with_eos_and_pad_is_never_produced(trained):
    batch = trained.encode_batch(_sentences(50, seed=2), add_bos=True, add_eos=True)
    assert all(ids[0] == BOS_ID and ids[-1] == EOS_ID for ids in batch)
    inner = np.concatenate([ids[1:-1] for ids in batch])
    assert not np.isin(inner, [PAD_ID, BOS_ID, EOS_ID]).any()
    assert trained.encode("</s> <pad> <s>").count(EOS_ID) == 0


def test_encode_batch_matches_encode(trained):
    texts = _sentences(10, seed=3)
    expected = [trained.encode(t, add_eos=True) for t in texts]
    assert trained.encode_batch(texts, add_eos=True) == expected


def test_decode_stops_at_eos_and_drops_padding(trained):
    ids = [BOS_ID] + trained.encode("the cat") + [EOS_ID] + trained.encode("dog") + [PAD_ID]
    assert trained.decode(np.array(ids, dtype="int32")) == "the cat"
    padded = np.zeros((2, 12), dtype="int64")
    for row, text in zip(padded, ["the cat", "a dog"]):
        ids = trained.encode(text, add_eos=True)
        row[: len(ids)] = ids
    assert trained.decode_batch(padded) == ["the cat", "a dog"]


def test_unknown_characters_map_to_unk_and_are_reported(trained):
    ids = trained.encode("the cat 日本")
    assert UNK_ID in ids
    assert trained.decode(ids) == "the cat <unk>"
    assert trained.unknown_tokens("the 日本 cat Ω") == ["日本", "Ω"]
    assert trained.unknown_tokens(SAMPLE) == []


def test_training_is_deterministic(corpus, tmp_path):
    first = SentencePieceTokenizer.train(corpus, tmp_path / "a", vocab_size=60)
    second = SentencePieceTokenizer.train(corpus, tmp_path / "b", vocab_size=60)
    pieces = [[t.id_to_token(i) for i in range(t.vocab_size)] for t in (first, second)]
    assert pieces[0] == pieces[1]


def test_train_from_texts(tmp_path):
    texts = _sentences(200)
    tokenizer = SentencePieceTokenizer.train_from_texts(texts, tmp_path / "m", vocab_size=50)
    assert (tmp_path / "m.model").is_file()
    assert tokenizer.decode(tokenizer.encode(SAMPLE)) == SAMPLE


def test_vocab_size_too_large_is_a_tokenizer_error(corpus, tmp_path):
    match = r"Received: vocab_size=5000; the training text supports at most \d+"
    with pytest.raises(TokenizerError, match=match):
        SentencePieceTokenizer.train(corpus, tmp_path / "m", vocab_size=5000)
    assert not (tmp_path / "m.model").exists()


def test_vocab_size_below_the_alphabet_is_a_tokenizer_error(corpus, tmp_path):
    match = r"Received: vocab_size=10; the training text needs at least \d+"
    with pytest.raises(TokenizerError, match=match):
        SentencePieceTokenizer.train(corpus, tmp_path / "m", vocab_size=10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model_type": "wordpiece"}, r"Received: model_type='wordpiece'"),
        ({"vocab_size": 4}, r"Received: vocab_size=4"),
        ({"character_coverage": 0}, r"Received: character_coverage=0"),
        ({"unk_id": 0}, r"Received: unk_id=0"),
    ],
)
def test_train_rejects_bad_arguments(corpus, tmp_path, kwargs, match):
    kwargs = {"vocab_size": 40, **kwargs}
    with pytest.raises(ValueError, match=match):
        SentencePieceTokenizer.train(corpus, tmp_path / "m", **kwargs)


def test_train_reports_non_utf8_input_with_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: line is not valid UTF-8"):
        SentencePieceTokenizer.train(path, tmp_path / "m", vocab_size=40)


def test_train_rejects_missing_and_empty_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        SentencePieceTokenizer.train(tmp_path / "missing.txt", tmp_path / "m", vocab_size=40)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"empty text.*empty\.txt"):
        SentencePieceTokenizer.train([empty], tmp_path / "m", vocab_size=40)


# --- loading ---------------------------------------------------------------------


def test_load_model_file(trained):
    loaded = SentencePieceTokenizer(model_file=trained.model_file)
    assert loaded.encode(SAMPLE) == trained.encode(SAMPLE)


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.model"):
        SentencePieceTokenizer(tmp_path / "nothing.model")


@pytest.mark.parametrize(
    "content",
    [
        bytes(random.Random(0).randrange(256) for _ in range(512)),
        b"hello world\nthis is text\n",
        b"",
    ],
    ids=["random-bytes", "text-file", "empty-file"],
)
def test_corrupt_model_file_is_a_tokenizer_error(tmp_path, content):
    path = tmp_path / "broken.model"
    path.write_bytes(content)
    with pytest.raises(TokenizerError, match=r"broken\.model: not a SentencePiece model"):
        SentencePieceTokenizer(path)


def test_constructor_needs_exactly_one_source(trained):
    with pytest.raises(ValueError, match="exactly one"):
        SentencePieceTokenizer()
    with pytest.raises(ValueError, match="exactly one"):
        SentencePieceTokenizer(
            model_file=trained.model_file, model_proto=trained.serialized_model_proto
        )


def test_config_round_trip_needs_no_model_file(trained, tmp_path):
    config = {"class": "SentencePieceTokenizer", "config": trained.get_config()}
    assert isinstance(config["config"]["model_proto"], str)
    restored = tokenizer_from_config(config)
    assert restored.model_file is None
    assert restored.encode(SAMPLE, add_eos=True) == trained.encode(SAMPLE, add_eos=True)
    path = tmp_path / "tokenizer.json"
    trained.save(path)
    assert load_tokenizer(path).decode(trained.encode(SAMPLE)) == SAMPLE


def test_from_config_rejects_bad_base64():
    with pytest.raises(TokenizerError, match="base64"):
        SentencePieceTokenizer.from_config({"model_proto": "not base64!"})


# --- id remapping for foreign models --------------------------------------------


def test_default_sentencepiece_ids_are_remapped(default_ids_model):
    processor = spm.SentencePieceProcessor(model_proto=default_ids_model)
    model_specials = [processor.pad_id(), processor.unk_id(), processor.bos_id()]
    assert model_specials + [processor.eos_id()] == [-1, 0, 1, 2]
    tokenizer = SentencePieceTokenizer(model_proto=default_ids_model)
    size = processor.get_piece_size()
    assert tokenizer.vocab_size == size + 1  # the model has no pad; ours is added
    assert [tokenizer.id_to_token(i) for i in range(4)] == list(SPECIAL_TOKENS)
    # The model's first ordinary piece (id 3) becomes seqzoo's id 4, and so on in order.
    assert [tokenizer.id_to_token(i) for i in range(4, tokenizer.vocab_size)] == [
        processor.id_to_piece(i) for i in range(3, size)
    ]
    model_ids = processor.encode(SAMPLE)
    assert tokenizer.encode(SAMPLE, add_eos=True) == [i + 1 for i in model_ids] + [EOS_ID]
    assert tokenizer.encode_batch([SAMPLE]) == [[i + 1 for i in model_ids]]
    ids = tokenizer.encode(SAMPLE, add_bos=True, add_eos=True) + [PAD_ID]
    assert tokenizer.decode(ids) == SAMPLE
    assert UNK_ID in tokenizer.encode("日本 cat")
    assert tokenizer.token_to_id(processor.id_to_piece(3)) == 4
    assert tokenizer.token_to_id("no-such-piece") == UNK_ID


def test_remapped_tokenizer_survives_save_and_load(default_ids_model, tmp_path):
    tokenizer = SentencePieceTokenizer(model_proto=default_ids_model)
    tokenizer.save(tmp_path / "tok.json")
    restored = load_tokenizer(tmp_path / "tok.json")
    assert restored.vocab_size == tokenizer.vocab_size
    assert restored.encode(SAMPLE) == tokenizer.encode(SAMPLE)


def test_id_to_token_out_of_range(trained):
    with pytest.raises(ValueError, match=r"0 <= id < 60.*token_id=60"):
        trained.id_to_token(60)
    assert trained.id_to_token(np.int32(4)) == trained.id_to_token(4)
