"""The behaviour checked by tensorflow-addons' `seq2seq/tests/basic_decoder_test.py`.

Port of TFA 0.23's `BasicDecoder` and sampler tests (Apache-2.0), written anew
for `seqzoo.tfa` on Keras 3. Each test builds a decoder, calls `initialize`
and one `step`, and checks what TFA checked: the decoder's `output_size` and
`output_dtype`, the structure and shapes of the states, the finished flags,
and how the sample ids and next inputs follow from the step's outputs. TFA's
inputs and weights were random draws; so are these (seeded), since every
check is a relation between the values, not a stored number.

Keras 3 differences that are not `seqzoo.tfa`'s: a cell's `get_initial_state`
takes no dtype, and a `GRUCell`'s state is a list of one tensor (Keras 2: the
tensor), so the GRU checks compare with the cell's own state structure.
"""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo import tfa

basic_decoder = pytest.importorskip("seqzoo.tfa.seq2seq.basic_decoder")
sampler_py = pytest.importorskip("seqzoo.tfa.seq2seq.sampler")

pytestmark = pytest.mark.backend_neutral

s2s = tfa.seq2seq
SEQUENCE_LENGTH = [3, 4, 3, 1, 0]
BATCH, MAX_TIME, INPUT_DEPTH, CELL_DEPTH = 5, 8, 7, 10


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def dtype(x):
    return keras.backend.standardize_dtype(getattr(x, "dtype", x))


def shape_list(size):
    """An `output_size` entry (int, TensorShape, tuple or list) as a list of ints."""
    if isinstance(size, (int, np.integer)):
        return [int(size)]
    return [int(d) for d in size]


def assert_output_spec(decoder, rnn_output_size, sample_id_size, sample_id_dtype="int32"):
    """TFA: `output_size == BasicDecoderOutput(depth, TensorShape([]))` and
    `output_dtype == BasicDecoderOutput(tf.float32, tf.int32)`."""
    size, types = decoder.output_size, decoder.output_dtype
    assert isinstance(size, basic_decoder.BasicDecoderOutput)
    assert isinstance(types, basic_decoder.BasicDecoderOutput)
    assert shape_list(size.rnn_output) == [rnn_output_size]
    assert shape_list(size.sample_id) == sample_id_size
    assert dtype(types.rnn_output) == "float32"
    assert dtype(types.sample_id) == sample_id_dtype


def step0(decoder, first_inputs, first_state):
    return decoder.step(ops.convert_to_tensor(0, "int32"), first_inputs, first_state)


def assert_lstm_states(batch, depth, *states):
    for state in states:
        assert len(state) == 2
        for part in state:
            assert tuple(part.shape) == (batch, depth)


def random(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


# basic_decoder_test.py::test_step_with_training_helper_output_layer (LSTM/GRU, with and
# without an output layer).
@pytest.mark.parametrize("use_output_layer", [True, False])
@pytest.mark.parametrize("cell_class", [keras.layers.LSTMCell, keras.layers.GRUCell])
def test_step_with_training_helper_output_layer(cell_class, use_output_layer):
    inputs = random(BATCH, MAX_TIME, INPUT_DEPTH)
    cell = cell_class(CELL_DEPTH)
    output_layer = keras.layers.Dense(3, use_bias=False) if use_output_layer else None
    depth = 3 if use_output_layer else CELL_DEPTH
    initial_state = cell.get_initial_state(batch_size=BATCH)
    decoder = basic_decoder.BasicDecoder(cell=cell,
                                         sampler=sampler_py.TrainingSampler(time_major=False),
                                         output_layer=output_layer)
    first_finished, first_inputs, first_state = decoder.initialize(
        inputs, initial_state=initial_state, sequence_length=SEQUENCE_LENGTH)
    assert_output_spec(decoder, depth, [])
    outputs, step_state, _, step_finished = step0(decoder, first_inputs, first_state)

    if cell_class is keras.layers.LSTMCell:
        assert_lstm_states(BATCH, CELL_DEPTH, first_state, step_state)
    else:
        for state in (first_state, step_state):
            keras.tree.assert_same_structure(initial_state, state)
            for part in keras.tree.flatten(state):
                assert tuple(part.shape) == (BATCH, CELL_DEPTH)
    assert type(outputs) is basic_decoder.BasicDecoderOutput
    assert tuple(outputs[0].shape) == (BATCH, depth)
    assert tuple(outputs[1].shape) == (BATCH,)
    if use_output_layer:
        assert len(output_layer.variables) == 1  # the output layer was used
    np.testing.assert_array_equal(numpy(first_finished), [False, False, False, False, True])
    np.testing.assert_array_equal(numpy(step_finished), [False, False, False, True, True])
    assert dtype(outputs.sample_id) == dtype(decoder.output_dtype.sample_id)
    np.testing.assert_array_equal(numpy(outputs.sample_id),
                                  np.argmax(numpy(outputs.rnn_output), -1))


# basic_decoder_test.py::test_step_with_training_helper_masked_input: the lengths given
# as a mask, as lengths, or not at all (every sequence full).
@pytest.mark.parametrize("use_mask", [True, False, None])
def test_step_with_training_helper_masked_input(use_mask):
    lengths = np.array([MAX_TIME] * BATCH if use_mask is None else SEQUENCE_LENGTH, "int32")
    mask = np.arange(MAX_TIME)[None, :] < lengths[:, None]
    inputs = random(BATCH, MAX_TIME, INPUT_DEPTH)
    cell = keras.layers.LSTMCell(CELL_DEPTH)
    output_layer = keras.layers.Dense(3, use_bias=False)
    initial_state = cell.get_initial_state(batch_size=BATCH)
    decoder = basic_decoder.BasicDecoder(cell=cell,
                                         sampler=sampler_py.TrainingSampler(time_major=False),
                                         output_layer=output_layer)
    if use_mask is None:
        first = decoder.initialize(inputs, initial_state=initial_state)
    elif use_mask:
        first = decoder.initialize(inputs, initial_state=initial_state, mask=mask)
    else:
        first = decoder.initialize(inputs, initial_state=initial_state, sequence_length=lengths)
    first_finished, first_inputs, first_state = first
    assert_output_spec(decoder, 3, [])
    outputs, step_state, _, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, CELL_DEPTH, first_state, step_state)
    assert type(outputs) is basic_decoder.BasicDecoderOutput
    assert tuple(outputs[0].shape) == (BATCH, 3)
    assert tuple(outputs[1].shape) == (BATCH,)
    assert len(output_layer.variables) == 1
    np.testing.assert_array_equal(numpy(first_finished), lengths == 0)
    np.testing.assert_array_equal(numpy(step_finished), np.maximum(lengths - 1, 0) == 0)
    assert dtype(outputs.sample_id) == dtype(decoder.output_dtype.sample_id)
    np.testing.assert_array_equal(numpy(outputs.sample_id),
                                  np.argmax(numpy(outputs.rnn_output), -1))


def embedding_decoder(sampler, vocabulary_size=7, input_depth=10, seed=0):
    """An LSTMCell(vocabulary_size) decoder initialised from start tokens."""
    rs = np.random.RandomState(seed)
    start_tokens = rs.randint(0, vocabulary_size, size=BATCH).astype("int32")
    embeddings = rs.randn(vocabulary_size, input_depth).astype("float32")
    cell = keras.layers.LSTMCell(vocabulary_size)
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler)
    first = decoder.initialize(embeddings, start_tokens=start_tokens, end_token=1,
                               initial_state=cell.get_initial_state(batch_size=BATCH))
    return decoder, embeddings, first


# basic_decoder_test.py::test_step_with_greedy_embedding_helper: the sample ids are the
# argmax, finished where they are end_token, the next inputs are their embeddings.
def test_step_with_greedy_embedding_helper():
    decoder, embeddings, (first_finished, first_inputs, first_state) = embedding_decoder(
        sampler_py.GreedyEmbeddingSampler())
    assert_output_spec(decoder, 7, [])
    outputs, step_state, next_inputs, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, 7, first_state, step_state)
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert tuple(outputs[0].shape) == (BATCH, 7)
    assert tuple(outputs[1].shape) == (BATCH,)
    expected_ids = np.argmax(numpy(outputs.rnn_output), -1)
    np.testing.assert_array_equal(numpy(first_finished), [False] * BATCH)
    np.testing.assert_array_equal(numpy(step_finished), expected_ids == 1)
    assert dtype(outputs.sample_id) == dtype(decoder.output_dtype.sample_id)
    np.testing.assert_array_equal(numpy(outputs.sample_id), expected_ids)
    np.testing.assert_array_equal(numpy(next_inputs), embeddings[expected_ids])


# basic_decoder_test.py::test_step_with_sample_embedding_helper: drawn ids; finished and
# next inputs follow from them.
def test_step_with_sample_embedding_helper():
    decoder, embeddings, (_, first_inputs, first_state) = embedding_decoder(
        sampler_py.SampleEmbeddingSampler(seed=0))
    assert_output_spec(decoder, 7, [])
    outputs, step_state, next_inputs, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, 7, first_state, step_state)
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert tuple(outputs[0].shape) == (BATCH, 7)
    assert tuple(outputs[1].shape) == (BATCH,)
    sample_ids = numpy(outputs.sample_id)
    assert dtype(sample_ids) == dtype(decoder.output_dtype.sample_id)
    assert ((sample_ids >= 0) & (sample_ids < 7)).all()
    np.testing.assert_array_equal(numpy(step_finished), sample_ids == 1)
    np.testing.assert_array_equal(numpy(next_inputs), embeddings[sample_ids])


# basic_decoder_test.py::test_step_with_scheduled_embedding_training_helper: where a
# sample was drawn (id > -1) the next input is its embedding, elsewhere the next input.
def test_step_with_scheduled_embedding_training_helper():
    vocabulary_size = 10
    inputs = random(BATCH, MAX_TIME, INPUT_DEPTH)
    embeddings = random(vocabulary_size, INPUT_DEPTH, seed=1)
    cell = keras.layers.LSTMCell(vocabulary_size)
    sampler = sampler_py.ScheduledEmbeddingTrainingSampler(
        sampling_probability=ops.convert_to_tensor(0.5), time_major=False)
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler)
    first_finished, first_inputs, first_state = decoder.initialize(
        inputs, sequence_length=SEQUENCE_LENGTH, embedding=embeddings,
        initial_state=cell.get_initial_state(batch_size=BATCH))
    assert_output_spec(decoder, vocabulary_size, [])
    outputs, step_state, next_inputs, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, vocabulary_size, first_state, step_state)
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert tuple(outputs[0].shape) == (BATCH, vocabulary_size)
    assert tuple(outputs[1].shape) == (BATCH,)
    assert tuple(next_inputs.shape) == (BATCH, INPUT_DEPTH)
    np.testing.assert_array_equal(numpy(first_finished), [False, False, False, False, True])
    np.testing.assert_array_equal(numpy(step_finished), [False, False, False, True, True])
    sample_ids = numpy(outputs.sample_id)
    assert dtype(sample_ids) == dtype(decoder.output_dtype.sample_id)
    sampled = sample_ids > -1
    next_inputs = numpy(next_inputs)
    np.testing.assert_array_equal(next_inputs[sampled], embeddings[sample_ids[sampled]])
    np.testing.assert_array_equal(next_inputs[~sampled], inputs[~sampled, 1])


# basic_decoder_test.py::test_step_with_scheduled_output_training_helper (with and without
# auxiliary inputs and next_inputs_fn, sampling probability 0 and 0.5): where sampling, the
# next input is the output (through next_inputs_fn), else the next input; auxiliary
# inputs of the next step are appended to both.
@pytest.mark.parametrize("use_auxiliary_inputs", [True, False])
@pytest.mark.parametrize("use_next_inputs_fn", [True, False])
@pytest.mark.parametrize("sampling_probability", [0.0, 0.5])
def test_step_with_scheduled_output_training_helper(sampling_probability, use_next_inputs_fn,
                                                     use_auxiliary_inputs):
    cell_depth = INPUT_DEPTH
    auxiliary = random(BATCH, MAX_TIME, 4, seed=1) if use_auxiliary_inputs else None
    inputs = random(BATCH, MAX_TIME, INPUT_DEPTH)
    cell = keras.layers.LSTMCell(cell_depth)

    def next_inputs_fn(outputs):
        return ops.one_hot(ops.argmax(outputs, axis=1), cell_depth, dtype="float32")

    sampler = sampler_py.ScheduledOutputTrainingSampler(
        sampling_probability=ops.convert_to_tensor(sampling_probability), time_major=False,
        next_inputs_fn=next_inputs_fn if use_next_inputs_fn else None)
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler)
    first_finished, first_inputs, first_state = decoder.initialize(
        inputs, sequence_length=SEQUENCE_LENGTH,
        initial_state=cell.get_initial_state(batch_size=BATCH), auxiliary_inputs=auxiliary)
    assert_output_spec(decoder, cell_depth, [])  # the sample ids are int32 0/1
    outputs, step_state, next_inputs, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, cell_depth, first_state, step_state)
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert tuple(outputs[0].shape) == (BATCH, cell_depth)
    assert tuple(outputs[1].shape) == (BATCH,)
    np.testing.assert_array_equal(numpy(first_finished), [False, False, False, False, True])
    np.testing.assert_array_equal(numpy(step_finished), [False, False, False, True, True])
    sample_ids = numpy(outputs.sample_id)
    assert dtype(sample_ids) == dtype(decoder.output_dtype.sample_id)
    sampled = sample_ids.astype(bool)
    if sampling_probability == 0.0:
        assert not sampled.any()
    rnn_output = numpy(outputs.rnn_output)
    sampled_inputs = numpy(next_inputs_fn(rnn_output)) if use_next_inputs_fn else rnn_output
    extra = auxiliary[:, 1] if use_auxiliary_inputs else np.zeros((BATCH, 0), "float32")
    next_inputs = numpy(next_inputs)
    np.testing.assert_array_equal(
        next_inputs[sampled], np.concatenate([sampled_inputs[sampled], extra[sampled]], -1))
    np.testing.assert_array_equal(
        next_inputs[~sampled], np.concatenate([inputs[~sampled, 1], extra[~sampled]], -1))


def inference_decoder(vocabulary_size, start_inputs, **sampler_kwargs):
    cell = keras.layers.LSTMCell(vocabulary_size)
    decoder = basic_decoder.BasicDecoder(cell=cell,
                                         sampler=sampler_py.InferenceSampler(**sampler_kwargs))
    first = decoder.initialize(start_inputs, initial_state=cell.get_initial_state(
        batch_size=BATCH))
    return decoder, first


# basic_decoder_test.py::test_step_with_inference_helper_categorical: ids drawn from the
# logits; the next inputs are their one-hot vectors; finished at the end token.
def test_step_with_inference_helper_categorical():
    vocabulary_size, end_token = 7, 6
    start_inputs = ops.one_hot(np.zeros(BATCH, "int32"), vocabulary_size)
    decoder, (_, first_inputs, first_state) = inference_decoder(
        vocabulary_size, start_inputs,
        sample_fn=lambda x: sampler_py.categorical_sample(logits=x),
        sample_shape=(), sample_dtype="int32",
        end_fn=lambda ids: ops.equal(ids, end_token),
        next_inputs_fn=lambda ids: ops.one_hot(ids, vocabulary_size, dtype="float32"))
    assert_output_spec(decoder, vocabulary_size, [])
    outputs, step_state, next_inputs, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, vocabulary_size, first_state, step_state)
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert tuple(outputs[0].shape) == (BATCH, vocabulary_size)
    assert tuple(outputs[1].shape) == (BATCH,)
    sample_ids = numpy(outputs.sample_id)
    assert dtype(sample_ids) == dtype(decoder.output_dtype.sample_id)
    np.testing.assert_array_equal(numpy(step_finished), sample_ids == end_token)
    np.testing.assert_array_equal(numpy(next_inputs), np.eye(vocabulary_size)[sample_ids])


# basic_decoder_test.py::test_step_with_inference_helper_multilabel: independent Bernoulli
# labels (bool ids of the vocabulary's size); finished where the end label is on.
def test_step_with_inference_helper_multilabel():
    vocabulary_size, end_token = 7, 6
    start_inputs = ops.one_hot(np.zeros(BATCH, "int32"), vocabulary_size)
    decoder, (_, first_inputs, first_state) = inference_decoder(
        vocabulary_size, start_inputs,
        sample_fn=lambda x: sampler_py.bernoulli_sample(logits=x, dtype="bool"),
        sample_shape=[vocabulary_size], sample_dtype="bool",
        end_fn=lambda ids: ids[:, end_token],
        next_inputs_fn=lambda ids: ops.cast(ids, "float32"))
    assert_output_spec(decoder, vocabulary_size, [vocabulary_size], sample_id_dtype="bool")
    outputs, step_state, next_inputs, step_finished = step0(decoder, first_inputs, first_state)

    assert_lstm_states(BATCH, vocabulary_size, first_state, step_state)
    assert isinstance(outputs, basic_decoder.BasicDecoderOutput)
    assert tuple(outputs[0].shape) == (BATCH, vocabulary_size)
    assert tuple(outputs[1].shape) == (BATCH, vocabulary_size)
    sample_ids = numpy(outputs.sample_id)
    assert dtype(sample_ids) == "bool"
    np.testing.assert_array_equal(numpy(step_finished), sample_ids[:, end_token])
    np.testing.assert_array_equal(numpy(next_inputs), sample_ids.astype("float32"))


# basic_decoder_test.py::test_basic_decoder_with_attention_wrapper: a BasicDecoder takes
# an AttentionWrapper whose mechanism has no memory yet.
def test_basic_decoder_with_attention_wrapper():
    cell = s2s.AttentionWrapper(keras.layers.LSTMCell(8), s2s.LuongAttention(8))
    basic_decoder.BasicDecoder(cell, sampler_py.TrainingSampler(),
                               output_layer=keras.layers.Dense(20))


# basic_decoder_test.py::test_right_padded_sequence_assertion: a TrainingSampler accepts a
# right-padded mask and refuses a left-padded one (TFA: InvalidArgumentError from the
# check `_check_sequence_is_right_padded`, run by `initialize(..., mask=...)`).
def test_right_padded_sequence_assertion():
    right_padded = np.array([[True, True, False, False], [True, True, True, False]])
    left_padded = np.array([[False, False, True, True], [False, True, True, True]])
    inputs = random(2, 4, 3)
    sampler_py.TrainingSampler().initialize(inputs, mask=right_padded)
    with pytest.raises(Exception, match="should be right padded"):
        finished, _ = sampler_py.TrainingSampler().initialize(inputs, mask=left_padded)
        numpy(finished)
