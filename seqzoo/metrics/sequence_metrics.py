"""Masked sequence metrics on `keras.ops`: token accuracy, exact match, perplexity.

Targets are `[B, T]` ids right padded with `pad_id`; predictions are either
logits/probabilities `[B, T, V]` (their argmax is taken) or ids `[B, T]`.
Padded target positions never count, whatever is predicted there.
"""

import keras
from keras import ops

from seqzoo.errors import ArgumentError
from seqzoo.text.specials import PAD_ID


def _predicted_ids(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) == len(y_true.shape) + 1:
        y_pred = ops.argmax(y_pred, axis=-1)
    elif len(y_pred.shape) != len(y_true.shape):
        raise ArgumentError(
            "Expected y_pred of shape [B, T, V] (scores) or [B, T] (ids) for "
            f"y_true of shape {tuple(y_true.shape)}. Received: y_pred.shape="
            f"{tuple(y_pred.shape)}"
        )
    return ops.cast(y_pred, "int32")


def _mask(y_true, pad_id, sample_weight=None):
    mask = ops.cast(ops.not_equal(y_true, pad_id), "float32")
    if sample_weight is not None:
        sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
        if len(sample_weight.shape) == 1:
            sample_weight = ops.expand_dims(sample_weight, -1)
        mask = mask * sample_weight
    return mask


def token_correct_and_count(y_true, y_pred, pad_id=PAD_ID, sample_weight=None):
    """Sums of correct real tokens and of real tokens (both float32 scalars)."""
    y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
    correct = ops.cast(ops.equal(y_true, _predicted_ids(y_true, y_pred)), "float32")
    mask = _mask(y_true, pad_id, sample_weight)
    return ops.sum(correct * mask), ops.sum(mask)


def sequence_matches(y_true, y_pred, pad_id=PAD_ID):
    """Per-sequence exact match: every real target token predicted right.

    Args:
        y_true: `[B, T]` target ids, right padded.
        y_pred: `[B, T, V]` scores or `[B, T]` ids.
        pad_id: the padding id.

    Returns:
        A `[B]` float32 tensor of 1.0 (all real tokens right) or 0.0. A
        fully padded target row counts as a match.
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
    wrong = ops.logical_and(
        ops.not_equal(y_true, _predicted_ids(y_true, y_pred)), ops.not_equal(y_true, pad_id)
    )
    return 1.0 - ops.cast(ops.any(wrong, axis=-1), "float32")


def masked_token_accuracy(y_true, y_pred, pad_id=PAD_ID):
    """Share of real (non-pad) target tokens predicted right, a scalar."""
    correct, count = token_correct_and_count(y_true, y_pred, pad_id)
    return correct / ops.maximum(count, 1.0)


def sequence_exact_match(y_true, y_pred, pad_id=PAD_ID):
    """Share of sequences whose real target tokens are all predicted right."""
    return ops.mean(sequence_matches(y_true, y_pred, pad_id))


def token_nll_sum_and_count(y_true, logits, pad_id=PAD_ID, from_logits=True, sample_weight=None):
    """Summed negative log-likelihood of real tokens and their count."""
    y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
    nll = ops.sparse_categorical_crossentropy(
        y_true, ops.cast(logits, "float32"), from_logits=from_logits
    )
    mask = _mask(y_true, pad_id, sample_weight)
    return ops.sum(nll * mask), ops.sum(mask)


def perplexity(y_true, logits, pad_id=PAD_ID, from_logits=True):
    """`exp` of the mean negative log-likelihood over real target tokens."""
    total, count = token_nll_sum_and_count(y_true, logits, pad_id, from_logits)
    return ops.exp(total / ops.maximum(count, 1.0))


class _RatioMetric(keras.metrics.Metric):
    """Accumulates a numerator and a denominator across batches."""

    def __init__(self, pad_id=PAD_ID, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.pad_id = pad_id
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _accumulate(self, total, count):
        self.total.assign_add(ops.cast(total, self.dtype))
        self.count.assign_add(ops.cast(count, self.dtype))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package="seqzoo")
class MaskedTokenAccuracy(_RatioMetric):
    """Token accuracy over real (non-pad) target positions, pooled over batches.

    Args:
        pad_id: the padding id of the targets.
        name: the metric's name.
    """

    def __init__(self, pad_id=PAD_ID, name="token_accuracy", dtype="float32"):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        self._accumulate(*token_correct_and_count(y_true, y_pred, self.pad_id, sample_weight))


@keras.saving.register_keras_serializable(package="seqzoo")
class SequenceExactMatch(_RatioMetric):
    """Share of sequences with every real target token right, pooled over batches.

    Args:
        pad_id: the padding id of the targets.
        name: the metric's name.
    """

    def __init__(self, pad_id=PAD_ID, name="exact_match", dtype="float32"):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        matches = sequence_matches(y_true, y_pred, self.pad_id)
        if sample_weight is not None:
            weights = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            self._accumulate(ops.sum(matches * weights), ops.sum(weights))
        else:
            self._accumulate(ops.sum(matches), ops.cast(ops.shape(matches)[0], "float32"))


@keras.saving.register_keras_serializable(package="seqzoo")
class Perplexity(_RatioMetric):
    """Perplexity over real target tokens: `exp(total NLL / token count)`.

    Pooled over batches (the NLL and the counts are summed, then divided),
    so it does not depend on how the data was split into batches.

    Args:
        pad_id: the padding id of the targets.
        from_logits: whether predictions are logits (else probabilities).
        name: the metric's name.
    """

    def __init__(self, pad_id=PAD_ID, from_logits=True, name="perplexity", dtype="float32"):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        self._accumulate(
            *token_nll_sum_and_count(y_true, y_pred, self.pad_id, self.from_logits, sample_weight)
        )

    def result(self):
        return ops.exp(super().result())

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}
