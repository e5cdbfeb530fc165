"""`top_k_rows`: the same values and indices as `ops.top_k`, in blocks or not."""

import numpy as np
import pytest
from keras import ops

from seqzoo.decoding.top_k import top_k_rows

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral


@pytest.mark.parametrize("vocab, k", [(1000, 4), (1000, 1), (4096, 8), (997, 4)])
def test_top_k_in_blocks_gives_what_top_k_gives(vocab, k):
    """Ranking blocks of the row first finds the same values and indices, ties
    (to the lower index) and -inf (banned tokens) included; 997 has no divisor
    near the block size and takes the plain top_k."""
    rng = np.random.default_rng(vocab + k)
    x = rng.normal(size=(64, vocab)).astype("float32")
    x[:16, rng.integers(0, vocab, 40)] = 3.5  # ties across blocks at the top
    x[16:32] = np.round(x[16:32])  # many ties everywhere
    x[32:48, rng.integers(0, vocab, vocab - 2)] = -np.inf  # fewer than k finite values
    want_values, want_index = ops.top_k(x, k)
    values, index = top_k_rows(ops.convert_to_tensor(x), k, blocked=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(index), ops.convert_to_numpy(want_index))
    np.testing.assert_array_equal(ops.convert_to_numpy(values), ops.convert_to_numpy(want_values))
