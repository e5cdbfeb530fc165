"""The behaviour checked by tensorflow-addons' `seq2seq/tests/beam_search_ops_test.py`.

Port of TFA 0.23's `gather_tree` tests (Apache-2.0), written anew for
`seqzoo.tfa`. TFA ran each test with its custom op and with its Python
fallback (`run_custom_and_py_ops`); `seqzoo.tfa` has one implementation, on
`keras.ops`, which these tests run on every backend.
"""

import itertools

import keras
import numpy as np
import pytest

from seqzoo import tfa
from seqzoo.tfa.seq2seq._common import on_tensorflow

s2s = tfa.seq2seq


def time_major(batch_major):
    """`[batch, time, beam]` nested lists as a time-major int32 array."""
    return np.transpose(np.asarray(batch_major), (1, 0, 2)).astype("int32")


# beam_search_ops_test.py::test_gather_tree_one: one batch item, three beams of length 3
# in 4 steps; the step past the length is end_token.
@pytest.mark.backend_neutral
def test_gather_tree_one():
    step_ids = time_major([[[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -1, -1]]])
    parent_ids = time_major([[[0, 0, 0], [0, 1, 1], [2, 1, 2], [-1, -1, -1]]])
    expected = time_major([[[2, 2, 2], [6, 5, 6], [7, 8, 9], [10, 10, 10]]])
    beams = s2s.gather_tree(step_ids=step_ids, parent_ids=parent_ids,
                            max_sequence_lengths=[3], end_token=10)
    assert keras.backend.standardize_dtype(beams.dtype) == "int32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(beams), expected)


BAD_PARENT_STEP_IDS = time_major([[[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -1, -1]]])
# Beam 1 at step 1 names parent -1.
BAD_PARENT_IDS = time_major([[[0, 0, 0], [0, -1, 1], [2, 1, 2], [-1, -1, -1]]])
# TFA's message, with the step whose beam the bad parent names.
BAD_PARENT_MESSAGE = r"invalid parent id -1 at \(batch, time, beam\) == \(0, 0, 1\)"


# beam_search_ops_test.py::test_bad_parent_values_on_cpu.
@pytest.mark.backend_neutral
def test_bad_parent_values_on_cpu():
    with pytest.raises(ValueError, match=BAD_PARENT_MESSAGE):
        keras.ops.convert_to_numpy(s2s.gather_tree(
            step_ids=BAD_PARENT_STEP_IDS, parent_ids=BAD_PARENT_IDS,
            max_sequence_lengths=[3], end_token=10))


def _has_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# beam_search_ops_test.py::test_bad_parent_values_on_gpu: the same check placed on the GPU.
@pytest.mark.skipif(not on_tensorflow() or not _has_gpu(), reason="TensorFlow on a GPU")
def test_bad_parent_values_on_gpu():
    import tensorflow as tf

    with tf.device("GPU:0"), pytest.raises(ValueError, match=BAD_PARENT_MESSAGE):
        s2s.gather_tree(step_ids=BAD_PARENT_STEP_IDS, parent_ids=BAD_PARENT_IDS,
                        max_sequence_lengths=[3], end_token=10).numpy()


# beam_search_ops_test.py::test_gather_tree_batch: random ids and parents; lengths from 0
# to past max_time. Every step at or past a batch item's length is end_token, and in every
# beam everything after its first end_token is end_token.
@pytest.mark.backend_neutral
def test_gather_tree_batch():
    batch_size, beam_width, max_time, end_token = 10, 15, 8, 5
    max_sequence_lengths = [0, 1, 2, 4, 7, 8, 9, 10, 11, 0]
    rs = np.random.RandomState(0)
    step_ids = rs.randint(0, end_token + 1, size=(max_time, batch_size, beam_width))
    parent_ids = rs.randint(0, beam_width - 1, size=(max_time, batch_size, beam_width))
    beams = keras.ops.convert_to_numpy(s2s.gather_tree(
        step_ids=step_ids.astype("int32"), parent_ids=parent_ids.astype("int32"),
        max_sequence_lengths=max_sequence_lengths, end_token=end_token))
    assert beams.shape == (max_time, batch_size, beam_width)
    for b in range(batch_size):
        np.testing.assert_array_equal(beams[max_sequence_lengths[b]:, b, :], end_token)
    for b, w in itertools.product(range(batch_size), range(beam_width)):
        v = beams[:, b, w]
        if end_token in v:
            assert not (v == -1).any()
            first = np.flatnonzero(v == end_token)[0]
            assert (v[:first] >= 0).all()
            np.testing.assert_array_equal(v[first + 1:], end_token)
