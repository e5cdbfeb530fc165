"""The behaviour checked by tensorflow-addons' `seq2seq/tests/attention_wrapper_test.py`.

Port of TFA 0.23's attention mechanism and `AttentionWrapper` tests (Apache-2.0),
written anew for `seqzoo.tfa` on Keras 3, with smaller sizes where TFA's did not
matter. Each test names the TFA test it ports.

TFA's decoder runs (`_test_with_attention`) compared means of the outputs and
states with numbers that depend on an attention layer initialised by Keras 2's
`glorot_uniform(seed=1337)`. Those runs here check what TFA checked that does not
depend on that draw: types, structures, shapes, dtypes, the argmax sample ids,
softmax rows summing to 1 (TFA's alignment means of 1/8), and the equalities
between TFA's expected numbers (scaled Luong with its initial scale equals plain
Luong). The run without an attention layer, whose weights are all ones, reproduces
TFA's inputs and is compared with TFA's own numbers. The numbers of the other
configurations are compared with TFA in `test_attention_wrapper.py` (fixtures).
"""

import functools

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo import tfa
from seqzoo.tfa.seq2seq._common import on_tensorflow

s2s = tfa.seq2seq

MECHANISMS = [s2s.LuongAttention, s2s.LuongMonotonicAttention, s2s.BahdanauAttention,
              s2s.BahdanauMonotonicAttention]
MECHANISM_IDS = [cls.__name__ for cls in MECHANISMS]


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


class Data:
    """TFA's `DummyData`, smaller: memory [batch, timestep, memory_size], query, state."""

    def __init__(self, seed=0, batch=3, timestep=4, memory_size=5, units=6):
        rs = np.random.RandomState(seed)
        self.batch, self.timestep, self.memory_size, self.units = (
            batch, timestep, memory_size, units)
        self.memory = rs.randn(batch, timestep, memory_size).astype("float32")
        self.memory_length = rs.randint(1, timestep + 1, size=(batch,))
        self.query = rs.randn(batch, units).astype("float32")
        self.state = rs.randn(batch, timestep).astype("float32")


# attention_wrapper_test.py::test_attention_shape_inference and ::test_layer_output (the
# two TFA tests make the same call and the same checks).
@pytest.mark.backend_neutral
@pytest.mark.parametrize("cls", MECHANISMS, ids=MECHANISM_IDS)
def test_attention_shape_inference_and_layer_output(cls):
    d = Data()
    score = cls(d.units, d.memory)([d.query, d.state])
    assert len(score) == 2
    assert tuple(score[0].shape) == (d.batch, d.timestep)
    assert tuple(score[1].shape) == (d.batch, d.timestep)


# attention_wrapper_test.py::test_get_config.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("cls", MECHANISMS, ids=MECHANISM_IDS)
def test_get_config(cls):
    d = Data()
    config = cls(d.units, d.memory).get_config()
    assert cls.from_config(config).get_config() == config


# attention_wrapper_test.py::test_passing_memory_from_call: weights restored in TFA's two
# stages: build for the memory and set the weights that exist before the first query,
# set the memory up through the call, build for the query and set all weights.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("cls", MECHANISMS, ids=MECHANISM_IDS)
def test_passing_memory_from_call(cls):
    d = Data()
    attention = cls(d.units, d.memory)
    weights_before_query = attention.get_weights()
    expected = attention([d.query, d.state])
    all_weights = attention.get_weights()

    restored = cls.from_config(attention.get_config())
    restored.build(d.memory.shape)
    restored.set_weights(weights_before_query)
    restored(d.memory, setup_memory=True)
    restored.build([d.query.shape, d.state.shape])
    restored.set_weights(all_weights)
    got = restored([d.query, d.state])
    for a, b in zip(expected, got):
        np.testing.assert_allclose(numpy(a), numpy(b))


# attention_wrapper_test.py::test_save_load_layer: a functional model whose memory is an
# encoder's symbolic output; its config and weights rebuild a model that predicts the same.
# TFA built one model per mechanism class; one model queries the four mechanisms here.
@pytest.mark.backend_neutral
def test_save_load_layer():
    d = Data()
    vocab = 20
    tokens = keras.Input((d.timestep,))
    embedded = keras.layers.Embedding(vocab, 4, mask_zero=True)(tokens)
    encoded = keras.layers.LSTM(d.memory_size, return_sequences=True)(embedded)
    mechanisms = [cls(d.units, encoded) for cls in MECHANISMS]
    query = keras.Input((d.units,))
    state = keras.Input((d.timestep,))
    scores = [score for m in mechanisms for score in m([query, state])]
    model = keras.Model([tokens, query, state], scores)
    # TFA's get_weights()/set_weights() below carry every weight of the mechanisms.
    model_weights = {id(w) for w in model.weights}
    for mechanism in mechanisms:
        assert mechanism.weights
        assert all(id(w) in model_weights for w in mechanism.weights), mechanism.name
    x = np.random.RandomState(1).randint(vocab, size=(d.batch, d.timestep))
    expected = model.predict_on_batch([x, d.query, d.state])

    loaded = keras.Model.from_config(model.get_config(),
                                     custom_objects={cls.__name__: cls for cls in MECHANISMS})
    loaded.set_weights(model.get_weights())
    got = loaded.predict_on_batch([x, d.query, d.state])
    assert len(got) == len(expected) == 2 * len(MECHANISMS)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(numpy(a), numpy(b), rtol=1e-6)


# attention_wrapper_test.py::test_manual_memory_reset: a second setup_memory with another
# batch size replaces the memory and creates no new variables.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("cls", MECHANISMS, ids=MECHANISM_IDS)
def test_manual_memory_reset(cls):
    d = Data()
    attention = cls(d.units)

    def score(batch):
        memory = d.memory[:batch]
        attention.setup_memory(memory, memory_sequence_length=d.memory_length[:batch])
        assert tuple(attention.values.shape) == memory.shape
        assert tuple(attention.keys.shape) == memory.shape[:-1] + (d.units,)
        return attention([d.query[:batch], d.state[:batch]])

    score(d.batch)
    variables = list(attention.variables)
    alignments, _ = score(d.batch - 1)
    assert tuple(alignments.shape) == (d.batch - 1, d.timestep)
    assert len(attention.variables) == len(variables)
    assert all(a is b for a, b in zip(variables, attention.variables))


# attention_wrapper_test.py::test_masking: memory entries past each length get no
# attention (the alignments are lower triangular for lengths 1, 2, 3, 4).
@pytest.mark.backend_neutral
def test_masking():
    memory = np.ones((4, 4, 5), "float32")
    lengths = np.array([1, 2, 3, 4], "int32")
    attention = s2s.LuongAttention(5, memory, lengths)
    alignments, _ = attention([np.ones((4, 5), "float32"), None])
    assert np.sum(np.triu(numpy(alignments), k=1)) == 0


# attention_wrapper_test.py::test_memory_re_setup: a subclassed model sets the memory up
# (twice, with the embedding's mask) in every call, then trains and predicts. TFA built
# one model per mechanism class; one model holding the four mechanisms trains here.
@pytest.mark.backend_neutral
def test_memory_re_setup():
    vocab, batch, batches = 10, 2, 2
    d = Data(batch=batch)

    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.emb = keras.layers.Embedding(vocab, 4, mask_zero=True)
            self.encoder = keras.layers.LSTM(d.memory_size, return_sequences=True)
            self.mechanisms = [cls(d.units) for cls in MECHANISMS]

        def call(self, inputs):
            tokens, query, state = inputs
            mask = self.emb.compute_mask(tokens)
            encoded = self.encoder(self.emb(tokens), mask=mask)
            scores = []
            for mechanism in self.mechanisms:
                mechanism(encoded, mask=mask, setup_memory=True)
                mechanism(encoded, mask=mask, setup_memory=True)
                scores.extend(mechanism([query, state]))
            return ops.stack(scores, axis=1)  # one loss: [batch, 2 * 4, timestep]

    model = Model()
    model.compile("rmsprop", "mse")
    rs = np.random.RandomState(2)
    n = batches * batch
    x = rs.randint(vocab, size=(n, d.timestep))
    y = rs.randn(n, 2 * len(MECHANISMS), d.timestep).astype("float32")
    query, state = np.tile(d.query, (batches, 1)), np.tile(d.state, (batches, 1))
    model.fit([x, query, state], y, batch_size=batch, verbose=0)
    scores = numpy(model.predict_on_batch([x, query, state]))
    assert scores.shape == y.shape and np.isfinite(scores).all()


# attention_wrapper_test.py::test_custom_attention_layer: get_initial_state refuses a
# mechanism without memory; a custom attention layer sets the attention's depth.
@pytest.mark.backend_neutral
def test_custom_attention_layer():
    units, batch = 4, 3
    rs = np.random.RandomState(3)
    mechanism = s2s.LuongAttention(units)
    layer = keras.layers.Dense(units * 2, use_bias=False, activation="tanh")
    wrapper = s2s.AttentionWrapper(keras.layers.LSTMCell(units), mechanism,
                                   attention_layer=layer)
    with pytest.raises(ValueError):
        wrapper.get_initial_state(batch_size=batch, dtype="float32")
    mechanism.setup_memory(rs.randn(batch, 5, 7).astype("float32"),
                           memory_sequence_length=np.array([1, 5, 3], "int32"))
    state = wrapper.get_initial_state(batch_size=batch, dtype="float32")
    assert state.attention.shape[-1] == units * 2
    output, _ = wrapper(rs.randn(batch, units).astype("float32"), state)
    assert output.shape[-1] == units * 2


# The decoder runs of TFA's `_test_with_attention`: batch 5, memory [5, 8, 10] with
# lengths [3, 2, 3, 1, 1], decoder inputs [5, 4, 7] with lengths [2, 0, 1, 2, 3], an
# LSTMCell(9) and query/memory layers initialised with ones, a TrainingSampler.
ENCODER_LENGTHS = [3, 2, 3, 1, 1]
DECODER_LENGTHS = [2, 0, 1, 2, 3]
BATCH, ENCODER_TIME, DECODER_TIME, INPUT_DEPTH, ENCODER_DEPTH, CELL_DEPTH = 5, 8, 4, 7, 10, 9


def off_tensorflow_limit(steps):
    """Off TensorFlow a decode needs maximum_iterations (seqzoo.tfa's preallocated loop);
    `steps` is at least the longest decode, so the outputs are the same."""
    return {} if on_tensorflow() else {"maximum_iterations": steps}


def decoder_modules():
    basic_decoder = pytest.importorskip("seqzoo.tfa.seq2seq.basic_decoder")
    sampler = pytest.importorskip("seqzoo.tfa.seq2seq.sampler")
    return basic_decoder, sampler


def tfa_inputs():
    """The decoder inputs and memory of TFA's runs: numpy's draws after seeding it with
    87654321 and drawing `DummyData2` (as TFA's `set_random_state_for_tf_and_np`)."""
    rs = np.random.RandomState(87654321)
    rs.randn(64, 10, 256)
    rs.randint(1, 10, size=(64,))
    rs.randn(64, 12, 128)
    rs.randint(12, size=(64,))
    decoder_inputs = rs.randn(BATCH, DECODER_TIME, INPUT_DEPTH).astype("float32")
    encoder_outputs = rs.randn(BATCH, ENCODER_TIME, ENCODER_DEPTH).astype("float32")
    return decoder_inputs, encoder_outputs


def run_with_attention(cls, depth=3, attention_layer_size=6, alignment_history=False,
                       query_layer=False, **mechanism_kwargs):
    """One `_test_with_attention` run: checks TFA's types, structures, shapes and dtypes;
    returns the outputs and final state as numpy (alignment history stacked or `()`)."""
    basic_decoder, sampler = decoder_modules()
    if alignment_history and not on_tensorflow():
        alignment_history = False  # a tf.TensorArray; the rest is checked on every backend
    compute_dtype = keras.config.dtype_policy().compute_dtype
    decoder_inputs, encoder_outputs = tfa_inputs()

    def ones_dense():
        return keras.layers.Dense(depth, kernel_initializer="ones", use_bias=False)

    if query_layer:
        mechanism_kwargs["query_layer"] = ones_dense()
    mechanism = cls(units=depth, memory=encoder_outputs,
                    memory_sequence_length=ENCODER_LENGTHS, memory_layer=ones_dense(),
                    **mechanism_kwargs)
    cell = keras.layers.LSTMCell(CELL_DEPTH, recurrent_activation="sigmoid",
                                 kernel_initializer="ones", recurrent_initializer="ones")
    wrapper = s2s.AttentionWrapper(cell, mechanism, attention_layer_size=attention_layer_size,
                                   alignment_history=alignment_history)
    for layer in wrapper.attention_layers:
        # TFA: Keras 2's glorot_uniform(seed=1337); its draw is not reproduced here.
        layer.kernel_initializer = keras.initializers.GlorotUniform(seed=1337)
    decoder = basic_decoder.BasicDecoder(cell=wrapper, sampler=sampler.TrainingSampler(),
                                         **off_tensorflow_limit(DECODER_TIME))
    initial_state = wrapper.get_initial_state(batch_size=BATCH, dtype=compute_dtype)
    outputs, state, _ = decoder(decoder_inputs, initial_state=initial_state,
                                sequence_length=DECODER_LENGTHS)

    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert isinstance(state, s2s.AttentionWrapperState)
    attention_depth = attention_layer_size or ENCODER_DEPTH
    time = max(DECODER_LENGTHS)
    assert tuple(outputs.rnn_output.shape) == (BATCH, time, attention_depth)
    assert tuple(outputs.sample_id.shape) == (BATCH, time)
    assert tuple(state.attention.shape) == (BATCH, attention_depth)
    assert len(state.cell_state) == 2
    for part in state.cell_state:
        assert tuple(part.shape) == (BATCH, CELL_DEPTH)
    for field in ("alignments", "attention_state"):
        assert tuple(getattr(state, field).shape) == (BATCH, ENCODER_TIME)
    dtype = keras.backend.standardize_dtype
    for x in (outputs.rnn_output, state.attention, state.alignments, state.attention_state,
              *state.cell_state):
        assert dtype(x.dtype) == compute_dtype
    assert dtype(outputs.sample_id.dtype) == "int32"
    if alignment_history:
        history = state.alignment_history.stack()
        assert tuple(history.shape) == (time, BATCH, ENCODER_TIME)
        keras.tree.assert_same_structure(
            wrapper.state_size, wrapper.get_initial_state(batch_size=BATCH, dtype=compute_dtype))
        state = state._replace(alignment_history=history)
    else:
        assert state.alignment_history == ()
    # TrainingSampler's sample ids are the argmax of the outputs.
    np.testing.assert_array_equal(numpy(outputs.sample_id),
                                  np.argmax(numpy(outputs.rnn_output), -1))
    return (keras.tree.map_structure(numpy, outputs._asdict()),
            keras.tree.map_structure(numpy, state._asdict()))


def assert_softmax_alignments(state):
    """Softmax alignments sum to 1 over the memory (TFA's alignment means of 1/8)."""
    for field in ("alignments", "attention_state"):
        np.testing.assert_allclose(state[field].astype("float64").sum(-1), 1.0, atol=1e-3)
        np.testing.assert_allclose(state[field].mean(), 1 / ENCODER_TIME, atol=1e-3)
    if not isinstance(state["alignment_history"], tuple):
        np.testing.assert_allclose(state["alignment_history"].sum(-1), 1.0, atol=1e-3)


def assert_same_run(a, b, atol=1e-5):
    for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b)):
        np.testing.assert_allclose(x.astype("float64"), y.astype("float64"), atol=atol)


def assert_same_means(a, b, atol=1e-3):
    """TFA's comparison: every output and state has the expected mean (within 1e-3)."""
    for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b)):
        np.testing.assert_allclose(x.astype("float64").mean(), y.astype("float64").mean(),
                                   atol=atol)


@pytest.fixture(params=["float32", "mixed_float16"])
def policy(request):
    """TFA's `run_with_mixed_precision_policy`."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


# Configurations whose float32 run several tests use (TFA compared them with the same
# expected numbers): computed once per process.
SHARED_RUNS = {
    "bahdanau_not_normalized": dict(cls=s2s.BahdanauAttention, alignment_history=True,
                                    query_layer=True, kernel_initializer="ones"),
    "luong_not_normalized": dict(cls=s2s.LuongAttention, depth=9),
    "luong_monotonic_not_normalized": dict(cls=s2s.LuongMonotonicAttention, depth=9,
                                           alignment_history=True),
}


@functools.lru_cache(maxsize=None)
def float32_run(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        return run_with_attention(**SHARED_RUNS[name])
    finally:
        keras.config.set_dtype_policy(previous)


def run_under_policy(policy, name):
    """The run under the current policy; with mixed_float16 (float16 outputs and states,
    checked by `run_with_attention`), its means match the float32 run's within TFA's 1e-3
    (TFA expected the same means under both policies)."""
    if policy == "float32":
        return float32_run(name)
    result = run_with_attention(**SHARED_RUNS[name])
    assert_same_means(float32_run(name), result)
    return result


# attention_wrapper_test.py::test_bahdanau_not_normalized (both policies).
@pytest.mark.backend_neutral
def test_bahdanau_not_normalized(policy):
    _, state = run_under_policy(policy, "bahdanau_not_normalized")
    assert_softmax_alignments(state)


# attention_wrapper_test.py::test_bahdanau_normalized.
@pytest.mark.backend_neutral
def test_bahdanau_normalized():
    _, state = run_with_attention(s2s.BahdanauAttention, query_layer=True,
                                  kernel_initializer="ones", normalize=True)
    assert_softmax_alignments(state)


# attention_wrapper_test.py::test_luong_not_normalized (both policies).
@pytest.mark.backend_neutral
def test_luong_not_normalized(policy):
    _, state = run_under_policy(policy, "luong_not_normalized")
    assert_softmax_alignments(state)


# attention_wrapper_test.py::test_luong_scaled: TFA expects exactly the numbers of
# test_luong_not_normalized (the scale starts at 1).
@pytest.mark.backend_neutral
def test_luong_scaled():
    scaled = run_with_attention(s2s.LuongAttention, depth=9, scale=True)
    assert_softmax_alignments(scaled[1])
    assert_same_run(scaled, float32_run("luong_not_normalized"))


# attention_wrapper_test.py::test_not_use_attention_layer: every weight is ones, so TFA's
# expected means are reproduced from its inputs.
@pytest.mark.backend_neutral
def test_not_use_attention_layer():
    outputs, state = run_with_attention(s2s.BahdanauAttention, attention_layer_size=None,
                                        query_layer=True, kernel_initializer="ones")
    assert_softmax_alignments(state)
    means = {
        "rnn_output": 0.078317143, "sample_id": 4.2,
        "cell_state": [0.89382392, 1.722382], "attention": 0.026356646,
        "alignments": 0.125, "attention_state": 0.125,
    }
    got = {**outputs, **state}
    for name, expected in means.items():
        values = got[name] if isinstance(expected, list) else [got[name]]
        expected = expected if isinstance(expected, list) else [expected]
        for value, mean in zip(values, expected):
            np.testing.assert_allclose(value.mean(), mean, atol=1e-6, err_msg=name)


def assert_monotonic_alignments(state):
    """Monotonic alignments are probabilities summing to at most 1 over the memory."""
    for field in ("alignments", "attention_state"):
        value = state[field]
        assert (value >= 0).all() and (value.sum(-1) <= 1 + 1e-5).all(), field
    np.testing.assert_array_equal(state["alignments"], state["attention_state"])


# attention_wrapper_test.py::test_bahdanau_monotonic_not_normalized.
@pytest.mark.backend_neutral
def test_bahdanau_monotonic_not_normalized():
    _, state = run_with_attention(s2s.BahdanauMonotonicAttention, alignment_history=True,
                                  query_layer=True, kernel_initializer="ones")
    assert_monotonic_alignments(state)


# attention_wrapper_test.py::test_bahdanau_monotonic_normalized.
@pytest.mark.backend_neutral
def test_bahdanau_monotonic_normalized():
    _, state = run_with_attention(s2s.BahdanauMonotonicAttention, alignment_history=True,
                                  query_layer=True, kernel_initializer="ones", normalize=True)
    assert_monotonic_alignments(state)


# attention_wrapper_test.py::test_luong_monotonic_not_normalized.
@pytest.mark.backend_neutral
def test_luong_monotonic_not_normalized():
    _, state = float32_run("luong_monotonic_not_normalized")
    assert_monotonic_alignments(state)


# attention_wrapper_test.py::test_luong_monotonic_scaled: TFA expects exactly the numbers
# of test_luong_monotonic_not_normalized.
@pytest.mark.backend_neutral
def test_luong_monotonic_scaled():
    scaled = run_with_attention(s2s.LuongMonotonicAttention, depth=9, alignment_history=True,
                                scale=True)
    assert_monotonic_alignments(scaled[1])
    assert_same_run(scaled, float32_run("luong_monotonic_not_normalized"))


# attention_wrapper_test.py::test_bahdanau_normalized_dtype and ::test_luong_scaled_dtype:
# the mechanism, cell, wrapper and decoder in float32 or float64; the outputs keep it.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls, kwargs", [
    pytest.param(s2s.BahdanauAttention, {"normalize": True}, id="bahdanau_normalized"),
    pytest.param(s2s.LuongAttention, {"scale": True}, id="luong_scaled"),
])
def test_dtype(cls, kwargs, dtype):
    if dtype == "float64" and keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX without 64-bit types (jax_enable_x64) computes float64 in float32")
    basic_decoder, sampler = decoder_modules()
    batch, units, encoder_time, decoder_time = 3, 4, 5, 6
    rs = np.random.RandomState(4)
    encoder_outputs = rs.randn(batch, encoder_time, 7).astype(dtype)
    decoder_inputs = rs.randn(batch, decoder_time, units).astype(dtype)
    mechanism = cls(units=units, memory=encoder_outputs,
                    memory_sequence_length=rs.randint(1, encoder_time, size=(batch,)),
                    dtype=dtype, **kwargs)
    cell = keras.layers.LSTMCell(units, recurrent_activation="sigmoid", dtype=dtype)
    wrapper = s2s.AttentionWrapper(cell, mechanism, dtype=dtype)
    decoder = basic_decoder.BasicDecoder(cell=wrapper, sampler=sampler.TrainingSampler(),
                                         dtype=dtype, **off_tensorflow_limit(decoder_time))
    outputs, state, _ = decoder(
        decoder_inputs, initial_state=wrapper.get_initial_state(batch_size=batch, dtype=dtype),
        sequence_length=rs.randint(decoder_time, size=(batch,)))
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert keras.backend.standardize_dtype(outputs.rnn_output.dtype) == dtype
    assert isinstance(state, s2s.AttentionWrapperState)


# attention_wrapper_test.py::test_attention_state_with_keras_rnn: the wrapper in
# keras.layers.RNN, with the default initial state and with get_initial_state's.
@pytest.mark.backend_neutral
def test_attention_state_with_keras_rnn():
    mechanism = s2s.LuongAttention(units=4, memory=np.ones((2, 3, 4), "float32"))
    cell = s2s.AttentionWrapper(cell=keras.layers.LSTMCell(4), attention_mechanism=mechanism)
    layer = keras.layers.RNN(cell)
    inputs = np.ones((2, 3, 4), "float32")
    assert tuple(layer(inputs).shape) == (2, 4)
    initial_state = cell.get_initial_state(batch_size=2, dtype="float32")
    assert tuple(layer(inputs, initial_state=initial_state).shape) == (2, 4)


# attention_wrapper_test.py::test_attention_state_with_variable_length_input: a memory
# and an input mask of a size drawn at random.
MASKED_RNN_ON_JAX = (
    "keras.layers.RNN(AttentionWrapper) with a mask fails on JAX: Keras' JAX rnn takes "
    "states[0] (states[-1][0] when states[0] is nested, as an LSTM's [h, c]) as the previous "
    "output of masked steps; with the wrapper's state that is a row of attention_state, "
    "shape [batch] against outputs [batch, units] (a broadcasting ValueError)")


@pytest.mark.backend_neutral
@pytest.mark.xfail(not on_tensorflow(), strict=True, reason=MASKED_RNN_ON_JAX)
def test_attention_state_with_variable_length_input():
    rs = np.random.RandomState(5)
    size = int(rs.randint(2, 10))
    lengths = rs.randint(1, size + 1, size=(size,))
    mechanism = s2s.LuongAttention(units=3)
    cell = s2s.AttentionWrapper(keras.layers.LSTMCell(3), mechanism)
    data = np.ones((size, size, 3), "float32")
    mask = np.arange(size)[None, :] < lengths[:, None]
    mechanism.setup_memory(data)
    assert tuple(keras.layers.RNN(cell)(data, mask=mask).shape) == (size, 3)


# attention_wrapper_test.py::test_attention_wrapper_with_gru_cell: one step keeps the
# structure of the initial state (a GRU's state is one tensor).
@pytest.mark.backend_neutral
def test_attention_wrapper_with_gru_cell():
    mechanism = s2s.LuongAttention(units=3)
    cell = s2s.AttentionWrapper(keras.layers.GRUCell(3), mechanism)
    mechanism.setup_memory(np.ones((2, 5, 3), "float32"))
    inputs = np.ones((2, 3), "float32")
    initial_state = cell.get_initial_state(inputs=ops.convert_to_tensor(inputs))
    _, state = cell(inputs, initial_state)
    keras.tree.assert_same_structure(initial_state, state)


# attention_wrapper_test.py::test_attention_wrapper_with_multiple_attention_mechanisms:
# two mechanisms with one attention layer size, or one attention layer, each.
@pytest.mark.backend_neutral
def test_attention_wrapper_with_multiple_attention_mechanisms():
    cell = keras.layers.LSTMCell(5)
    mechanisms = [s2s.LuongAttention(units=3), s2s.LuongAttention(units=3)]
    by_size = s2s.AttentionWrapper(cell, mechanisms, attention_layer_size=[4, 5])
    by_layer = s2s.AttentionWrapper(
        cell, mechanisms, attention_layer=[keras.layers.Dense(4), keras.layers.Dense(5)])
    for wrapper in (by_size, by_layer):
        assert len(wrapper.attention_layers) == 2
