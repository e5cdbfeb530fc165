"""Each model family learns a tiny task, honours padding and runs step by step."""

import keras
import numpy as np
import pytest
from keras import ops

import seqzoo
from seqzoo.data import decoder_io
from seqzoo.models import RNNLanguageModel, SequenceClassifier, SequenceRegressor, SequenceTagger
from seqzoo.text import CharTokenizer


def _np(x):
    return ops.convert_to_numpy(x)


def _fast_compile(model, lr=0.01):
    model.compile(optimizer=keras.optimizers.Adam(lr, global_clipnorm=5.0))
    return model


def _padded_tokens(rng, n, max_len, low=4, high=12):
    lengths = rng.integers(2, max_len + 1, size=n)
    ids = rng.integers(low, high, size=(n, max_len))
    return np.where(np.arange(max_len)[None] < lengths[:, None], ids, 0), lengths


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_classifier_output_ignores_padding(pooling):
    model = SequenceClassifier(3, vocab_size=12, embedding_dim=4, units=6, num_layers=2,
                               bidirectional=True, pooling=pooling)
    ids, lengths = _padded_tokens(np.random.default_rng(0), 4, 7)
    # Compiled calls: eager JAX compiles every RNN scan anew on each call.
    batch = model.predict_on_batch(ids)
    for row, n in enumerate(lengths):
        alone = model.predict_on_batch(ids[row:row + 1, :n])
        np.testing.assert_allclose(batch[row], alone[0], atol=1e-5)


def test_classifier_learns_which_token_comes_first():
    rng = np.random.default_rng(1)
    ids, _ = _padded_tokens(rng, 512, 6)
    labels = (ids[:, 0] % 3).astype("int32")
    model = _fast_compile(SequenceClassifier(3, vocab_size=12, embedding_dim=8, units=16,
                                             bidirectional=True))
    history = model.fit(ids, labels, epochs=6, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_feature_classifier_reads_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 5, 3)).astype("float32")
    labels = (x[:, :, 0].sum(1) > 0).astype("int32")
    model = _fast_compile(seqzoo.create("row_lstm_classifier", input_dim=3, num_classes=2,
                                        units=8))
    history = model.fit(x, labels, epochs=8, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.85


def test_echo_tagger_reaches_high_accuracy():
    rng = np.random.default_rng(3)
    ids, _ = _padded_tokens(rng, 512, 10, low=4, high=9)
    shift = 2
    tags = np.concatenate([np.full((512, shift), 1), ids[:, :-shift]], axis=1)
    tags = np.where(ids > 0, tags, 0)
    model = _fast_compile(SequenceTagger(9, vocab_size=9, embedding_dim=8, units=32,
                                         num_layers=1))
    history = model.fit(ids, tags, epochs=15, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.95


def test_tagger_loss_and_accuracy_skip_padded_steps():
    model = _fast_compile(SequenceTagger(5, vocab_size=10, embedding_dim=4, units=4,
                                         num_layers=1))
    ids = np.array([[4, 5, 0, 0]])
    tags = np.array([[1, 2, 0, 0]])
    other = np.array([[1, 2, 4, 3]])  # differs on padded steps only
    a = model.evaluate(ids, tags, verbose=0, return_dict=True)
    b = model.evaluate(ids, other, verbose=0, return_dict=True)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert a["accuracy"] == pytest.approx(b["accuracy"])


def _sin_cos(n=64, steps=40, seed=4):
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    t = np.linspace(0, 4 * np.pi, steps)[None, :, None]
    return np.sin(t + phase).astype("float32"), np.cos(t + phase).astype("float32")


def test_regressor_maps_sin_to_cos():
    x, y = _sin_cos()
    model = _fast_compile(SequenceRegressor(units=16))
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    # cos is a phase shift of sin: after a few steps the RNN knows the phase.
    error = np.mean((model.predict(x, verbose=0)[:, 5:] - y[:, 5:]) ** 2)
    assert error < 0.02


def test_stateful_regressor_carries_state_across_batches():
    x, _ = _sin_cos(n=2)
    model = SequenceRegressor(units=8, stateful=True, batch_size=2)
    whole = _np(SequenceRegressor.from_config(
        {**model.get_config(), "stateful": False, "batch_size": None})(x))  # shape only
    assert whole.shape == (2, 40, 1)
    first = _np(model(x[:, :20]))
    second = _np(model(x[:, 20:]))
    model.reset_states()
    again = _np(model(x[:, :20]))
    np.testing.assert_allclose(first, again, atol=1e-6)
    # Chunks fed in order equal one pass over the whole series.
    stateless = SequenceRegressor(units=8)
    stateless.set_weights(model.get_weights())
    full = _np(stateless(x))
    np.testing.assert_allclose(np.concatenate([first, second], 1), full, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size=None"):
        SequenceRegressor(stateful=True)


TEXTS = ["abcabc", "abcab", "abca", "abcabcabc", "bca", "cab"] * 40


def _lm_data():
    tok = CharTokenizer.build(TEXTS)
    inputs, targets = decoder_io(tok.encode_batch(TEXTS))
    return tok, inputs, targets


@pytest.mark.parametrize("num_sampled", [None, 5])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_language_model_learns_and_generates(cell, num_sampled):
    tok, inputs, targets = _lm_data()
    model = _fast_compile(RNNLanguageModel(tok.vocab_size, embedding_dim=16, units=24,
                                           num_layers=1, cell=cell, num_sampled=num_sampled,
                                           tokenizer=tok))
    # 240 texts in 8 full batches of 30: one compiled train step and one test step.
    before = model.evaluate(inputs, targets, batch_size=30, verbose=0, return_dict=True)
    model.fit(inputs, targets, epochs=6, batch_size=30, verbose=0)
    after = model.evaluate(inputs, targets, batch_size=30, verbose=0, return_dict=True)
    # Sampled softmax approximates the gradient: with 5 of 7 classes it
    # learns more slowly than the full softmax in the same steps.
    factor = 0.5 if num_sampled is None else 0.7
    assert after["perplexity"] < factor * before["perplexity"]
    text = model.generate(["ab"], max_length=10, greedy=True)[0]
    assert text.startswith("ab") and len(text) <= 10


def test_sampled_training_reports_loss_only_and_full_softmax_in_evaluation():
    tok, inputs, targets = _lm_data()
    model = _fast_compile(RNNLanguageModel(tok.vocab_size, embedding_dim=8, units=8,
                                           num_layers=1, num_sampled=2))
    # 240 texts in 4 full batches: one compiled train and test step on JAX.
    history = model.fit(inputs, targets, epochs=1, batch_size=60, verbose=0)
    assert set(history.history) == {"loss"}
    results = model.evaluate(inputs, targets, batch_size=60, verbose=0, return_dict=True)
    assert {"loss", "perplexity", "token_accuracy"} <= set(results)
    # Evaluation loss is the full softmax cross-entropy: exp(loss) = perplexity.
    assert np.exp(results["loss"]) == pytest.approx(results["perplexity"], rel=1e-4)


def test_language_model_step_matches_the_whole_sequence_pass():
    tok, inputs, _ = _lm_data()
    model = RNNLanguageModel(tok.vocab_size, embedding_dim=8, units=12, num_layers=2,
                             residual=False)
    batch = inputs[:3]
    logits = model.predict_on_batch(batch)
    states = model.parts["stack"].initial_states(3)
    steps = []
    for t in range(batch.shape[1]):
        step_logits, states = model.step(batch[:, t], states)
        steps.append(_np(step_logits))
    mask = batch != 0
    np.testing.assert_allclose(np.stack(steps, 1)[mask], logits[mask], atol=1e-5)


def test_tied_embeddings_share_one_matrix():
    tied = RNNLanguageModel(30, embedding_dim=8, units=12, num_layers=1)
    untied = RNNLanguageModel(30, embedding_dim=8, units=12, num_layers=1,
                              tie_embeddings=False)
    # Tied: no [30, 8] output kernel of its own (a projection 12 -> 8 instead).
    assert tied.count_params() < untied.count_params()
    assert tied.parts["head"].kernel is tied.parts["embedding"].embeddings


def test_sampling_is_reproducible_with_a_seed_and_respects_temperature():
    tok, inputs, targets = _lm_data()
    model = _fast_compile(RNNLanguageModel(tok.vocab_size, embedding_dim=8, units=16,
                                           num_layers=1, tokenizer=tok))
    model.fit(inputs, targets, epochs=3, batch_size=40, verbose=0)  # 6 full batches
    a = model.generate(["", "a", "bc"], max_length=12, seed=7, temperature=1.5)
    b = model.generate(["", "a", "bc"], max_length=12, seed=7, temperature=1.5)
    assert a == b
    assert a[1].startswith("a") and a[2].startswith("bc")
    with pytest.raises(ValueError, match="max_length=3"):
        model.generate(["abcd"], max_length=3)
