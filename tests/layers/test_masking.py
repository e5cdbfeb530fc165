import numpy as np
import pytest
from keras import ops

from seqzoo.layers import lengths_from_ids, mask_from_ids, sequence_mask

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral


def test_sequence_mask_marks_first_lengths_positions():
    mask = ops.convert_to_numpy(sequence_mask(np.array([0, 2, 3]), maxlen=4))
    np.testing.assert_array_equal(
        mask,
        [[False] * 4, [True, True, False, False], [True, True, True, False]],
    )


def test_sequence_mask_default_maxlen_and_dtype():
    mask = ops.convert_to_numpy(sequence_mask(np.array([1, 3]), dtype="float32"))
    np.testing.assert_array_equal(mask, [[1, 0, 0], [1, 1, 1]])


def test_lengths_and_mask_from_padded_ids():
    ids = np.array([[5, 6, 7, 0], [9, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(ops.convert_to_numpy(lengths_from_ids(ids)), [3, 1, 0])
    np.testing.assert_array_equal(
        ops.convert_to_numpy(mask_from_ids(ids)),
        ops.convert_to_numpy(sequence_mask(np.array([3, 1, 0]), maxlen=4)),
    )
