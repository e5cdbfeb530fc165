"""Fine-tuning with a new vocabulary: sources, the swap, freezing, and the payoff."""

import keras
import numpy as np
import pytest

from seqzoo.data import decoder_io, pad_sequences
from seqzoo.errors import DataError, InputError
from seqzoo.models.base import save_model
from seqzoo.models.classifier import SequenceClassifier
from seqzoo.models.language_model import RNNLanguageModel
from seqzoo.models.seq2seq import Seq2Seq
from seqzoo.text import CharTokenizer, SentencePieceTokenizer, Vocabulary, WordTokenizer
from seqzoo.training import (
    FreezeFor,
    frozen_variables,
    load_vocabulary_source,
    swap_vocabulary,
    token_mapping,
    train_vocabulary,
)

OLD_LETTERS = "abcdefghijklm"
# Drops "a", adds "n", "o", "p", and puts every shared letter at a new id.
NEW_LETTERS = "ponmlkjihgfedcb"
SHARED_LETTERS = "bcdefghijklm"
# XLA takes longer to compile these tiny models on a CPU than to train them.
JIT = False if keras.backend.backend() == "tensorflow" else "auto"


def char_tokenizer(letters):
    return CharTokenizer(Vocabulary(list(letters)))


def words(rng, letters, count, shortest=3, longest=6):
    return ["".join(rng.choice(list(letters), rng.integers(shortest, longest + 1)))
            for _ in range(count)]


def reverse_data(tokenizer, sources):
    """Inputs and targets of the task "reverse the word"."""
    decoder_inputs, targets = decoder_io(tokenizer.encode_batch([w[::-1] for w in sources]))
    x = {"source_ids": pad_sequences(tokenizer.encode_batch(sources)),
         "decoder_input_ids": decoder_inputs}
    return x, targets


def tiny_seq2seq(tokenizer, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return Seq2Seq(tokenizer.vocab_size, tokenizer.vocab_size, embedding_dim=16, units=32,
                   attention="luong", source_tokenizer=tokenizer, target_tokenizer=tokenizer,
                   **kwargs)


def fit(model, x, y, epochs, seed=1, **kwargs):
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=5.0),
                  jit_compile=JIT)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, **kwargs)
    return model


@pytest.fixture(scope="module")
def pretrained():
    """A char seq2seq that reverses words over a-m (200 steps)."""
    tokenizer = char_tokenizer(OLD_LETTERS)
    train = words(np.random.default_rng(0), OLD_LETTERS, 1600)
    return fit(tiny_seq2seq(tokenizer), *reverse_data(tokenizer, train), epochs=4)


@pytest.fixture(scope="module")
def untrained():
    """An untrained char seq2seq over a-m (the swaps below leave it as it is)."""
    return tiny_seq2seq(char_tokenizer(OLD_LETTERS))


def value(variable):
    return keras.ops.convert_to_numpy(variable)


# -- the swap ---------------------------------------------------------------------


def test_swap_keeps_greedy_predictions_on_shared_tokens(pretrained):
    new_tokenizer = char_tokenizer(NEW_LETTERS)
    model, _ = swap_vocabulary(pretrained, tokenizer=new_tokenizer)
    inputs = words(np.random.default_rng(5), SHARED_LETTERS, 100)
    before = pretrained.translate(inputs)
    # The precondition of the guarantee: the old model answers with shared tokens.
    assert all(set(text) <= set(SHARED_LETTERS) for text in before)
    assert sum(b == w[::-1] for b, w in zip(before, inputs)) >= 60  # it did learn
    assert model.translate(inputs) == before
    # The same ids through the search, on the ids of each vocabulary.
    old_ids = pretrained.search(pad_sequences(pretrained.source_tokenizer.encode_batch(inputs)),
                                method="greedy")["ids"][:, 0]
    new_ids = model.search(pad_sequences(new_tokenizer.encode_batch(inputs)),
                           method="greedy")["ids"][:, 0]
    assert [pretrained.target_tokenizer.decode(r) for r in old_ids] == \
        [new_tokenizer.decode(r) for r in new_ids]


def test_swap_copies_rows_by_token_and_everything_else(untrained):
    old = untrained
    old_tokenizer = old.source_tokenizer
    new_tokenizer = char_tokenizer(NEW_LETTERS)
    new, report = swap_vocabulary(old, tokenizer=new_tokenizer)
    assert new.source_tokenizer is new_tokenizer and new.target_tokenizer is new_tokenizer
    mapping = token_mapping(old_tokenizer, new_tokenizer)
    assert mapping.tolist() == [0, 1, 2, 3, -1, -1, -1] + [4 + OLD_LETTERS.index(c)
                                                           for c in NEW_LETTERS[3:]]
    old_parts, new_parts = old._parts, new._parts
    pairs = [(old_parts["source_embedding"].embeddings, new_parts["source_embedding"].embeddings),
             (old_parts["target_embedding"].embeddings, new_parts["target_embedding"].embeddings),
             (old_parts["head"].kernel, new_parts["head"].kernel),
             (old_parts["head"].bias, new_parts["head"].bias)]
    shared_old = mapping[mapping >= 4]
    for old_var, new_var in pairs:
        old_rows, new_rows = value(old_var), value(new_var)
        assert new_rows.shape[0] == 19
        for new_id, old_id in enumerate(mapping):
            if old_id >= 0:
                np.testing.assert_array_equal(new_rows[new_id], old_rows[old_id])
        mean = old_rows[shared_old].mean(axis=0)
        for new_id in (4, 5, 6):  # p, o, n
            np.testing.assert_allclose(new_rows[new_id], mean, rtol=1e-6, atol=1e-7)
    row_vars = {id(v) for pair in pairs for v in pair}
    others = [(a, b) for a, b in zip(old.variables, new.variables) if id(b) not in row_vars]
    assert len(others) == len(old.variables) - 4
    for a, b in others:
        np.testing.assert_array_equal(value(a), value(b))


def test_report_counts(untrained):
    old = untrained
    _, report = swap_vocabulary(old, target_tokenizer=char_tokenizer(NEW_LETTERS))
    assert set(report.changes) == {"target"}  # the source side was left alone
    change = report["target"]
    assert (change.old_size, change.new_size, change.kept) == (17, 19, 16)
    assert change.added == ("p", "o", "n") and change.dropped == ("a",)
    assert str(change).startswith("target vocabulary: 17 -> 19 tokens: 16 kept, 3 added, "
                                  "1 dropped")
    new, report = swap_vocabulary(old, source_tokenizer=char_tokenizer("xyzab"),
                                  target_tokenizer=char_tokenizer(NEW_LETTERS))
    source = report["source"]
    assert (source.kept, len(source.added), len(source.dropped)) == (6, 3, 11)
    assert new.source_tokenizer is not new.target_tokenizer
    assert new._hyperparameters["source_vocab_size"] == 9
    assert "source vocabulary: 17 -> 9 tokens: 6 kept, 3 added, 11 dropped" in str(report)


def test_random_init_and_bad_arguments(untrained):
    old = untrained
    new, _ = swap_vocabulary(old, tokenizer=char_tokenizer(NEW_LETTERS), init="random")
    bias = value(new._parts["head"].bias)
    assert np.all(bias[4:7] == 0)  # the initializer's zeros, not the mean
    with pytest.raises(InputError, match="init"):
        swap_vocabulary(old, tokenizer=char_tokenizer("ab"), init="zeros")
    with pytest.raises(InputError, match="either"):
        swap_vocabulary(old, char_tokenizer("ab"), tokenizer=char_tokenizer("ab"))
    no_tokenizer = Seq2Seq(17, 17, embedding_dim=8, units=8)
    with pytest.raises(InputError, match="no source_tokenizer"):
        swap_vocabulary(no_tokenizer, tokenizer=char_tokenizer("ab"))


def test_tied_model_and_single_vocabulary_models():
    old_tokenizer, new_tokenizer = char_tokenizer(OLD_LETTERS), char_tokenizer(NEW_LETTERS)
    mapping = token_mapping(old_tokenizer, new_tokenizer)
    tied = tiny_seq2seq(old_tokenizer, tie_embeddings=True)
    new, _ = swap_vocabulary(tied, tokenizer=new_tokenizer)
    assert new._parts["head"].kernel is new._parts["target_embedding"].embeddings
    np.testing.assert_array_equal(value(new._parts["head"].kernel)[mapping >= 0],
                                  value(tied._parts["head"].kernel)[mapping[mapping >= 0]])
    lm = RNNLanguageModel(old_tokenizer.vocab_size, embedding_dim=8, units=8, num_layers=1,
                          tokenizer=old_tokenizer)
    new_lm, report = swap_vocabulary(lm, tokenizer=new_tokenizer)
    assert report["tokens"].kept == 16 and new_lm.tokenizer is new_tokenizer
    np.testing.assert_array_equal(value(new_lm._parts["head"].bias)[mapping >= 0],
                                  value(lm._parts["head"].bias)[mapping[mapping >= 0]])
    classifier = SequenceClassifier(num_classes=3, vocab_size=old_tokenizer.vocab_size,
                                    embedding_dim=8, units=8, tokenizer=old_tokenizer)
    new_classifier, _ = swap_vocabulary(classifier, tokenizer=new_tokenizer)
    x = pad_sequences(old_tokenizer.encode_batch(["bcd", "mlk"]))
    new_x = pad_sequences(new_tokenizer.encode_batch(["bcd", "mlk"]))
    np.testing.assert_allclose(new_classifier.predict(new_x, verbose=0),
                               classifier.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="one vocabulary"):
        swap_vocabulary(classifier, source_tokenizer=new_tokenizer)
    features = SequenceClassifier(num_classes=2, input_dim=4, units=8)
    with pytest.raises(InputError, match="feature vectors"):
        swap_vocabulary(features, tokenizer=new_tokenizer)


def test_finetuning_beats_training_from_scratch(pretrained):
    """Same new-domain data, same steps, same seed: the swapped model wins clearly."""
    tokenizer = char_tokenizer(NEW_LETTERS)
    rng = np.random.default_rng(3)
    x, y = reverse_data(tokenizer, words(rng, NEW_LETTERS, 320))  # 10 steps an epoch
    dev_x, dev_y = reverse_data(tokenizer, words(rng, NEW_LETTERS, 200))
    results = {}
    swapped, _ = swap_vocabulary(pretrained, tokenizer=tokenizer)
    for name, model in (("finetuned", swapped), ("scratch", tiny_seq2seq(tokenizer, seed=0))):
        fit(model, x, y, epochs=3)
        # 4 full batches of 50: one compiled test step.
        results[name] = model.evaluate(dev_x, dev_y, batch_size=50, verbose=0, return_dict=True)
    finetuned, scratch = results["finetuned"], results["scratch"]
    assert finetuned["loss"] < 0.5 * scratch["loss"], results
    assert finetuned["exact_match"] > scratch["exact_match"] + 0.3, results


# -- vocabulary sources -----------------------------------------------------------


def test_plain_vocabulary_needs_the_special_tokens(tmp_path):
    path = tmp_path / "letters.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"letters\.txt:1: expected the special token '<pad>'"):
        load_vocabulary_source(path, like=char_tokenizer("ab"))
    loaded = load_vocabulary_source(path, like=char_tokenizer("ab"), add_specials=True)
    assert isinstance(loaded, CharTokenizer) and loaded.vocab_size == 7


def test_plain_vocabulary_takes_the_old_tokenizers_kind(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<unk>\n<s>\n</s>\nhello\nworld\n", encoding="utf-8")
    old_words = WordTokenizer(Vocabulary(["hello"]), lowercase=True)
    loaded = load_vocabulary_source(str(path), like=old_words)
    assert isinstance(loaded, WordTokenizer) and loaded.lowercase
    assert loaded.encode("Hello WORLD") == [4, 5]
    with pytest.raises(DataError, match=r"vocab\.txt:5: expected one character per line"):
        load_vocabulary_source(path, like=char_tokenizer("ab"))
    with pytest.raises(InputError, match=r"vocab\.txt: cannot tell"):
        load_vocabulary_source(path)
    # A word vocabulary of "word count" lines (or trailing spaces): words a word
    # tokenizer never produces.
    for line in ("world 523", "world\t523", "world "):
        counted = tmp_path / "counted.txt"
        counted.write_text(f"<pad>\n<unk>\n<s>\n</s>\nhello\n{line}\n", encoding="utf-8")
        with pytest.raises(DataError, match=r"counted\.txt:6: expected one word per line"):
            load_vocabulary_source(counted, like=old_words)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_vocabulary_source(tmp_path / "missing.txt", like=old_words)
    json_path = tmp_path / "tokenizer.json"
    old_words.save(json_path)
    assert load_vocabulary_source(json_path).encode("hello") == [4]


def test_sentencepiece_model_and_trained_vocabularies(tmp_path):
    texts = ["the cat sat on the mat", "a dog ran to the cat", "the mat is red"] * 20
    trained = SentencePieceTokenizer.train_from_texts(texts, tmp_path / "sp", 20)
    loaded = load_vocabulary_source(tmp_path / "sp.model")
    assert isinstance(loaded, SentencePieceTokenizer)
    assert loaded.encode("the cat") == trained.encode("the cat")
    again = train_vocabulary(texts, 18, like=loaded)
    assert isinstance(again, SentencePieceTokenizer) and again.vocab_size == 18
    chars = train_vocabulary(["abcabc", "nop"], 7, like=char_tokenizer("ab"))
    assert isinstance(chars, CharTokenizer)
    assert chars.vocabulary.tokens[4:] == ("a", "b", "c")  # the 3 most frequent
    with pytest.raises(InputError, match="size"):
        train_vocabulary(texts, 4, like=chars)
    # A word model moved onto a SentencePiece vocabulary: whole-word pieces match.
    old_words = WordTokenizer.build(texts)
    model = Seq2Seq(old_words.vocab_size, old_words.vocab_size, embedding_dim=8, units=8,
                    source_tokenizer=old_words, target_tokenizer=old_words)
    _, report = swap_vocabulary(model, tokenizer=loaded)
    change = report["source"]
    assert change.kept + len(change.added) == loaded.vocab_size
    assert change.kept + len(change.dropped) == old_words.vocab_size


# -- freezing ---------------------------------------------------------------------


class Recorder(keras.callbacks.Callback):
    def __init__(self, variables):
        super().__init__()
        self.variables, self.history = variables, []

    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.history.append([value(v).copy() for v in self.variables])


def test_freeze_for_keeps_parts_unchanged_then_trains_them(tmp_path):
    tokenizer = char_tokenizer(OLD_LETTERS)
    model = tiny_seq2seq(tokenizer)
    x, y = reverse_data(tokenizer, words(np.random.default_rng(2), OLD_LETTERS, 160))
    # One model, frozen twice in turn: FreezeFor restores values and needs no
    # recompiling, so the second `fit` reuses the compiled train step.
    for parts in ("encoder", "embeddings"):
        frozen = frozen_variables(model, parts)
        assert frozen and len(frozen) < len(model.trainable_variables)
        free = [v for v in model.trainable_variables if all(v is not f for f in frozen)]
        start = [value(v).copy() for v in frozen]
        free_start = value(free[-1]).copy()
        recorder, freezer = Recorder(frozen), FreezeFor(3, parts=parts)
        if parts == "encoder":
            fit(model, x, y, epochs=1, callbacks=[freezer, recorder])  # 5 steps
        else:
            model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[freezer, recorder])
        assert len(recorder.history) == 5 and freezer.steps_done == 3 and not freezer.frozen
        for step in range(3):
            for before, now in zip(start, recorder.history[step]):
                np.testing.assert_array_equal(before, now)
        for step in (3, 4):
            assert any(not np.array_equal(b, n) for b, n in zip(start, recorder.history[step]))
        assert not np.array_equal(free_start, value(free[-1]))  # the rest trained from step 1
    path = tmp_path / "frozen.keras"
    save_model(model, path)  # the model is unchanged in structure: it saves and loads
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.trainable_variables, loaded.trainable_variables):
        np.testing.assert_array_equal(value(a), value(b))


def test_freeze_for_bad_parts():
    model = tiny_seq2seq(char_tokenizer("ab"))
    with pytest.raises(InputError, match="no part 'encoders'.*'encoder'"):
        frozen_variables(model, ["encoders"])
    with pytest.raises(InputError, match="steps"):
        FreezeFor(-1)
