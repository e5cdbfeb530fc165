"""`gather_tree`, `gather_tree_from_array` and `tile_batch` against tensorflow-addons 0.23."""

import keras
import numpy as np
import pytest

from seqzoo.tfa.seq2seq._common import on_tensorflow
from seqzoo.tfa.seq2seq.beam_search_ops import gather_tree, gather_tree_from_array, tile_batch
from tests.tfa._fixtures import assert_close, assert_equal, case, case_names

GATHER_TREE = case_names("utils", kind="gather_tree")
FROM_ARRAY = case_names("utils", kind="gather_tree_from_array")


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", GATHER_TREE)
def test_gather_tree_matches_tfa(name):
    c = case("utils", name)
    i = c.inputs
    beams = gather_tree(i["step_ids"], i["parent_ids"], i["max_sequence_lengths"],
                        i["end_token"])
    assert keras.backend.standardize_dtype(beams.dtype) == "int32"
    assert_equal(beams, c.outputs["beams"], name)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", FROM_ARRAY)
def test_gather_tree_from_array_matches_tfa(name):
    c = case("utils", name)
    i = c.inputs
    ordered = gather_tree_from_array(i["t"], i["parent_ids"], i["sequence_length"])
    assert_close(ordered, c.outputs["ordered"], name)


@pytest.mark.backend_neutral
def test_gather_tree_from_array_takes_flat_beams():
    """`[max_time, batch_size * beam_width, depth]` gives the same reordering."""
    c = case("utils", "gather_tree_from_array_lengths")
    t = c.inputs["t"]
    flat = t.reshape(t.shape[0], -1, t.shape[-1])
    ordered = gather_tree_from_array(flat, c.inputs["parent_ids"], c.inputs["sequence_length"])
    assert_close(ordered, c.outputs["ordered"].reshape(flat.shape))


@pytest.mark.backend_neutral
def test_tile_batch_matches_tfa_on_a_nest():
    c = case("utils", "tile_batch_nested")
    t = dict(c.inputs["t"])
    t["state"] = list(t["state"])  # a list of two [2, 4] tensors, as TFA was given
    tiled = tile_batch(t, 3)
    assert isinstance(tiled, dict) and isinstance(tiled["state"], list)
    expected = c.outputs["tiled"]
    assert_close(tiled["memory"], expected["memory"], "memory")
    assert_equal(tiled["lengths"], expected["lengths"], "lengths (rank 1)")
    assert keras.backend.standardize_dtype(tiled["lengths"].dtype) == "int32"
    assert_close(keras.ops.stack(tiled["state"]), expected["state"], "state")


@pytest.mark.backend_neutral
def test_tile_batch_repeats_rows_not_the_batch():
    x = np.arange(6, dtype="float32").reshape(3, 2)
    assert_equal(tile_batch(x, 2), np.repeat(x, 2, axis=0))
    assert_equal(tile_batch((x[:, 0],), 1)[0], x[:, 0])


@pytest.mark.backend_neutral
def test_bad_arguments_are_tfa_s_errors():
    ids = np.zeros((4, 2, 3), "int32")
    with pytest.raises(ValueError, match="t must have statically known rank"):
        tile_batch([np.ones((2, 3)), np.float32(1.0)], 2)
    with pytest.raises(ValueError, match="step_ids must be a 3-tensor"):
        gather_tree(ids[0], ids[0], [4, 4], 1)
    with pytest.raises(ValueError, match="max_sequence_lengths must be a vector"):
        gather_tree(ids, ids, 4, 1)
    with pytest.raises(ValueError, match="end_token must be a scalar"):
        gather_tree(ids, ids, [4, 4], [1])
    with pytest.raises(ValueError, match="step_ids.shape must match parent_ids.shape"):
        gather_tree(ids, ids[:3], [4, 4], 1)
    with pytest.raises(ValueError, match="batch size dimensions"):
        gather_tree(ids, ids, [4, 4, 4], 1)


@pytest.mark.skipif(not on_tensorflow(), reason="tf.function with unknown shapes")
def test_gather_tree_in_a_tf_function_with_unknown_shapes():
    import tensorflow as tf

    c = case("utils", "gather_tree_zero_and_over_length")
    spec = tf.TensorSpec([None, None, None], tf.int32)

    @tf.function(input_signature=(spec, spec, tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([], tf.int32)))
    def run(step_ids, parent_ids, lengths, end):
        return gather_tree(step_ids, parent_ids, lengths, end)

    i = c.inputs
    beams = run(i["step_ids"], i["parent_ids"], i["max_sequence_lengths"], i["end_token"])
    assert_equal(beams, c.outputs["beams"])
