"""The behaviour checked by tensorflow-addons' `seq2seq/tests/beam_search_decoder_test.py`.

Port of TFA 0.23's beam search tests (Apache-2.0), written anew for
`seqzoo.tfa` on Keras 3: `gather_tree` and `gather_tree_from_array` on TFA's
arrays, the masking of finished beams, single search steps with TFA's expected
ids, parents, lengths and log-probabilities, the shape checks of the
reordering of `TensorArray`s, and whole searches (shapes and types).

TFA's helpers `_mask_probs` and `_beam_search_step` are
`beam_search_ops._mask_probs` and `beam_search_ops.beam_search_step` here (the
step takes no `time`, `batch_size` or `beam_width`: they come from the
shapes). TFA's `_check_static_batch_beam_maybe` and `_check_batch_beam` guard
the reordering of the cell state's `TensorArray`s, which is
`BeamSearchDecoder._maybe_sort_array_beams` here; their tests call it.
TFA's `test_beam_search_decoder` ran 32 combinations (cell, time major,
attention, alignment history, all scores), each eager and traced; three of them
run here, every value of every option at least once.
"""

import types
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo import tfa
from seqzoo.tfa.seq2seq import beam_search_ops
from seqzoo.tfa.seq2seq._common import on_tensorflow

s2s = tfa.seq2seq


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def bsd_module():
    return pytest.importorskip("seqzoo.tfa.seq2seq.beam_search_decoder")


def time_major(x):
    """`[batch, time, beam, ...]` -> `[time, batch, beam, ...]`."""
    x = np.asarray(x)
    return np.swapaxes(x, 0, 1)


# beam_search_decoder_test.py::test_gather_tree: batch 2, 3 steps, 3 beams.
@pytest.mark.backend_neutral
def test_gather_tree():
    predicted_ids = time_major([[[1, 2, 3], [4, 5, 6], [7, 8, 9]],
                                [[2, 3, 4], [5, 6, 7], [8, 9, 10]]]).astype("int32")
    parent_ids = time_major([[[0, 0, 0], [0, 1, 1], [2, 1, 2]],
                             [[0, 0, 0], [1, 2, 0], [2, 1, 1]]]).astype("int32")
    expected = time_major([[[2, 2, 2], [6, 5, 6], [7, 8, 9]],
                           [[2, 4, 4], [7, 6, 6], [8, 9, 10]]])
    beams = s2s.gather_tree(predicted_ids, parent_ids, max_sequence_lengths=[3, 3],
                            end_token=11)
    np.testing.assert_array_equal(numpy(beams), expected)


def gather_tree_from_array_case(depth_ndims=0, merged_batch_beam=False):
    """TFA's `_test_gather_tree_from_array`: batch 2, 4 steps, 3 beams; the values get
    `depth_ndims` extra axes (each value v as [v, v + 1]) and may have their batch and
    beam axes merged."""
    array = time_major([[[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]],
                        [[2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 0]]]).astype("float32")
    parent_ids = time_major([[[0, 0, 0], [0, 1, 1], [2, 1, 2], [-1, -1, -1]],
                             [[0, 0, 0], [1, 1, 0], [2, 0, 1], [0, 1, 0]]]).astype("int32")
    expected = time_major([[[2, 2, 2], [6, 5, 6], [7, 8, 9], [0, 0, 0]],
                           [[2, 3, 2], [7, 5, 7], [8, 9, 8], [11, 12, 0]]]).astype("float32")
    sequence_length = [[3, 3, 3], [4, 4, 3]]
    if merged_batch_beam:
        array, expected = (x.reshape(x.shape[0], -1) for x in (array, expected))
    for _ in range(depth_ndims):
        array = np.stack([array, array + 1], -1)
        expected = np.stack([expected, expected + 1], -1)
    sorted_array = s2s.gather_tree_from_array(array, parent_ids, sequence_length)
    assert tuple(sorted_array.shape) == expected.shape
    np.testing.assert_array_equal(numpy(sorted_array), expected)


# beam_search_decoder_test.py::test_gather_tree_from_array_scalar.
@pytest.mark.backend_neutral
def test_gather_tree_from_array_scalar():
    gather_tree_from_array_case()


# beam_search_decoder_test.py::test_gather_tree_from_array_1d.
@pytest.mark.backend_neutral
def test_gather_tree_from_array_1d():
    gather_tree_from_array_case(depth_ndims=1)


# beam_search_decoder_test.py::test_gather_tree_from_array_1d_with_merged_batch_beam.
@pytest.mark.backend_neutral
def test_gather_tree_from_array_1d_with_merged_batch_beam():
    gather_tree_from_array_case(depth_ndims=1, merged_batch_beam=True)


# beam_search_decoder_test.py::test_gather_tree_from_array_2d.
@pytest.mark.backend_neutral
def test_gather_tree_from_array_2d():
    gather_tree_from_array_case(depth_ndims=2)


# beam_search_decoder_test.py::test_gather_tree_from_array_complex_trajectory: 7 steps,
# one batch item, 5 beams of different lengths.
@pytest.mark.backend_neutral
def test_gather_tree_from_array_complex_trajectory():
    array = np.array([
        [[25, 12, 114, 89, 97]], [[9, 91, 64, 11, 162]], [[34, 34, 34, 34, 34]],
        [[2, 4, 2, 2, 4]], [[2, 3, 6, 2, 2]], [[2, 2, 2, 3, 2]], [[2, 2, 2, 2, 2]],
    ], "float32")[..., None]
    parent_ids = np.array([
        [[0, 0, 0, 0, 0]], [[0, 0, 0, 0, 0]], [[0, 1, 2, 3, 4]], [[0, 0, 1, 2, 1]],
        [[0, 1, 1, 2, 3]], [[0, 1, 3, 1, 2]], [[0, 1, 2, 3, 4]],
    ], "int32")
    expected = np.array([
        [[25, 25, 25, 25, 25]], [[9, 9, 91, 9, 9]], [[34, 34, 34, 34, 34]],
        [[2, 4, 2, 4, 4]], [[2, 3, 6, 3, 6]], [[2, 2, 2, 3, 2]], [[2, 2, 2, 2, 2]],
    ], "float32")[..., None]
    sorted_array = s2s.gather_tree_from_array(array, parent_ids, [[4, 6, 4, 7, 6]])
    np.testing.assert_array_equal(numpy(sorted_array), expected)


def sorting_decoder(batch_size, beam_width):
    """A BeamSearchDecoder as during a decode of `batch_size` items (the state that
    `initialize` sets), to reorder TensorArrays with `_maybe_sort_array_beams`."""
    decoder = bsd_module().BeamSearchDecoder(keras.layers.LSTMCell(3), beam_width=beam_width)
    decoder._run = types.SimpleNamespace(batch_size=batch_size)
    return decoder


def sort_array(decoder, t, element_shape):
    """`_maybe_sort_array_beams` of a TensorArray of `t` [8, ...] with this element shape,
    zero parent ids and full lengths, and the warnings it gave."""
    import tensorflow as tf

    array = tf.TensorArray(tf.float32, size=8, element_shape=element_shape).unstack(t)
    time, batch, beam = 8, decoder._run.batch_size, decoder.beam_width
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = decoder._maybe_sort_array_beams(
            array, tf.zeros((time, batch, beam), tf.int32), tf.fill((batch, beam), time))
    return result, caught


def sorts(decoder, t, element_shape):
    """Whether the TensorArray is reordered (stacked and sorted) or left as it is (with a
    warning, TFA's when its static check fails)."""
    import tensorflow as tf

    result, caught = sort_array(decoder, t, element_shape)
    if isinstance(result, tf.TensorArray):
        assert caught, "an array left unsorted comes with a warning"
        return False
    assert tuple(result.shape) == tuple(t.shape)
    return True


# beam_search_decoder_test.py::test_array_shape_dynamic_checks: in a tf.function with
# unknown dimensions, elements [4, 5, 10] or [20, 10] reorder for batch 4 and beam 5;
# [21, 10], [4, 6, 10] and [4] fail at run time (TFA: InvalidArgumentError).
@pytest.mark.skipif(not on_tensorflow(), reason="tf.function with unknown shapes, TensorArray")
@pytest.mark.parametrize("shape, valid", [
    ((8, 4, 5, 10), True),
    ((8, 20, 10), True),
    ((8, 21, 10), False),
    ((8, 4, 6, 10), False),
    ((8, 4), False),
])
def test_array_shape_dynamic_checks(shape, valid):
    import tensorflow as tf

    decoder = sorting_decoder(4, 5)
    unknown = [None] * (len(shape) - 1)
    if len(shape) > 2:
        unknown[-1] = shape[-1]

    @tf.function(input_signature=(tf.TensorSpec([None] + unknown, tf.float32),))
    def reorder(t):
        result, _ = sort_array(decoder, t, tf.TensorShape(unknown))
        assert not isinstance(result, tf.TensorArray)  # unknown sizes pass the static check
        return result

    t = tf.random.uniform(shape)
    if valid:
        assert tuple(reorder(t).shape) == shape
    else:
        with pytest.raises(tf.errors.InvalidArgumentError):
            reorder(t)


# beam_search_decoder_test.py::test_array_shape_static_checks: known element shapes are
# reordered when they fit [batch * beam, ...] or [batch, beam, ...] (batch 3, beam 5),
# else left as they are.
@pytest.mark.skipif(not on_tensorflow(), reason="TensorArray")
def test_array_shape_static_checks():
    import tensorflow as tf

    decoder = sorting_decoder(3, 5)
    assert sorts(decoder, tf.zeros((8, 15, 2, 2)), tf.TensorShape([None, None, None]))
    assert sorts(decoder, tf.zeros((8, 15, 2, 2)), tf.TensorShape([15, None, None]))
    assert not sorts(decoder, tf.zeros((8, 16, 2, 2)), tf.TensorShape([16, None, None]))
    assert sorts(decoder, tf.zeros((8, 3, 5, 2)), tf.TensorShape([3, 5, None]))
    assert not sorts(decoder, tf.zeros((8, 3, 6, 2)), tf.TensorShape([3, 6, None]))
    assert not sorts(decoder, tf.zeros((8, 5, 3, 2)), tf.TensorShape([5, 3, None]))


# beam_search_decoder_test.py::test_eos_masking: finished beams keep only end_token (0),
# every other token gets the float32 minimum; other beams are unchanged.
@pytest.mark.backend_neutral
def test_eos_masking():
    probs = np.array([
        [[-0.2, -0.2, -0.2, -0.2, -0.2], [-0.3, -0.3, -0.3, 3, 0], [5, 6, 0, 0, 0]],
        [[-0.2, -0.2, -0.2, -0.2, 0], [-0.3, -0.3, -0.1, 3, 0], [5, 6, 3, 0, 0]],
    ], "float32")
    finished = np.array([[0, 1, 0], [0, 1, 1]], bool)
    masked = numpy(beam_search_ops._mask_probs(probs, 0, finished))
    for b, w in [(0, 0), (0, 2), (1, 0)]:
        np.testing.assert_array_equal(masked[b, w], probs[b, w])
    for b, w in [(0, 1), (1, 1), (1, 2)]:
        assert masked[b, w, 0] == 0
        np.testing.assert_array_equal(masked[b, w, 1:], np.finfo("float32").min)


# beam_search_decoder_test.py::test_missing_embedding_fn: no embedding at call time and
# no embedding_fn is a ValueError.
@pytest.mark.backend_neutral
def test_missing_embedding_fn():
    batch_size, beam_width = 6, 4
    cell = keras.layers.LSTMCell(5)
    decoder = bsd_module().BeamSearchDecoder(cell, beam_width=beam_width)
    initial_state = cell.get_initial_state(batch_size=batch_size * beam_width)
    start_tokens = np.ones([batch_size], "int32")
    with pytest.raises(ValueError):
        decoder(None, start_tokens, 2, initial_state)


def step_logits(batch_size, beam_width, overrides):
    logits = np.full((batch_size, beam_width, 5), 0.0001)
    for index, value in overrides.items():
        logits[index] = value
    return logits.astype("float32")


def beam_step(logits, state):
    """TFA's `_beam_search_step` call of these tests: end token 0, length penalty 0.6."""
    return beam_search_ops.beam_search_step(
        logits=ops.convert_to_tensor(logits), next_cell_state=state.cell_state,
        beam_state=state, end_token=0, length_penalty_weight=0.6,
        coverage_penalty_weight=0.0, output_all_scores=False)


def beam_state(log_probs, lengths, finished):
    batch_size, beam_width = np.shape(finished)
    return beam_search_ops.BeamSearchDecoderState(
        cell_state=ops.zeros((batch_size, beam_width)),
        log_probs=ops.convert_to_tensor(log_probs, "float32"),
        lengths=ops.convert_to_tensor(lengths, beam_search_ops.lengths_dtype()),
        finished=ops.convert_to_tensor(finished, "bool"),
        accumulated_attention_probs=())


def uniform_log_probs(batch_size, beam_width):
    return numpy(ops.log_softmax(ops.ones((batch_size, beam_width)), axis=-1))


def assert_log_probs(got, previous, log_probs, picks):
    """`got[b, w] == previous[b, w] + log_probs[picks[b][w]]`; None keeps `previous`."""
    expected = np.array(previous, "float32")
    for b, row in enumerate(picks):
        for w, pick in enumerate(row):
            if pick is not None:
                expected[b, w] += log_probs[(b,) + pick]
    np.testing.assert_allclose(numpy(got), expected, rtol=1e-6)


# beam_search_decoder_test.py::test_beam_step: batch 2, 3 live beams of length 2.
@pytest.mark.backend_neutral
def test_beam_step():
    logits = step_logits(2, 3, {(0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1,
                                (0, 1, 4): 0.9, (1, 0, 1): 0.5, (1, 1, 2): 2.7,
                                (1, 2, 2): 10.0, (1, 2, 3): 0.2})
    state = beam_state(uniform_log_probs(2, 3), np.full((2, 3), 2), np.zeros((2, 3), bool))
    outputs, next_state = beam_step(logits, state)
    np.testing.assert_array_equal(numpy(outputs.predicted_ids), [[3, 3, 2], [2, 2, 1]])
    np.testing.assert_array_equal(numpy(outputs.parent_ids), [[1, 0, 0], [2, 1, 0]])
    np.testing.assert_array_equal(numpy(next_state.lengths), [[3, 3, 3], [3, 3, 3]])
    np.testing.assert_array_equal(numpy(next_state.finished), np.zeros((2, 3), bool))
    log_probs = numpy(ops.log_softmax(logits, axis=-1))
    assert_log_probs(next_state.log_probs, numpy(state.log_probs), log_probs,
                     [[(1, 3), (0, 3), (0, 2)], [(2, 2), (1, 2), (0, 1)]])


# beam_search_decoder_test.py::test_step_with_eos: one finished beam per batch item; a
# finished beam stays (end token, same length and log-probability).
@pytest.mark.backend_neutral
def test_step_with_eos():
    logits = step_logits(2, 3, {(0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1,
                                (0, 1, 4): 0.9, (1, 0, 1): 0.5, (1, 1, 2): 5.7,
                                (1, 2, 2): 1.0, (1, 2, 3): 0.2})
    state = beam_state(uniform_log_probs(2, 3), [[2, 1, 2], [2, 2, 1]],
                       [[False, True, False], [False, False, True]])
    outputs, next_state = beam_step(logits, state)
    np.testing.assert_array_equal(numpy(outputs.parent_ids), [[1, 0, 0], [1, 2, 0]])
    np.testing.assert_array_equal(numpy(outputs.predicted_ids), [[0, 3, 2], [2, 0, 1]])
    np.testing.assert_array_equal(numpy(next_state.lengths), [[1, 3, 3], [3, 1, 3]])
    np.testing.assert_array_equal(numpy(next_state.finished),
                                  [[True, False, False], [False, True, False]])
    log_probs = numpy(ops.log_softmax(logits, axis=-1))
    assert_log_probs(next_state.log_probs, numpy(state.log_probs), log_probs,
                     [[None, (0, 3), (0, 2)], [(1, 2), None, (0, 1)]])


# beam_search_decoder_test.py::test_large_beam_step: 8 beams, only beam 0 live (as after
# initialize): the 3 beams that cannot be filled keep -inf and length 0.
@pytest.mark.backend_neutral
def test_large_beam_step():
    batch_size, beam_width = 2, 8
    first = np.arange(beam_width)[None, :] == 0
    log_probs = np.where(first, 0.0, -np.inf).repeat(batch_size, 0)
    lengths = np.where(first, 2, 0).repeat(batch_size, 0)
    logits = step_logits(batch_size, beam_width, {
        (0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1, (0, 1, 4): 0.9, (1, 0, 1): 0.5,
        (1, 1, 2): 2.7, (1, 2, 2): 10.0, (1, 2, 3): 0.2})
    state = beam_state(log_probs, lengths, ~first.repeat(batch_size, 0))
    outputs, next_state = beam_step(logits, state)
    predicted_ids = numpy(outputs.predicted_ids)
    assert (predicted_ids[0, 0], predicted_ids[0, 1], predicted_ids[1, 0]) == (3, 2, 1)
    next_log_probs, next_lengths = numpy(next_state.log_probs), numpy(next_state.lengths)
    np.testing.assert_array_equal(next_log_probs[:, -3:], -np.inf)
    assert (next_log_probs[:, :-3] > -np.inf).all()
    assert (next_lengths[:, :-3] > 0).all()
    np.testing.assert_array_equal(next_lengths[:, -3:], 0)


# beam_search_decoder_test.py::test_beam_search_decoder: whole searches (3 steps, batch 5,
# beam 3, vocabulary 20, Bahdanau attention over tiled memory with a coverage penalty);
# the output types and shapes, and output_size's scores.
@pytest.mark.parametrize("cell_class, time_major, has_attention, alignment_history, "
                         "output_all_scores", [
                             ("LSTMCell", False, True, True, True),
                             ("GRUCell", True, True, False, False),
                             ("GRUCell", False, False, False, False),
                         ])
@pytest.mark.backend_neutral
def test_beam_search_decoder(cell_class, time_major, has_attention, alignment_history,
                             output_all_scores):
    if alignment_history and not on_tensorflow():
        pytest.skip("alignment_history is a tf.TensorArray")
    bsd = bsd_module()
    batch_size, memory_time, input_depth, cell_depth, attention_depth = 5, 4, 7, 9, 6
    vocab_size, beam_width, embedding_dim = 20, 3, 8
    end_token, start_token = vocab_size - 1, 0
    rs = np.random.RandomState(0)
    embedding = rs.randn(vocab_size, embedding_dim).astype("float32")
    cell = getattr(keras.layers, cell_class)(cell_depth)
    if has_attention:
        mechanism = s2s.BahdanauAttention(units=attention_depth)
        cell = s2s.AttentionWrapper(cell=cell, attention_mechanism=mechanism,
                                    attention_layer_size=attention_depth,
                                    alignment_history=alignment_history)
    decoder = bsd.BeamSearchDecoder(
        cell=cell, beam_width=beam_width, output_layer=keras.layers.Dense(vocab_size),
        length_penalty_weight=0.0, coverage_penalty_weight=0.2 if has_attention else 0.0,
        output_time_major=time_major, maximum_iterations=3,
        output_all_scores=output_all_scores)

    def decode(memory, memory_sequence_length):
        batch = ops.shape(memory)[0]
        if has_attention:
            mechanism.setup_memory(
                s2s.tile_batch(memory, multiplier=beam_width),
                memory_sequence_length=s2s.tile_batch(memory_sequence_length,
                                                      multiplier=beam_width))
        initial_state = cell.get_initial_state(batch_size=batch * beam_width)
        return decoder(embedding, start_tokens=ops.full((batch,), start_token, "int32"),
                       end_token=end_token, initial_state=initial_state)

    if on_tensorflow():
        import tensorflow as tf

        decode = tf.function(decode, input_signature=(
            tf.TensorSpec([None, None, input_depth], tf.float32),
            tf.TensorSpec([None], tf.int32)))
    memory = rs.randn(batch_size, memory_time, input_depth).astype("float32")
    outputs, state, lengths = decode(memory, np.array([3, 2, 3, 1, 1], "int32"))

    def t(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    assert isinstance(outputs, bsd.FinalBeamSearchDecoderOutput)
    assert isinstance(state, bsd.BeamSearchDecoderState)
    steps = int(numpy(lengths).max())
    assert tuple(outputs.predicted_ids.shape) == t((batch_size, steps, beam_width))
    scores = outputs.beam_search_decoder_output.scores
    size = [int(d) for d in decoder.output_size.scores]
    if output_all_scores:
        assert tuple(scores.shape) == t((batch_size, steps, beam_width, vocab_size))
        assert size == [beam_width, vocab_size]
    else:
        assert tuple(scores.shape) == t((batch_size, steps, beam_width))
        assert size == [beam_width]
