"""The behaviour checked by tensorflow-addons' `seq2seq/tests/loss_test.py`, on `seqzoo.tfa`.

Port of TFA 0.23's loss tests (Apache-2.0), written anew: the same data
(uniform logits, so every token's loss is log(5)), flags and expected values.
TFA ran most of them once eagerly and once in a `tf.function`; here the
eager run is the backend-neutral one, and `test_sequence_loss_in_tf_function`
repeats the flag grid inside a `tf.function` on TensorFlow.
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo import tfa
from seqzoo.tfa.seq2seq._common import on_tensorflow

s2s = tfa.seq2seq

BATCH, TIME, CLASSES = 2, 3, 5
# Logits equal across classes: cross-entropy log(5) for every token and target.
EXPECTED = 1.60944


def data():
    """logits [2, 3, 5] (0.5, 1.5, 2.5 per step), targets [[0, 1, 2]] * 2, unit weights."""
    logits = np.broadcast_to((np.arange(TIME) + 0.5)[None, :, None], (BATCH, TIME, CLASSES))
    targets = np.broadcast_to(np.arange(TIME)[None], (BATCH, TIME))
    return (logits.astype("float32"), targets.astype("int32"),
            np.ones((BATCH, TIME), "float32"))


def expected_shape(average_across_timesteps, average_across_batch):
    return (() if average_across_batch else (BATCH,)) + (() if average_across_timesteps
                                                         else (TIME,))


def assert_loss(got, expected):
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-6, atol=1e-6)


# loss_test.py::test_sequence_loss (2 x 2 x 2 flags).
@pytest.mark.backend_neutral
@pytest.mark.parametrize("zero_weights", [True, False])
@pytest.mark.parametrize("average_across_batch", [True, False])
@pytest.mark.parametrize("average_across_timesteps", [True, False])
def test_sequence_loss(average_across_timesteps, average_across_batch, zero_weights):
    logits, targets, weights = data()
    if zero_weights:
        weights = np.zeros_like(weights)
    got = s2s.sequence_loss(logits, targets, weights,
                            average_across_timesteps=average_across_timesteps,
                            average_across_batch=average_across_batch)
    shape = expected_shape(average_across_timesteps, average_across_batch)
    assert tuple(got.shape) == shape
    assert_loss(got, np.full(shape, 0.0 if zero_weights else EXPECTED))


@pytest.mark.skipif(not on_tensorflow(), reason="tf.function")
def test_sequence_loss_in_tf_function():
    """TFA's `maybe_run_functions_eagerly` second run of `test_sequence_loss`."""
    import tensorflow as tf

    logits, targets, weights = data()
    grid = list(itertools.product([True, False], repeat=3))

    @tf.function
    def all_flags(logits, targets, weights):
        return [s2s.sequence_loss(logits, targets, weights * (0.0 if zero else 1.0),
                                  average_across_timesteps=time_avg,
                                  average_across_batch=batch_avg)
                for time_avg, batch_avg, zero in grid]

    for (time_avg, batch_avg, zero), got in zip(grid, all_flags(logits, targets, weights)):
        shape = expected_shape(time_avg, batch_avg)
        assert tuple(got.shape) == shape
        assert_loss(got, np.full(shape, 0.0 if zero else EXPECTED))


# loss_test.py::test_sequence_loss_class (2 x 2 flags).
@pytest.mark.backend_neutral
@pytest.mark.parametrize("average_across_batch", [True, False])
@pytest.mark.parametrize("average_across_timesteps", [True, False])
def test_sequence_loss_class(average_across_timesteps, average_across_batch):
    logits, targets, weights = data()
    loss = s2s.SequenceLoss(average_across_timesteps=average_across_timesteps,
                            average_across_batch=average_across_batch,
                            sum_over_timesteps=False, sum_over_batch=False)
    got = loss(targets, logits, weights)
    shape = expected_shape(average_across_timesteps, average_across_batch)
    assert tuple(got.shape) == shape
    assert_loss(got, np.full(shape, EXPECTED))


def _summed(weights, sum_over_timesteps, sum_over_batch):
    logits, targets, _ = data()
    loss = s2s.SequenceLoss(average_across_timesteps=False, average_across_batch=False,
                            sum_over_timesteps=sum_over_timesteps, sum_over_batch=sum_over_batch)
    return loss(targets, logits, weights)


# loss_test.py::test_sum_reduction.
@pytest.mark.backend_neutral
def test_sum_reduction():
    weights = data()[2]
    assert_loss(_summed(weights, True, True), EXPECTED)
    assert_loss(_summed(weights, False, True), np.full(TIME, EXPECTED))
    assert_loss(_summed(weights, True, False), np.full(BATCH, EXPECTED))
    assert_loss(_summed(weights, False, False), np.full((BATCH, TIME), EXPECTED))


# loss_test.py::test_weighted_sum_reduction: the last step weighs 0; sums divide by the
# number of non-zero weights, so the per-token loss is unchanged where any weight is set.
@pytest.mark.backend_neutral
def test_weighted_sum_reduction():
    weights = data()[2]
    weights[:, -1] = 0.0
    assert_loss(_summed(weights, True, True), EXPECTED)
    per_step = np.full(TIME, EXPECTED)
    per_step[-1] = 0.0
    assert_loss(_summed(weights, False, True), per_step)
    assert_loss(_summed(weights, True, False), np.full(BATCH, EXPECTED))
    total = np.full((BATCH, TIME), EXPECTED)
    total[:, -1] = 0.0
    assert_loss(_summed(weights, False, False), total)


# loss_test.py::test_ambiguous_order.
@pytest.mark.backend_neutral
def test_ambiguous_order():
    logits, targets, weights = data()
    loss = s2s.SequenceLoss(average_across_timesteps=False, average_across_batch=True,
                            sum_over_timesteps=True, sum_over_batch=False)
    with pytest.raises(ValueError, match="because of ambiguous order"):
        loss(targets, logits, weights)


# loss_test.py::test_keras_compatibility: a model that always outputs the same logits,
# trained one step with SequenceLoss, one-hot targets and per-token sample weights.
@pytest.mark.backend_neutral
@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
def test_keras_compatibility():
    logits, targets, weights = data()
    one_hot = np.eye(CLASSES, dtype="float32")[targets]
    row = ops.convert_to_tensor(logits[:1])

    def constant_logits(x):
        return ops.tile(row, (ops.shape(x)[0], 1, 1))

    inputs = keras.Input((TIME,))
    outputs = keras.layers.Lambda(constant_logits, output_shape=(TIME, CLASSES))(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=s2s.SequenceLoss())
    history = model.fit(np.ones((BATCH, TIME), "float32"), one_hot, sample_weight=weights,
                        batch_size=BATCH, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], EXPECTED, rtol=1e-6, atol=1e-6)
