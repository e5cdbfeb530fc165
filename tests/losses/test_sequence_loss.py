"""Tests for seqzoo.losses.sequence_loss and SequenceLoss."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.losses import SequenceLoss, sequence_loss
from tests.helpers import gradient

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

B, T, V = 2, 3, 4


def np_log_softmax(logits):
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_crossent(logits, targets, label_smoothing=0.0):
    """Per-token cross-entropy from an explicit (smoothed) one-hot target."""
    num_classes = logits.shape[-1]
    q = np.eye(num_classes)[targets]
    q = q * (1.0 - label_smoothing) + label_smoothing / num_classes
    return -(q * np_log_softmax(logits.astype(np.float64))).sum(-1)


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(B, T, V)).astype("float32")
    targets = np.array([[1, 2, 3], [0, 3, 1]], dtype="int32")
    # Fractional weights make "divide by the weight sum" (average_*) and
    # "divide by the non-zero count" (sum_over_*) give different answers.
    weights = np.array([[1.0, 0.5, 0.0], [2.0, 1.0, 0.0]], dtype="float32")
    return logits, targets, weights


def _expected(mode, ce, w):
    wce = ce * w
    nz = (w != 0).astype(np.float64)
    return {
        "avg_all": wce.sum() / w.sum(),
        "sum_all": wce.sum() / nz.sum(),
        "avg_time": wce.sum(1) / w.sum(1),
        "sum_time": wce.sum(1) / nz.sum(1),
        "none": wce,
    }[mode]


MODES = {
    "avg_all": dict(),
    "sum_all": dict(
        average_across_timesteps=False,
        average_across_batch=False,
        sum_over_timesteps=True,
        sum_over_batch=True,
    ),
    "avg_time": dict(average_across_batch=False),
    "sum_time": dict(
        average_across_timesteps=False,
        average_across_batch=False,
        sum_over_timesteps=True,
    ),
    "none": dict(average_across_timesteps=False, average_across_batch=False),
}
SHAPES = {
    "avg_all": (),
    "sum_all": (),
    "avg_time": (B,),
    "sum_time": (B,),
    "none": (B, T),
}


def test_uniform_logits_give_log_vocab_size():
    logits = np.zeros((B, T, V), "float32")
    targets = np.ones((B, T), "int32")
    loss = sequence_loss(logits, targets, np.ones((B, T), "float32"))
    np.testing.assert_allclose(float(loss), np.log(4.0), rtol=1e-6)


def test_hand_computed_two_class_value():
    # p = softmax([0, log 3]) = [1/4, 3/4]; tokens target 1, 0, 1 with
    # weights 1, 1, 0: mean of -log(3/4) and -log(1/4).
    logits = np.array([[[0.0, np.log(3.0)]] * 3], "float32")
    targets = np.array([[1, 0, 1]], "int32")
    weights = np.array([[1.0, 1.0, 0.0]], "float32")
    loss = sequence_loss(logits, targets, weights)
    expected = (-np.log(0.75) - np.log(0.25)) / 2
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_reduction_mode_matches_numpy(case, mode):
    logits, targets, weights = case
    loss = ops.convert_to_numpy(
        sequence_loss(logits, targets, weights, **MODES[mode])
    )
    assert loss.shape == SHAPES[mode]
    expected = _expected(mode, np_crossent(logits, targets), weights)
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_batch_reductions_give_per_step_values(case):
    logits, targets, _ = case
    weights = np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0]], "float32")
    ce = np_crossent(logits, targets) * weights
    avg = ops.convert_to_numpy(
        sequence_loss(logits, targets, weights, average_across_timesteps=False)
    )
    summed = ops.convert_to_numpy(
        sequence_loss(
            logits,
            targets,
            weights,
            average_across_timesteps=False,
            average_across_batch=False,
            sum_over_batch=True,
        )
    )
    assert avg.shape == summed.shape == (T,)
    # Last step has no weight at all: 0, not NaN.
    np.testing.assert_allclose(
        avg, [ce[:, 0].sum() / 3.0, ce[0, 1] / 0.5, 0.0], rtol=1e-5
    )
    np.testing.assert_allclose(summed, [ce[:, 0].sum() / 2.0, ce[0, 1], 0.0], rtol=1e-5)


def test_average_wins_over_sum_on_the_other_axis_like_tfa(case):
    logits, targets, weights = case
    by_row = sequence_loss(logits, targets, weights, average_across_batch=False)
    mixed = sequence_loss(
        logits, targets, weights, average_across_batch=False, sum_over_batch=True
    )
    assert tuple(mixed.shape) == (B,)
    np.testing.assert_allclose(
        ops.convert_to_numpy(mixed), ops.convert_to_numpy(by_row)
    )
    mixed_t = sequence_loss(
        logits,
        targets,
        np.ones((B, T), "float32"),
        average_across_timesteps=False,
        sum_over_timesteps=True,
    )
    assert tuple(mixed_t.shape) == (T,)


def test_default_weights_are_ones(case):
    logits, targets, _ = case
    loss = sequence_loss(logits, targets)
    np.testing.assert_allclose(
        float(loss), np_crossent(logits, targets).mean(), rtol=1e-5
    )


def test_zero_weights_mask_tokens_out(case):
    logits, targets, _ = case
    mask = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    changed = logits.copy()
    changed[0, 2] += 100.0  # masked tokens may hold anything
    changed[1, 1:] = -50.0
    a = sequence_loss(logits, targets, mask)
    b = sequence_loss(changed, targets, mask)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
    ce = np_crossent(logits, targets)
    np.testing.assert_allclose(float(a), (ce * mask).sum() / 3.0, rtol=1e-5)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_fully_padded_row_gives_no_nan(case, mode):
    logits, targets, _ = case
    weights = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], "float32")
    loss = ops.convert_to_numpy(
        sequence_loss(logits, targets, weights, **MODES[mode])
    )
    assert np.all(np.isfinite(loss))
    if mode in ("avg_time", "sum_time"):
        assert loss[1] == 0.0
        np.testing.assert_allclose(
            loss[0], np_crossent(logits, targets)[0].mean(), rtol=1e-5
        )


def test_all_zero_weights_give_zero_loss_and_finite_gradient(case):
    logits, targets, _ = case
    zeros = np.zeros((B, T), "float32")
    assert float(sequence_loss(logits, targets, zeros)) == 0.0
    (grad,) = gradient(lambda x: sequence_loss(x, targets, zeros), logits)
    assert np.all(np.isfinite(grad)) and not np.any(grad)


def test_label_smoothing_matches_smoothed_one_hot(case):
    logits, targets, weights = case
    loss = sequence_loss(logits, targets, weights, label_smoothing=0.2)
    ce = np_crossent(logits, targets, label_smoothing=0.2)
    np.testing.assert_allclose(
        float(loss), (ce * weights).sum() / weights.sum(), rtol=1e-5
    )
    # Same as keras' categorical crossentropy on one-hot targets.
    keras_ce = keras.losses.categorical_crossentropy(
        np.eye(V, dtype="float32")[targets], logits, from_logits=True,
        label_smoothing=0.2,
    )
    np.testing.assert_allclose(ops.convert_to_numpy(keras_ce), ce, rtol=1e-5)


def test_probabilities_with_from_logits_false(case):
    logits, targets, weights = case
    probs = np.exp(np_log_softmax(logits)).astype("float32")
    a = sequence_loss(probs, targets, weights, from_logits=False)
    b = sequence_loss(logits, targets, weights)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-5)


def test_softmax_loss_function_gets_unflattened_tensors(case):
    logits, targets, weights = case
    seen = {}

    def fn(labels, logits):
        seen["shapes"] = (tuple(labels.shape), tuple(logits.shape))
        return ops.cast(labels, "float32")  # "loss" = the target id

    loss = sequence_loss(logits, targets, weights, softmax_loss_function=fn)
    assert seen["shapes"] == ((B, T), (B, T, V))
    np.testing.assert_allclose(
        float(loss), (targets * weights).sum() / weights.sum(), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(logits=np.zeros((B, V))), "logits.shape"),
        (dict(targets=np.zeros((B, T, 1), "int32")), "targets.shape"),
        (dict(targets=np.zeros((B + 1, T), "int32")), "targets.shape"),
        (dict(weights=np.zeros((B * T,))), "weights.shape"),
        (dict(weights=np.zeros((B, T + 1))), "weights.shape"),
        (dict(sum_over_timesteps=True), "sum_over_timesteps=True"),
        (dict(sum_over_batch=True), "sum_over_batch=True"),
        (dict(label_smoothing=1.5), "label_smoothing=1.5"),
        (
            dict(
                label_smoothing=0.1,
                softmax_loss_function=lambda labels, logits: labels,
            ),
            "label_smoothing=0.1",
        ),
    ],
)
def test_bad_arguments_raise(case, kwargs, match):
    logits, targets, weights = case
    args = dict(logits=logits, targets=targets, weights=weights)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sequence_loss(**args)


# --- padded vs unpadded ---------------------------------------------------


def _pad_columns(logits, targets, extra, seed=1):
    rng = np.random.default_rng(seed)
    more_logits = rng.normal(scale=5.0, size=(B, extra, V)).astype("float32")
    return (
        np.concatenate([logits, more_logits], 1),
        np.concatenate([targets, np.zeros((B, extra), "int32")], 1),
    )


@pytest.mark.parametrize("mode", ["avg_all", "sum_all", "avg_time", "sum_time"])
def test_sequence_loss_ignores_extra_padding_columns(mode):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(B, T, V)).astype("float32")
    targets = np.array([[1, 2, 3], [2, 3, 0]], "int32")
    padded_logits, padded_targets = _pad_columns(logits, targets, extra=4)
    a = sequence_loss(
        logits, targets, (targets != 0).astype("float32"), **MODES[mode]
    )
    b = sequence_loss(
        padded_logits,
        padded_targets,
        (padded_targets != 0).astype("float32"),
        **MODES[mode],
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-6
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_sequence_loss_object_ignores_extra_padding_columns(label_smoothing):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(B, T, V)).astype("float32")
    targets = np.array([[1, 2, 3], [2, 3, 0]], "int32")
    padded_logits, padded_targets = _pad_columns(logits, targets, extra=3)
    loss = SequenceLoss(label_smoothing=label_smoothing)
    np.testing.assert_allclose(
        float(loss(targets, logits)),
        float(loss(padded_targets, padded_logits)),
        rtol=1e-6,
    )


# --- SequenceLoss -----------------------------------------------------------


@pytest.fixture
def padded_batch():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 4, 5)).astype("float32")
    targets = np.array([[1, 2, 3, 4], [4, 1, 0, 0], [2, 0, 0, 0]], "int32")
    return logits, targets


def test_sequence_loss_object_is_token_mean(padded_batch):
    logits, targets = padded_batch
    ce = np_crossent(logits, targets)
    mask = targets != 0
    expected = ce[mask].mean()  # 7 real tokens, not 12 and not 3 rows
    np.testing.assert_allclose(
        float(SequenceLoss()(targets, logits)), expected, rtol=1e-5
    )


def test_sequence_loss_object_combines_sample_weight_with_padding(padded_batch):
    logits, targets = padded_batch
    ce = np_crossent(logits, targets)
    w = (targets != 0) * np.array([[1.0], [3.0], [0.5]])
    expected = (ce * w).sum() / w.sum()
    loss = SequenceLoss()(targets, logits, sample_weight=np.array([1.0, 3.0, 0.5]))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    token_w = np.full(targets.shape, 2.0, "float32")
    token_w[0, 0] = 0.0
    w2 = (targets != 0) * token_w
    loss2 = SequenceLoss()(targets, logits, sample_weight=token_w)
    np.testing.assert_allclose(float(loss2), (ce * w2).sum() / w2.sum(), rtol=1e-5)


def test_sequence_loss_object_pad_id_none_counts_every_token(padded_batch):
    logits, targets = padded_batch
    loss = SequenceLoss(pad_id=None)(targets, logits)
    np.testing.assert_allclose(
        float(loss), np_crossent(logits, targets).mean(), rtol=1e-5
    )


def test_sequence_loss_object_per_sequence_mode(padded_batch):
    logits, targets = padded_batch
    loss = SequenceLoss(average_across_batch=False)(targets, logits)
    ce = np_crossent(logits, targets) * (targets != 0)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss), ce.sum(1) / (targets != 0).sum(1), rtol=1e-5
    )


def _identity_model(shape):
    inputs = keras.Input(shape=shape)
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def test_evaluate_reports_the_token_mean(padded_batch):
    logits, targets = padded_batch
    model = _identity_model(logits.shape[1:])
    model.compile(loss=SequenceLoss())
    reported = model.evaluate(logits, targets, batch_size=3, verbose=0)
    ce = np_crossent(logits, targets)
    token_mean = ce[targets != 0].mean()
    np.testing.assert_allclose(reported, token_mean, rtol=1e-5)
    # Keras' default reduction would have divided by all 12 positions.
    assert not np.isclose(reported, (ce * (targets != 0)).sum() / targets.size)


def test_fit_reports_the_token_mean_with_sample_weight(padded_batch):
    logits, targets = padded_batch
    inputs = keras.Input(shape=logits.shape[1:])
    dense = keras.layers.Dense(logits.shape[-1], kernel_initializer="identity")
    model = keras.Model(inputs, dense(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=SequenceLoss())
    sw = np.array([1.0, 2.0, 0.0], "float32")
    history = model.fit(
        logits, targets, sample_weight=sw, batch_size=3, epochs=1, verbose=0
    )
    w = (targets != 0) * sw[:, None]
    expected = (np_crossent(logits, targets) * w).sum() / w.sum()
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


def test_sequence_loss_object_serialization_round_trip(padded_batch):
    logits, targets = padded_batch
    loss = SequenceLoss(
        label_smoothing=0.1, pad_id=2, average_across_batch=False, name="seq"
    )
    config = keras.losses.serialize(loss)
    restored = keras.losses.deserialize(config)
    assert isinstance(restored, SequenceLoss)
    assert restored.get_config() == loss.get_config()
    assert restored.pad_id == 2 and restored.label_smoothing == 0.1
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(targets, logits)),
        ops.convert_to_numpy(loss(targets, logits)),
    )
    again = SequenceLoss.from_config(loss.get_config())
    assert again.get_config() == loss.get_config()


def test_compiled_model_with_sequence_loss_saves_and_loads(tmp_path, padded_batch):
    logits, targets = padded_batch
    model = _identity_model(logits.shape[1:])
    model.compile(loss=SequenceLoss(label_smoothing=0.1))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, SequenceLoss)
    assert loaded.loss.label_smoothing == 0.1
    np.testing.assert_allclose(
        loaded.evaluate(logits, targets, verbose=0),
        model.evaluate(logits, targets, verbose=0),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sum_over_timesteps=True), "sum_over_timesteps=True"),
        (dict(sum_over_batch=True), "sum_over_batch=True"),
        (dict(label_smoothing=-0.1), "label_smoothing=-0.1"),
        (dict(pad_id="0"), "pad_id='0'"),
    ],
)
def test_sequence_loss_object_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SequenceLoss(**kwargs)


def test_keras_mask_of_predictions_is_honoured():
    # A Masking layer marks the last step of row 1 as padding even though
    # its target is not the pad id; the loss drops it, as keras losses do.
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(B, T, V)).astype("float32")
    logits[1, 2] = 0.0
    targets = np.array([[1, 2, 3], [1, 2, 3]], "int32")
    inputs = keras.Input(shape=(T, V))
    outputs = keras.layers.Identity()(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(loss=SequenceLoss())
    reported = model.evaluate(logits, targets, verbose=0)
    mask = np.array([[1, 1, 1], [1, 1, 0]], bool)
    np.testing.assert_allclose(
        reported, np_crossent(logits, targets)[mask].mean(), rtol=1e-5
    )
