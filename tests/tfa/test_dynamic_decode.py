"""`dynamic_decode` and `BaseDecoder`: a toy decoder with known answers, and TFA's cases."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.tfa.seq2seq._common import on_tensorflow
from seqzoo.tfa.seq2seq.attention_mechanism import LuongAttention
from seqzoo.tfa.seq2seq.attention_wrapper import AttentionWrapper
from seqzoo.tfa.seq2seq.basic_decoder import BasicDecoder
from seqzoo.tfa.seq2seq.decoder import BaseDecoder, Decoder, dynamic_decode
from seqzoo.tfa.seq2seq.sampler import GreedyEmbeddingSampler
from tests.tfa._fixtures import assert_close, assert_equal, assign_weights, case, case_names

LIMITS = np.array([1, 3, 2], "int32")
X = np.ones((3, 2), "float32")
STATE = [np.zeros((3, 4), "float32")]


class CountingDecoder(BaseDecoder):
    """Step t emits `(inputs + t, t)`, doubles the inputs, adds 1 to the state and
    finishes entry b once `t + 1 >= limits[b]`."""

    def initialize(self, inputs, initial_state=None, limits=None):
        self.limits = ops.convert_to_tensor(limits, "int32")
        self._batch = int(inputs.shape[0])
        return ops.zeros((self._batch,), "bool"), inputs, initial_state

    @property
    def batch_size(self):
        return self._batch

    @property
    def output_size(self):
        return (2,), ()

    @property
    def output_dtype(self):
        return "float32", "int32"

    def step(self, time, inputs, state, training=None):
        outputs = (inputs + ops.cast(time, "float32"),
                   ops.full((self._batch,), 1, "int32") * time)
        return outputs, [state[0] + 1.0], inputs * 2.0, time + 1 >= self.limits


def expected(limits, impute, steps=None):
    """The counting decoder's outputs, state and lengths, computed by hand."""
    steps = steps or int(limits.max())
    lengths = np.minimum(limits, steps)
    values = np.zeros((3, steps, 2), "float32")
    times = np.tile(np.arange(steps, dtype="int32"), (3, 1))
    for b in range(3):
        for t in range(steps):
            values[b, t] = 2.0 ** t + t
            if impute and t >= lengths[b]:
                values[b, t] = 0.0
                times[b, t] = 0
    state = (lengths if impute else np.full(3, steps)).astype("float32")
    return values, times, np.repeat(state[:, None], 4, 1), lengths


def check(result, limits, impute, steps=None):
    (values, times), state, lengths = result
    want = expected(limits, impute, steps)
    np.testing.assert_allclose(ops.convert_to_numpy(values), want[0])
    np.testing.assert_array_equal(ops.convert_to_numpy(times), want[1])
    np.testing.assert_allclose(ops.convert_to_numpy(state[0]), want[2])
    np.testing.assert_array_equal(ops.convert_to_numpy(lengths), want[3])


@pytest.mark.backend_neutral
@pytest.mark.parametrize("impute", [False, True])
def test_counting_decoder(impute):
    decoder = CountingDecoder(impute_finished=impute, maximum_iterations=5)
    check(decoder(X, initial_state=STATE, limits=LIMITS), LIMITS, impute)
    # maximum_iterations stops every entry; lengths stop there too.
    long = np.array([9, 9, 2], "int32")
    check(decoder(X, initial_state=STATE, limits=long), long, impute, steps=5)


@pytest.mark.backend_neutral
def test_time_major_outputs():
    (values, times), _, _ = dynamic_decode(
        CountingDecoder(), output_time_major=True, maximum_iterations=4,
        decoder_init_input=X, decoder_init_kwargs={"initial_state": STATE, "limits": LIMITS})
    assert tuple(values.shape) == (3, 3, 2) and tuple(times.shape) == (3, 3)
    np.testing.assert_array_equal(ops.convert_to_numpy(times)[:, 0], [0, 1, 2])


@pytest.mark.backend_neutral
def test_maximum_iterations_must_be_a_positive_scalar():
    kwargs = {"decoder_init_input": X,
              "decoder_init_kwargs": {"initial_state": STATE, "limits": LIMITS}}
    with pytest.raises(ValueError, match="maximum_iterations must be a scalar"):
        dynamic_decode(CountingDecoder(), maximum_iterations=[3, 4], **kwargs)
    with pytest.raises(ValueError, match="greater than 0"):
        dynamic_decode(CountingDecoder(), maximum_iterations=0, **kwargs)
    with pytest.raises(TypeError, match="Decoder or BaseDecoder"):
        dynamic_decode(object(), maximum_iterations=3)


@pytest.mark.backend_neutral
def test_decoder_interface_and_finalize():
    class Plain(Decoder):
        def initialize(self, name=None):
            return ops.zeros((2,), "bool"), ops.zeros((2, 1)), ops.zeros((2, 1))

        batch_size = 2
        output_size = 1
        output_dtype = "float32"

        def step(self, time, inputs, state, training=None, name=None):
            return state + 1.0, state + 1.0, inputs, ops.full((2,), False)

        def finalize(self, outputs, final_state, sequence_lengths):
            return outputs * 10.0, final_state

    outputs, state, lengths = dynamic_decode(Plain(), maximum_iterations=3)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs)[0, :, 0], [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(ops.convert_to_numpy(lengths), [3, 3])
    assert not Plain().tracks_own_finished


@pytest.mark.backend_neutral
def test_needs_maximum_iterations_off_tensorflow():
    if on_tensorflow():
        pytest.skip("TensorFlow decodes without maximum_iterations")
    with pytest.raises(ValueError, match="maximum_iterations") as info:
        CountingDecoder()(X, initial_state=STATE, limits=LIMITS)
    assert "\n" not in str(info.value) and "TensorFlow" in str(info.value)


@pytest.mark.skipif(not on_tensorflow(), reason="tf.function, unbounded decoding")
def test_tensorflow_eager_and_tf_function_agree_without_maximum_iterations():
    import tensorflow as tf

    decoder = CountingDecoder(impute_finished=True)
    check(decoder(X, initial_state=STATE, limits=LIMITS), LIMITS, True)

    @tf.function
    def run(limits):
        return decoder(X, initial_state=STATE, limits=limits)

    check(run(tf.constant(LIMITS)), LIMITS, True)
    longer = np.array([2, 6, 1], "int32")
    check(run(tf.constant(longer)), longer, True)


@pytest.mark.backend_neutral
def test_config_round_trip():
    decoder = CountingDecoder(output_time_major=True, maximum_iterations=7, name="counting")
    config = decoder.get_config()
    assert {k: config[k] for k in ("output_time_major", "impute_finished", "maximum_iterations",
                                   "parallel_iterations", "swap_memory")} == {
        "output_time_major": True, "impute_finished": False, "maximum_iterations": 7,
        "parallel_iterations": 32, "swap_memory": False}
    assert CountingDecoder.from_config(config).maximum_iterations == 7


# ---------------------------------------------------------------- TFA's cases

DD_NAMES = case_names("dynamic_decode")


def dd_decoder(c):
    """The case's LSTM, output layer and greedy BasicDecoder with TFA's weights."""
    cell, output_layer = keras.layers.LSTMCell(5), keras.layers.Dense(7)
    decoder = BasicDecoder(cell, GreedyEmbeddingSampler(), output_layer=output_layer)
    embedding = np.asarray(c.weights["embedding"])
    kwargs = {"initial_state": list(c.inputs["initial_state"]),
              "start_tokens": c.inputs["start_tokens"], "end_token": c.inputs["end_token"]}
    _, inputs, state = decoder.initialize(embedding, **kwargs)
    decoder.step(ops.convert_to_tensor(0, "int32"), inputs, state)  # creates the weights
    assign_weights(c, cell=cell, output_layer=output_layer)
    return decoder, embedding, kwargs


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", DD_NAMES)
def test_dynamic_decode_matches_tfa(name):
    """Off TensorFlow the cases without maximum_iterations get 12: TFA's run ended every
    row within 12 steps, so the outputs are the same."""
    c = case("dynamic_decode", name)
    cfg = c.config
    decoder, embedding, kwargs = dd_decoder(c)
    maximum_iterations = cfg["maximum_iterations"]
    if maximum_iterations is None and not on_tensorflow():
        maximum_iterations = 12
    outputs, state, lengths = dynamic_decode(
        decoder, output_time_major=cfg["output_time_major"],
        impute_finished=cfg["impute_finished"], maximum_iterations=maximum_iterations,
        decoder_init_input=embedding, decoder_init_kwargs=kwargs)
    expected = c.outputs
    assert_close(outputs.rnn_output, expected["rnn_output"], "rnn_output")
    assert_equal(outputs.sample_id, expected["sample_id"], "sample_id")
    assert_close(ops.stack(state), expected["final_state"], "final_state")
    assert_equal(lengths, expected["final_sequence_lengths"], "final_sequence_lengths")


# ------------------------------------------------- attention memories, history

MEMORIES = np.random.RandomState(3).uniform(-1, 1, (2, 2, 4, 6)).astype("float32")
MEMORY_LENGTHS = np.array([4, 2], "int32")
EMBEDDING = np.random.RandomState(4).uniform(-1, 1, (7, 3)).astype("float32")
STARTS = np.array([1, 5], "int32")


def attention_decoder(alignment_history=False):
    mechanism = LuongAttention(5, memory=MEMORIES[0], memory_sequence_length=MEMORY_LENGTHS)
    cell = AttentionWrapper(keras.layers.LSTMCell(5), mechanism, attention_layer_size=5,
                            alignment_history=alignment_history)
    decoder = BasicDecoder(cell, GreedyEmbeddingSampler(), keras.layers.Dense(7),
                           maximum_iterations=5)
    return decoder, mechanism


def step_by_step(decoder, mechanism, memory):
    """Greedy decoding of 5 steps as a Python loop of eager cell calls."""
    mechanism.setup_memory(memory, MEMORY_LENGTHS)
    cell = decoder.cell
    state = cell.get_initial_state(batch_size=2, dtype="float32")
    inputs, logits, alignments = EMBEDDING[STARTS], [], []
    for _ in range(5):
        output, state = cell(inputs, state)
        step_logits = decoder.output_layer(output)
        logits.append(ops.convert_to_numpy(step_logits))
        alignments.append(ops.convert_to_numpy(state.alignments))
        inputs = EMBEDDING[ops.convert_to_numpy(ops.argmax(step_logits, -1))]
    if hasattr(state.alignment_history, "mark_used"):
        state.alignment_history.mark_used()  # else TensorFlow logs an error
    return np.stack(logits, 1), np.stack(alignments)


def decode(decoder, mechanism, memory):
    mechanism.setup_memory(memory, MEMORY_LENGTHS)
    state = decoder.cell.get_initial_state(batch_size=2, dtype="float32")
    return decoder(EMBEDDING, initial_state=state, start_tokens=STARTS, end_token=-1)


@pytest.mark.backend_neutral
def test_decoding_twice_with_different_memories():
    """Mechanisms keep their memory as attributes: every call must read the current one."""
    decoder, mechanism = attention_decoder()
    decode(decoder, mechanism, MEMORIES[0])
    expected = [step_by_step(decoder, mechanism, memory)[0] for memory in MEMORIES]
    assert np.abs(expected[0] - expected[1]).max() > 1e-3
    for i in (0, 1, 0):
        outputs, _, _ = decode(decoder, mechanism, MEMORIES[i])
        np.testing.assert_allclose(ops.convert_to_numpy(outputs.rnn_output), expected[i],
                                   atol=1e-5, err_msg=f"memory {i}")


@pytest.mark.skipif(not on_tensorflow(), reason="alignment_history is a tf.TensorArray")
def test_alignment_history_through_the_loop_eager_and_in_tf_function():
    import tensorflow as tf

    decoder, mechanism = attention_decoder(alignment_history=True)
    decode(decoder, mechanism, MEMORIES[1])
    logits, alignments = step_by_step(decoder, mechanism, MEMORIES[1])
    def stacked():
        outputs, state, _ = decode(decoder, mechanism, MEMORIES[1])
        assert isinstance(state.alignment_history, tf.TensorArray)
        return outputs.rnn_output, state.alignment_history.stack()

    for rnn_output, history in (stacked(), tf.function(stacked)()):
        np.testing.assert_allclose(ops.convert_to_numpy(rnn_output), logits, atol=1e-5)
        np.testing.assert_allclose(ops.convert_to_numpy(history), alignments, atol=1e-6)
