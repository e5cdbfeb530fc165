"""The behaviour checked by tensorflow-addons' `seq2seq/tests/decoder_test.py`.

Port of TFA 0.23's `dynamic_decode` tests (Apache-2.0), written anew for
`seqzoo.tfa` on Keras 3. TFA decoded inside a `tf.function` with unknown batch
and time dimensions, once traced and once run eagerly
(`maybe_run_functions_eagerly`); here TensorFlow traces it with the same
unknown dimensions and the other backends run it eagerly (the eager
TensorFlow path is run by the other decoder tests).
"""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.tfa.seq2seq._common import on_tensorflow

basic_decoder = pytest.importorskip("seqzoo.tfa.seq2seq.basic_decoder")
decoder_py = pytest.importorskip("seqzoo.tfa.seq2seq.decoder")
sampler_py = pytest.importorskip("seqzoo.tfa.seq2seq.sampler")

SEQUENCE_LENGTH = [3, 4, 3, 1, 0]
BATCH, MAX_TIME, INPUT_DEPTH, CELL_DEPTH = 5, 8, 7, 10


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def off_tensorflow_limit(steps):
    """Off TensorFlow a decode needs maximum_iterations (seqzoo.tfa's preallocated loop);
    `steps` is at least the longest decode, so the outputs are the same."""
    return {} if on_tensorflow() else {"maximum_iterations": steps}


def random(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


# decoder_test.py::test_dynamic_decode_rnn (time major or not; maximum_iterations None, 1,
# or a tensor 1): the outputs' time axis is the longest length, capped by
# maximum_iterations, and so are the final lengths.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("maximum_iterations", [None, 1, "tensor"])
@pytest.mark.parametrize("time_major", [True, False])
def test_dynamic_decode_rnn(time_major, maximum_iterations):
    limit = (ops.convert_to_tensor(1, "int32") if maximum_iterations == "tensor"
             else maximum_iterations)
    cell = keras.layers.LSTMCell(CELL_DEPTH)
    decoder = basic_decoder.BasicDecoder(
        cell=cell, sampler=sampler_py.TrainingSampler(time_major=time_major),
        output_time_major=time_major,
        **({"maximum_iterations": limit} if limit is not None else off_tensorflow_limit(MAX_TIME)))

    def decode(inputs, sequence_length):
        initial_state = cell.get_initial_state(batch_size=ops.shape(sequence_length)[0])
        return decoder(inputs, initial_state=initial_state, sequence_length=sequence_length)

    if on_tensorflow():
        import tensorflow as tf

        decode = tf.function(decode, input_signature=(
            tf.TensorSpec([None, None, INPUT_DEPTH], tf.float32),
            tf.TensorSpec([None], tf.int32)))
    inputs = random(BATCH, MAX_TIME, INPUT_DEPTH)
    if time_major:
        inputs = inputs.transpose(1, 0, 2)
    outputs, _, lengths = decode(inputs, np.array(SEQUENCE_LENGTH, "int32"))

    def t(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    steps, expected_lengths = max(SEQUENCE_LENGTH), SEQUENCE_LENGTH
    if maximum_iterations is not None:
        steps = min(steps, 1)
        expected_lengths = [min(n, 1) for n in SEQUENCE_LENGTH]
    assert tuple(lengths.shape) == (BATCH,)
    assert tuple(outputs.rnn_output.shape) == t((BATCH, steps, CELL_DEPTH))
    assert tuple(outputs.sample_id.shape) == t((BATCH, steps))
    np.testing.assert_array_equal(numpy(lengths), expected_lengths)


# decoder_test.py::test_dynamic_decode_tflite_conversion: a greedy decode traced with
# enable_tflite_convertible=True converts to TFLite (batch size 1); batch size 2 is refused.
@pytest.mark.skipif(not on_tensorflow(), reason="tf.function and the TFLite converter")
def test_dynamic_decode_tflite_conversion():
    import tensorflow as tf

    units, vocab_size = 10, 20
    cell = keras.layers.LSTMCell(units)
    embeddings = np.random.RandomState(0).uniform(size=(vocab_size, units)).astype("float32")
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler_py.GreedyEmbeddingSampler())

    @tf.function
    def decode(start_tokens, end_token):
        initial_state = cell.get_initial_state(batch_size=tf.size(start_tokens))
        return decoder_py.dynamic_decode(
            decoder, maximum_iterations=5, enable_tflite_convertible=True,
            decoder_init_input=embeddings,
            decoder_init_kwargs=dict(initial_state=initial_state, start_tokens=start_tokens,
                                     end_token=end_token))

    concrete = decode.get_concrete_function(tf.TensorSpec([1], tf.int32),
                                            tf.TensorSpec([], tf.int32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], decode)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    assert converter.convert()
    # TFA: tf.errors.InvalidArgumentError at tracing; a ValueError refuses it as well.
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="batch size"):
        decode.get_concrete_function(tf.TensorSpec([2], tf.int32), tf.TensorSpec([], tf.int32))


# decoder_test.py::test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn: with
# a TrainingSampler the decoder computes what keras.layers.RNN computes; with lengths
# (impute_finished) the outputs past them are zeros and the final states are the RNN's
# masked ones.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("use_sequence_length", [True, False])
def test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn(use_sequence_length):
    inputs = random(BATCH, MAX_TIME, INPUT_DEPTH)
    cell = keras.layers.LSTMCell(CELL_DEPTH)
    zero_state = cell.get_initial_state(batch_size=BATCH)
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler_py.TrainingSampler(),
                                         impute_finished=use_sequence_length,
                                         **off_tensorflow_limit(MAX_TIME))
    outputs, state, _ = decoder(inputs, initial_state=zero_state,
                                sequence_length=SEQUENCE_LENGTH)

    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    mask = np.arange(MAX_TIME)[None, :] < np.array(SEQUENCE_LENGTH)[:, None]
    result = rnn(inputs, mask=mask if use_sequence_length else None, initial_state=zero_state)
    rnn_outputs, rnn_state = numpy(result[0]), result[1:]
    if use_sequence_length:
        rnn_outputs = rnn_outputs * mask[:, :, None]
    max_out = max(SEQUENCE_LENGTH)
    np.testing.assert_allclose(numpy(outputs.rnn_output), rnn_outputs[:, :max_out],
                               rtol=1e-6, atol=1e-6)
    if use_sequence_length:
        keras.tree.assert_same_structure(list(state), list(rnn_state))
        for a, b in zip(state, rnn_state):
            np.testing.assert_allclose(numpy(a), numpy(b), rtol=1e-6, atol=1e-6)


@pytest.fixture(params=["float32", "mixed_float16"])
def policy(request):
    """TFA's `run_with_mixed_precision_policy`."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield keras.config.dtype_policy()
    keras.config.set_dtype_policy(previous)


# decoder_test.py::test_dynamic_decode_rnn_with_scheduled_embedding_training_sampler: the
# outputs are in the policy's compute dtype (float32, or float16 with mixed_float16).
@pytest.mark.backend_neutral
def test_dynamic_decode_rnn_with_scheduled_embedding_training_sampler(policy):
    lengths = [3, 4, 3, 1]
    batch, vocab_size = 4, 12
    embedding = keras.layers.Embedding(vocab_size, INPUT_DEPTH)
    cell = keras.layers.LSTMCell(CELL_DEPTH)
    sampler = sampler_py.ScheduledEmbeddingTrainingSampler(
        sampling_probability=ops.convert_to_tensor(1.0), embedding_fn=embedding)
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler,
                                         **off_tensorflow_limit(max(lengths)))
    inputs = np.random.RandomState(0).uniform(size=(batch, max(lengths), INPUT_DEPTH))
    outputs, _, _ = decoder(inputs.astype("float32"),
                            initial_state=cell.get_initial_state(batch_size=batch),
                            sequence_length=lengths)
    assert keras.backend.standardize_dtype(outputs.rnn_output.dtype) == policy.compute_dtype
