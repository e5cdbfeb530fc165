"""Seq2Seq: padding, fused vs stepwise decoding, save/load, learning, translate."""

import keras
import numpy as np
import pytest
from keras import ops

import seqzoo
from seqzoo.data import decoder_io, pad_sequences
from seqzoo.errors import ArgumentError
from seqzoo.models import Seq2Seq
from seqzoo.text import CharTokenizer

LETTERS = "abcdefgh"
TOKENIZER = CharTokenizer.build([LETTERS])
VARIANTS = {
    "basic": dict(attention=None, bidirectional=False),
    "luong": dict(attention="luong"),
    "luong_feed": dict(attention="luong", input_feeding=True),
    "bahdanau": dict(attention="bahdanau", input_feeding=True, attention_normalize=True),
}


def _np(x):
    return ops.convert_to_numpy(x)


def _model(variant, **kwargs):
    config = dict(embedding_dim=8, units=8, source_tokenizer=TOKENIZER,
                  target_tokenizer=TOKENIZER, **VARIANTS[variant])
    config.update(kwargs)
    return Seq2Seq(TOKENIZER.vocab_size, TOKENIZER.vocab_size, **config)


def _words(n, seed, low=1, high=6):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(LETTERS), size=rng.integers(low, high + 1))) for _ in range(n)]


def _batch(sources, targets):
    dec_in, dec_out = decoder_io(TOKENIZER.encode_batch(targets))
    x = {"source_ids": pad_sequences(TOKENIZER.encode_batch(sources)), "decoder_input_ids": dec_in}
    return x, dec_out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_padding_changes_no_output(variant):
    model = _model(variant)
    words = ["ab", "hgfedc", "c"]
    x, _ = _batch(words, words)
    # Compiled calls: eager JAX compiles every RNN scan anew on each call.
    batch = model.predict_on_batch(x)
    for row, word in enumerate(words):
        alone, _ = _batch([word], [word])
        out = model.predict_on_batch(alone)[0]
        np.testing.assert_allclose(batch[row, : out.shape[0]], out, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_step_function_gives_the_teacher_forced_logits(variant):
    """The fused (or scanned) training decoder and the inference step agree."""
    model = _model(variant, num_layers=2, residual=False)
    x, _ = _batch(["abc", "hgfedc"], ["cba", "cdefgh"])
    logits = model.predict_on_batch(x)
    state = model.encode(x["source_ids"])
    steps = []
    for t in range(x["decoder_input_ids"].shape[1]):
        step_logits, state = model.step(x["decoder_input_ids"][:, t], state)
        steps.append(_np(step_logits))
    mask = x["decoder_input_ids"] != 0
    np.testing.assert_allclose(np.stack(steps, 1)[mask], logits[mask], atol=1e-5)


@pytest.mark.parametrize("bridge", ["copy", "dense", "zero"])
def test_bridges_build_and_copy_checks_sizes(bridge):
    model = _model("luong", bridge=bridge, num_layers=2)
    x, _ = _batch(["abc"], ["cba"])
    assert _np(model(x)).shape == (1, 4, TOKENIZER.vocab_size)
    if bridge == "copy":
        with pytest.raises(ValueError, match="decoder_units"):
            _model("luong", bridge="copy", decoder_units=5)


def test_attention_weights_sum_to_one_over_the_source():
    model = _model("luong_feed")
    x, _ = _batch(["abc", "hgfedc"], ["cba", "cdefgh"])
    weights = model.attention_weights(x["source_ids"], x["decoder_input_ids"])
    assert weights.shape == (2, 7, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(weights[0, :, 3:], 0.0)  # "abc" is 3 long


def _train(variant, task, epochs, seed=0, high=6, size=2000, preset=None, **kwargs):
    """`variant` (or the zoo's `preset`) of 32 units trained on `task`."""
    words = _words(size, seed, high=high)
    targets = [task(w) for w in words]
    if preset is None:
        model = _model(variant, units=32, embedding_dim=16, **kwargs)
    else:
        model = seqzoo.create(preset, source_vocab_size=TOKENIZER.vocab_size,
                              target_vocab_size=TOKENIZER.vocab_size, embedding_dim=16,
                              units=32, source_tokenizer=TOKENIZER, target_tokenizer=TOKENIZER,
                              **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(0.01, global_clipnorm=5.0))
    x, y = _batch(words, targets)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def _exact_match(model, task, high=6, **kwargs):
    words = _words(200, seed=99, high=high)
    outputs = model.translate(words, **kwargs)
    return np.mean([o == task(w) for o, w in zip(outputs, words)])


def _reverse(word):
    return word[::-1]


_REVERSERS = {}


def _reverser(variant):
    """The zoo's preset `seq2seq_<variant>` (Bahdanau's with normalized attention)
    trained to reverse words, once per module (the first test to ask trains it)."""
    if variant not in _REVERSERS:
        # The fixed-vector model learns more slowly: shorter words, more epochs.
        high = 4 if variant == "basic" else 6
        extra = {"attention_normalize": True} if variant == "bahdanau" else {}
        # 31 full batches of 64: one compiled train step.
        model = _train(variant, _reverse, epochs=10 if variant == "basic" else 5, high=high,
                       size=1984, preset=f"seq2seq_{variant}", **extra)
        _REVERSERS[variant] = model, high
    return _REVERSERS[variant]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_preset_learns_to_reverse(variant):
    model, high = _reverser(variant)
    assert model.get_config()["attention"] == VARIANTS[variant]["attention"]
    assert _exact_match(model, _reverse, high=high) > 0.9


def test_beam_search_translations_n_best_and_alignments():
    model, _ = _reverser("luong")
    greedy = model.translate(["abc", "hgfe"])
    beam = model.translate(["abc", "hgfe"], beam_size=4)
    assert beam == greedy == ["cba", "efgh"]
    result = model.translate(["abc"], beam_size=4, n_best=3, return_scores=True,
                             return_alignments=True)
    assert len(result["texts"][0]) == 3 and result["texts"][0][0] == "cba"
    assert np.all(np.diff(result["scores"][0]) <= 1e-6)  # best first
    alignment = result["alignments"][0][0]  # [T, S] of the best hypothesis
    assert alignment.shape[1] == 3
    # Reversing attends to the letter it writes: the last first.
    assert list(alignment[:3].argmax(-1)) == [2, 1, 0]


@pytest.mark.parametrize("options", [
    {},
    {"beam_size": 3, "n_best": 2, "return_alignments": True},
    {"prefixes": True},
])
def test_translate_in_length_ordered_batches_gives_what_one_search_gives(options, monkeypatch):
    model, high = _reverser("luong")
    words = _words(11, seed=5, high=high) + ["abcdefghabcdefgh"]  # one wider than 8
    options = dict(options)
    if options.pop("prefixes", False):
        options["prefixes"] = [w[-1] if i % 2 else "" for i, w in enumerate(words)]
    whole = model.translate(words, return_scores=True, **options)
    calls = []
    search = model.search
    monkeypatch.setattr(model, "search", lambda ids, **kw: calls.append(ids) or search(ids, **kw))
    batched = model.translate(words, return_scores=True, batch_size=5, **options)
    # Three searches of 5 rows (the last filled up), the words in order of length.
    assert [len(ids) for ids in calls] == [5, 5, 5]
    lengths = [int((row != 0).sum()) for ids in calls for row in ids][:len(words)]
    assert lengths == sorted(len(w) for w in words)
    assert batched["texts"] == whole["texts"]
    best = [t[0] if isinstance(t, list) else t for t in batched["texts"]]
    assert sum(t == w[::-1] for t, w in zip(best, words)) >= 9
    np.testing.assert_allclose(batched["scores"], whole["scores"], rtol=1e-5, atol=1e-5)
    for got, want in zip(batched.get("alignments", []), whole.get("alignments", [])):
        np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ArgumentError, match="batch_size=0"):
        model.translate(words, batch_size=0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow's tracing; JAX compiles once per shape")
def test_tensorflow_traces_a_search_once_for_every_batch_size_and_width():
    model = _model("luong")
    for words in (["ab"], ["abcdefghab", "a"], ["abcdefghabcdefghabc", "b", "cd", "e", "f"]):
        model.translate(words, max_length=12)
        model.translate(words, max_length=12, beam_size=3,
                        prefixes=["a"] + [""] * (len(words) - 1))
    compiled = model._search_fn._cache
    assert len(compiled) == 2  # greedy; beam with prefixes
    assert [fn.experimental_get_tracing_count() for fn in compiled.values()] == [1, 1]


@pytest.mark.parametrize("variant", ["luong_feed", "bahdanau"])
def test_beams_attending_one_shared_memory_find_what_tiled_memories_find(variant):
    # Beam search keeps the encoder memory one row per item (`Seq2Seq.beam_shared`)
    # and the decoder attends all beams of an item at once; with the memory tiled to
    # one row per beam, the same search must find the same hypotheses and scores.
    from seqzoo.decoding import CompiledFunction
    from seqzoo.models.search import SEARCH_OPTIONS, search_step_function

    model, _ = _reverser(variant)
    assert model.beam_shared == ("memory", "keys", "mask")
    tiled = CompiledFunction(
        search_step_function(model.encode, model.step, True, lambda st: st["alignment"],
                             lambda st: st["mask"], beam_shared=()),
        lambda: model.variables)
    source = pad_sequences([TOKENIZER.encode(w) for w in _words(24, seed=8)])
    source = np.pad(source, ((0, 0), (0, 8 - source.shape[1] % 8)))
    options = dict(SEARCH_OPTIONS, length_penalty=0.6)
    expected = tiled(source, np.zeros((12, len(source)), "float32"), method="beam",
                     max_length=12, beam_size=3, n_best=3, **options)
    got = model.search(source, beam_size=3, n_best=3, max_length=12, length_penalty=0.6)
    np.testing.assert_array_equal(got["ids"], _np(expected["ids"]))
    np.testing.assert_allclose(got["scores"], _np(expected["scores"]), atol=1e-5)
    np.testing.assert_allclose(got["alignments"], _np(expected["alignments"]), atol=1e-5)
    assert "alignments" not in model.search(source, beam_size=3, max_length=12, alignments=False)


def test_save_and_load_give_identical_translations(tmp_path):
    model, _ = _reverser("bahdanau")  # trained: its translations differ from word to word
    words = _words(20, seed=5)
    path = tmp_path / "s2s.keras"
    model.save(path)
    loaded = seqzoo.load(path)
    assert loaded.translate(words) == model.translate(words)
    assert loaded.translate(words, beam_size=3) == model.translate(words, beam_size=3)
    assert loaded.source_tokenizer.vocabulary == TOKENIZER.vocabulary


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="XLA is a choice on TensorFlow only (JAX always compiles with it)")
def test_search_jit_compile_searches_through_xla_and_finds_the_same():
    from seqzoo.models import Seq2SeqEnsemble

    model, _ = _reverser("luong_feed")
    words = _words(16, seed=4)
    options = dict(beam_size=3, n_best=2, return_scores=True, return_alignments=True)
    greedy, beam = model.translate(words), model.translate(words, **options)
    both = Seq2SeqEnsemble([model, model])
    assert both.translate(words) == greedy
    assert not model.search_jit_compile and not both.search_jit_compile
    model.search_jit_compile = both.search_jit_compile = True
    try:
        assert model.translate(words) == greedy
        xla = model.translate(words, **options)
        assert xla["texts"] == beam["texts"]
        np.testing.assert_allclose(xla["scores"], beam["scores"], atol=1e-5)
        for a, b in zip(xla["alignments"], beam["alignments"]):
            np.testing.assert_allclose(a, b, atol=1e-5)
        assert both.translate(words) == greedy
        # The searches of both settings were compiled, each its own way; training
        # keeps Keras' own setting.
        for searcher in (model, both):
            compiled = searcher._search_fn._cache
            assert {key[0] for key in compiled} == {False, True}
            assert all(bool(fn._jit_compile) == key[0] for key, fn in compiled.items())
        assert model.jit_compile is False
    finally:
        model.search_jit_compile = False


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow's XLA; JAX compiles the stepwise decoder")
def test_input_feeding_keeps_tensorflow_training_off_xla():
    """The input-feeding decoder's training step does not compile with XLA on
    TensorFlow: Keras' jit_compile="auto" (XLA where there is a GPU) and an explicit
    jit_compile=True both leave it off, with Keras' warning, and training runs."""
    fused = _model("luong")
    fused.compile(optimizer="adam", jit_compile=True)
    assert fused.jit_compile is True  # the fused decoder may use XLA
    model = _model("luong_feed")
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(optimizer="adam", jit_compile=True)
    assert model.jit_compile is False
    x, y = _batch(["abc", "hgfe"] * 8, ["cba", "efgh"] * 8)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_translate_reports_characters_outside_the_vocabulary():
    model = _model("luong")
    with pytest.raises(ValueError, match=r"texts\[1\]='xyz'.*\['x', 'y', 'z'\]"):
        model.translate(["abc", "xyz"])
    with pytest.raises(ValueError, match="non-empty"):
        model.translate([""])


def test_scheduled_sampling_at_zero_is_teacher_forcing():
    model = _model("luong_feed", scheduled_sampling="linear", max_sampling_probability=0.0)
    x, _ = _batch(["abc", "hgfedc"], ["cba", "cdefgh"])
    np.testing.assert_allclose(_np(model(x, training=True)), _np(model(x)), atol=1e-5)


@pytest.mark.parametrize("variant", ["basic", "luong"])
def test_scheduled_sampling_at_one_feeds_the_models_own_predictions(variant):
    model = _model(variant, scheduled_sampling="linear", sampling_steps=1,
                   max_sampling_probability=1.0)
    model.sampling_step.assign(10.0)  # past the ramp: p = 1
    assert float(_np(model.sampling_probability())) == pytest.approx(1.0)
    x, _ = _batch(["abc", "hgfedc"], ["cba", "cdefgh"])
    logits = _np(model(x, training=True))
    state = model.encode(x["source_ids"])
    token = x["decoder_input_ids"][:, 0]
    for t in range(x["decoder_input_ids"].shape[1]):
        step_logits, state = model.step(token, state)
        np.testing.assert_allclose(logits[:, t], _np(step_logits), atol=1e-5)
        token = _np(step_logits).argmax(-1).astype("int32")


@pytest.mark.parametrize("schedule", ["linear", "exponential", "inverse_sigmoid"])
def test_sampling_schedules_grow_from_zero_to_the_ceiling(schedule):
    from seqzoo.layers import sampling_probability

    values = [float(_np(sampling_probability(schedule, s, 100, 0.4))) for s in (0, 50, 100, 5000)]
    assert values[0] == pytest.approx(0.0, abs=0.01)
    assert values[0] <= values[1] <= values[2] <= values[3] <= 0.4 + 1e-6
    assert values[3] == pytest.approx(0.4, abs=1e-3)


def test_scheduled_sampling_trains():
    copy = lambda w: w  # noqa: E731
    model = _train("luong", copy, epochs=5, high=5, size=1984, scheduled_sampling="inverse_sigmoid",
                   sampling_steps=30, max_sampling_probability=0.25)
    assert _exact_match(model, copy, high=5) > 0.9
    with pytest.raises(ValueError, match="scheduled_sampling='cosine'"):
        _model("luong", scheduled_sampling="cosine")


@pytest.mark.parametrize("variant, options", [
    ("luong_feed", {}), ("bahdanau", {}), ("luong", {"scheduled_sampling": "linear"})])
def test_decoders_stepping_through_time_train_with_dropout(variant, options, lengths=(2, 4, 6)):
    # Input feeding and scheduled sampling step through time in a scan; their dropout
    # masks are drawn before the scan (JAX refuses random draws inside a traced
    # loop's body), at every dropout site: target embeddings, between the decoder's
    # layers, on its output.
    model = _model(variant, dropout=0.3, embedding_dropout=0.2, decoder_layers=2, **options)
    model.compile()
    # Batches of three lengths: TensorFlow then traces the step with lengths unknown.
    losses = []
    for high in lengths:
        words = _words(32, seed=high, low=high, high=high)
        x, y = _batch(words, words)
        losses.append(float(model.train_on_batch(x, y, return_dict=True)["loss"]))
    assert all(np.isfinite(losses)), losses
    noise = model.step_noise(2, 5, training=True)
    assert sorted(noise) == ["embedding", "layers", "output"]
    assert tuple(noise["layers"].shape) == (5, 2, 16)  # decoder units: 2 x 8
    assert tuple(noise["output"].shape)[:2] == (5, 2)
    kept = _np(noise["output"])
    np.testing.assert_allclose(np.unique(kept), [0.0, 1 / 0.7], rtol=1e-6)  # inverted dropout
    assert model.step_noise(2, 5, training=False) == {}
    trained, inferred = model(x, training=True), model(x, training=False)
    assert not np.allclose(_np(trained), _np(inferred))  # dropout is on in training
    np.testing.assert_allclose(_np(model(x, training=False)), _np(inferred), atol=1e-6)


@pytest.mark.parametrize("options", [{"tie_embeddings": True}, {"num_sampled": 5},
                                     {"tie_embeddings": True, "num_sampled": 5}])
def test_tied_and_sampled_output_layers_train_and_round_trip(options, tmp_path):
    model = _model("luong_feed", **options)
    model.compile()
    words = _words(64, seed=4)
    x, y = _batch(words, words)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if "num_sampled" in options:
        assert set(history.history) == {"loss"}  # no full logits in sampled training
    if options.get("tie_embeddings"):
        assert model.parts["head"].kernel is model.parts["target_embedding"].embeddings
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = seqzoo.load(path)
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), atol=1e-5)


def test_beam_search_over_batches_of_many_source_lengths():
    # Regression: on TensorFlow the compiled beam search once failed from the
    # third call with a new source length (a relaxed retrace of its loop).
    model = _model("luong_feed")
    words = ["ab", "abcdefgh", "abcdefghabcdefgh", "abcdefghabcdefghabcd", "abc"]
    batches = [[words[i], "de"] for i in range(len(words))]
    together = [model.translate(batch, beam_size=3, max_length=12, return_alignments=True)
                for batch in batches]
    for batch, result in zip(batches, together):
        alone = [model.translate([w], beam_size=3, max_length=12)[0] for w in batch]
        assert result["texts"] == alone
        # Alignments cover the real source positions only.
        assert result["alignments"][0].shape[-1] == len(batch[0])


def test_embedding_dropout_acts_in_training_only_and_round_trips(tmp_path):
    model = _model("luong", embedding_dropout=0.5)
    x, _ = _batch(["abc", "hgf"], ["cba", "fgh"])
    inference = _np(model(x))
    np.testing.assert_array_equal(inference, _np(model(x)))
    assert not np.allclose(_np(model(x, training=True)), inference)
    # At inference the model is the one without the dropout layers.
    plain = _model("luong")
    for layer in plain.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    np.testing.assert_allclose(_np(plain(x)), inference, atol=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["embedding_dropout"] == 0.5
    np.testing.assert_allclose(_np(loaded(x)), inference, atol=1e-6)
    with pytest.raises(ValueError, match="embedding_dropout"):
        _model("luong", embedding_dropout=1.5)
