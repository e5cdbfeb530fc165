import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.metrics import (
    MaskedTokenAccuracy,
    Perplexity,
    SequenceExactMatch,
    masked_token_accuracy,
    perplexity,
    sequence_exact_match,
)

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

# Two sequences: [5, 6, 3] and [7, 3] + pad.
Y_TRUE = np.array([[5, 6, 3], [7, 3, 0]])
# Predicted ids: row 0 right everywhere, row 1 wrong on its first token and
# "wrong" on the padded position (which must not count).
Y_PRED_IDS = np.array([[5, 6, 3], [4, 3, 9]])


def _one_hot_logits(ids, vocab=10):
    return np.eye(vocab, dtype="float32")[ids] * 5.0


def _value(x):
    return float(ops.convert_to_numpy(x))


def test_token_accuracy_counts_real_tokens_only():
    # 4 of 5 real tokens right.
    assert _value(masked_token_accuracy(Y_TRUE, Y_PRED_IDS)) == pytest.approx(0.8)
    assert _value(masked_token_accuracy(Y_TRUE, _one_hot_logits(Y_PRED_IDS))) == pytest.approx(0.8)


def test_exact_match_ignores_padded_positions():
    assert _value(sequence_exact_match(Y_TRUE, Y_PRED_IDS)) == pytest.approx(0.5)
    fixed = Y_PRED_IDS.copy()
    fixed[1, 0] = 7  # pad position still holds 9
    assert _value(sequence_exact_match(Y_TRUE, fixed)) == pytest.approx(1.0)


def test_perplexity_is_exp_of_mean_token_nll():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 10)).astype("float32")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = [-logp[b, t, Y_TRUE[b, t]] for b in range(2) for t in range(3) if Y_TRUE[b, t]]
    assert _value(perplexity(Y_TRUE, logits)) == pytest.approx(np.exp(np.mean(nll)), rel=1e-5)


def test_metrics_do_not_change_when_padding_is_appended():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 10)).astype("float32")
    y_pad = np.pad(Y_TRUE, ((0, 0), (0, 4)))
    logits_pad = np.concatenate([logits, rng.normal(size=(2, 4, 10)).astype("float32")], 1)
    for fn in (masked_token_accuracy, sequence_exact_match, perplexity):
        assert _value(fn(Y_TRUE, logits)) == pytest.approx(_value(fn(y_pad, logits_pad)), rel=1e-6)


def test_metric_objects_pool_counts_over_batches():
    # Batch 1: 1 of 1 token right; batch 2: 0 of 3 tokens right.
    # Pooled accuracy is 1/4, not the mean of batch accuracies (1/2).
    acc, em = MaskedTokenAccuracy(), SequenceExactMatch()
    for y, p in ((np.array([[4, 0, 0]]), np.array([[4, 1, 1]])),
                 (np.array([[4, 5, 6]]), np.array([[1, 1, 1]]))):
        acc.update_state(y, p)
        em.update_state(y, p)
    assert _value(acc.result()) == pytest.approx(0.25)
    assert _value(em.result()) == pytest.approx(0.5)
    acc.reset_state()
    assert _value(acc.result()) == 0.0


def test_perplexity_metric_pools_nll():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 3, 10)).astype("float32")
    metric = Perplexity()
    metric.update_state(Y_TRUE[:1], logits[:1])
    metric.update_state(Y_TRUE[1:], logits[1:])
    assert _value(metric.result()) == pytest.approx(_value(perplexity(Y_TRUE, logits)), rel=1e-5)


def test_metrics_serialize_and_work_in_compile():
    metric = MaskedTokenAccuracy(pad_id=0)
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, MaskedTokenAccuracy) and restored.pad_id == 0

    inputs = keras.Input((3,), dtype="int32")
    logits = keras.layers.Embedding(10, 10)(inputs)
    model = keras.Model(inputs, logits)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[MaskedTokenAccuracy(), SequenceExactMatch(), Perplexity()],
    )
    results = model.evaluate(Y_TRUE, Y_TRUE, verbose=0, return_dict=True)
    assert set(results) >= {"token_accuracy", "exact_match", "perplexity"}
    assert 0.0 <= results["token_accuracy"] <= 1.0
    assert results["perplexity"] >= 1.0


def test_rank_mismatch_is_reported():
    with pytest.raises(ValueError, match="y_pred"):
        masked_token_accuracy(Y_TRUE, np.zeros((2,)))
