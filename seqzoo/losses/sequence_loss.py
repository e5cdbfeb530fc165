"""Weighted cross-entropy over a sequence of logits.

Longer than 400 lines: the function form (TFA's `sequence_loss` with its
four averaging flags, each checked and documented) and the Keras `Loss`
that wraps it share their checks and masking helpers; more than half of the
file is their docstrings.

`sequence_loss` reproduces `tfa.seq2seq.sequence_loss` (TensorFlow Addons
reached end of life and does not import next to Keras 3) on `keras.ops`, and
adds label smoothing and probability inputs. `SequenceLoss` wraps it for
`model.compile`: by default it is the mean cross-entropy over the real
(non-pad) tokens of a batch.
"""

import keras
import numpy as np
from keras import ops

from seqzoo.errors import ArgumentError
from seqzoo.text.specials import PAD_ID

_HALF_DTYPES = ("float16", "bfloat16")


def _as_float_logits(x):
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in _HALF_DTYPES or "float" not in dtype:
        # Softmax statistics in half precision lose too much; losses are
        # reported in float32 under mixed precision anyway.
        x = ops.cast(x, "float32")
    return x


def safe_divide(numerator, denominator):
    """`numerator / denominator`, and 0 where `denominator` is 0.

    Unlike a plain `where(den == 0, 0, num / den)`, the division never sees a
    zero, so the gradient stays finite too.
    """
    is_zero = ops.equal(denominator, 0)
    safe = ops.where(is_zero, ops.ones_like(denominator), denominator)
    return ops.where(is_zero, ops.zeros_like(numerator), numerator / safe)


def token_crossentropy(targets, logits, label_smoothing=0.0, from_logits=True):
    """Per-token softmax cross-entropy with sparse integer targets.

    With `label_smoothing=eps` the target distribution is the one-hot vector
    scaled by `1 - eps` plus `eps / V` on every class, as in
    `keras.losses.CategoricalCrossentropy`; the one-hot tensor is never built:
    the loss is `(1 - eps) * nll + eps * mean_k(-log p_k)`.

    Args:
        targets: int tensor of shape `[...]`, the true class of each token.
        logits: float tensor of shape `[..., V]`: unnormalized scores when
            `from_logits=True`, else probabilities.
        label_smoothing: float in `[0, 1]`.
        from_logits: whether `logits` are unnormalized scores.

    Returns:
        Float tensor of shape `[...]`, the loss of each token.
    """
    logits = _as_float_logits(logits)
    targets = ops.cast(targets, "int32")
    if from_logits:
        log_probs = ops.log_softmax(logits, axis=-1)
    else:
        # Same as keras' categorical crossentropy on probabilities.
        probs = logits / ops.sum(logits, axis=-1, keepdims=True)
        epsilon = keras.config.epsilon()
        log_probs = ops.log(ops.clip(probs, epsilon, 1.0 - epsilon))
    nll = -ops.squeeze(
        ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1),
        axis=-1,
    )
    if label_smoothing:
        smooth = -ops.mean(log_probs, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll


def _check_flags(
    average_across_timesteps,
    average_across_batch,
    sum_over_timesteps,
    sum_over_batch,
):
    if average_across_timesteps and sum_over_timesteps:
        raise ArgumentError(
            "`average_across_timesteps` and `sum_over_timesteps` cannot both "
            "be True. Received: average_across_timesteps="
            f"{average_across_timesteps}, sum_over_timesteps="
            f"{sum_over_timesteps}"
        )
    if average_across_batch and sum_over_batch:
        raise ArgumentError(
            "`average_across_batch` and `sum_over_batch` cannot both be True. "
            f"Received: average_across_batch={average_across_batch}, "
            f"sum_over_batch={sum_over_batch}"
        )


def _check_smoothing(label_smoothing):
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ArgumentError(
            "`label_smoothing` must be in [0, 1]. "
            f"Received: label_smoothing={label_smoothing}"
        )


def _check_same_leading_dims(name, shape, ref_shape):
    for axis, (a, b) in enumerate(zip(shape[:2], ref_shape[:2])):
        if a is not None and b is not None and a != b:
            raise ArgumentError(
                f"`{name}` must have the shape `[batch_size, sequence_length]`"
                f" of `logits`, {tuple(ref_shape[:2])}; axis {axis} differs. "
                f"Received: {name}.shape={tuple(shape)}"
            )


def sequence_loss(
    logits,
    targets,
    weights=None,
    average_across_timesteps=True,
    average_across_batch=True,
    sum_over_timesteps=False,
    sum_over_batch=False,
    label_smoothing=0.0,
    softmax_loss_function=None,
    from_logits=True,
):
    """Weighted cross-entropy loss for a sequence of logits.

    Same semantics as `tfa.seq2seq.sequence_loss`. The cross-entropy of each
    target, of shape `[batch_size, sequence_length]`, is multiplied by
    `weights` and reduced over the axes the flags name:

    - `average_across_timesteps` / `average_across_batch`: sum over the axis
      and divide by the sum of the weights along it.
    - `sum_over_timesteps` / `sum_over_batch`: sum over the axis and divide by
      the number of non-zero weights along it.

    | flags set (others False)                           | result shape |
    | -------------------------------------------------- | ------------ |
    | `average_across_timesteps`, `average_across_batch` | `[]`         |
    | `sum_over_timesteps`, `sum_over_batch`             | `[]`         |
    | `average_across_timesteps` or `sum_over_timesteps` | `[B]`        |
    | `average_across_batch` or `sum_over_batch`         | `[T]`        |
    | none                                               | `[B, T]`     |

    Like tfa, when an `average_across_*` flag is mixed with the `sum_over_*`
    flag of the other axis, the average wins and the `sum_over_*` flag is
    ignored: `average_across_timesteps=True, sum_over_batch=True` gives `[B]`
    and `average_across_batch=True, sum_over_timesteps=True` gives `[T]`.

    Every division is guarded: where the weights of a reduced slice are all
    zero (a fully padded row) the result is 0, not NaN.

    Args:
        logits: float tensor of shape `[batch_size, sequence_length, V]`,
            the scores of every class at each step (probabilities when
            `from_logits=False`).
        targets: int tensor of shape `[batch_size, sequence_length]`, the
            true class at each step.
        weights: float tensor of shape `[batch_size, sequence_length]`, the
            weight of each prediction; use the padding mask (1 for real
            tokens, 0 for padding). Defaults to all ones.
        average_across_timesteps: average over the time axis (see above).
        average_across_batch: average over the batch axis.
        sum_over_timesteps: sum over the time axis and divide by the number of
            non-zero weights.
        sum_over_batch: sum over the batch axis and divide by the number of
            non-zero weights.
        label_smoothing: float in `[0, 1]`; the true class gets
            `1 - label_smoothing + label_smoothing / V` and every other class
            `label_smoothing / V`, as in keras' categorical crossentropy.
        softmax_loss_function: optional callable
            `f(labels=targets, logits=logits)` returning the per-token loss,
            shape `[batch_size, sequence_length]` (or `[B * T]`), used
            instead of the softmax cross-entropy. It receives `logits`
            unchanged, so it may be a sampled softmax that takes hidden
            states of shape `[B, T, H]`.
        from_logits: whether `logits` are unnormalized scores (default) or
            probabilities.

    Returns:
        Float tensor of shape `[]`, `[batch_size]`, `[sequence_length]` or
        `[batch_size, sequence_length]` depending on the flags. By default a
        scalar: the weighted mean cross-entropy per token.

    Raises:
        ValueError: if `logits` is not rank 3, `targets` or `weights` not
            rank 2 or not matching `logits`, if an `average_across_*` and the
            `sum_over_*` flag of the same axis are both set, or if
            `label_smoothing` is out of range or combined with
            `softmax_loss_function`.
    """
    _check_flags(
        average_across_timesteps,
        average_across_batch,
        sum_over_timesteps,
        sum_over_batch,
    )
    _check_smoothing(label_smoothing)
    if softmax_loss_function is not None:
        if label_smoothing:
            raise ArgumentError(
                "`label_smoothing` applies to the built-in cross-entropy "
                "only; it cannot be combined with `softmax_loss_function`. "
                f"Received: label_smoothing={label_smoothing}"
            )
        if not from_logits:
            raise ArgumentError(
                "`from_logits=False` applies to the built-in cross-entropy "
                "only; it cannot be combined with `softmax_loss_function`. "
                f"Received: from_logits={from_logits}"
            )
    logits = ops.convert_to_tensor(logits)
    targets = ops.convert_to_tensor(targets)
    if len(logits.shape) != 3:
        raise ArgumentError(
            "`logits` must have the shape "
            "`[batch_size, sequence_length, num_classes]`. "
            f"Received: logits.shape={tuple(logits.shape)}"
        )
    if len(targets.shape) != 2:
        raise ArgumentError(
            "`targets` must have the shape `[batch_size, sequence_length]`. "
            f"Received: targets.shape={tuple(targets.shape)}"
        )
    _check_same_leading_dims("targets", targets.shape, logits.shape)
    if weights is not None:
        weights = ops.convert_to_tensor(weights)
        if len(weights.shape) != 2:
            raise ArgumentError(
                "`weights` must have the shape "
                "`[batch_size, sequence_length]`. "
                f"Received: weights.shape={tuple(weights.shape)}"
            )
        _check_same_leading_dims("weights", weights.shape, logits.shape)

    if softmax_loss_function is None:
        crossent = token_crossentropy(
            targets, logits, label_smoothing, from_logits=from_logits
        )
    else:
        crossent = softmax_loss_function(labels=targets, logits=logits)
        crossent = ops.reshape(
            ops.convert_to_tensor(crossent), ops.shape(targets)
        )
    if weights is None:
        weights = ops.ones_like(crossent)
    else:
        weights = ops.cast(weights, crossent.dtype)
    crossent = crossent * weights

    if average_across_timesteps and average_across_batch:
        return safe_divide(ops.sum(crossent), ops.sum(weights))
    if sum_over_timesteps and sum_over_batch:
        return safe_divide(ops.sum(crossent), _count_nonzero(weights))
    if average_across_timesteps or average_across_batch:
        axis = 0 if average_across_batch else 1
        return safe_divide(
            ops.sum(crossent, axis=axis), ops.sum(weights, axis=axis)
        )
    if sum_over_timesteps or sum_over_batch:
        axis = 0 if sum_over_batch else 1
        return safe_divide(
            ops.sum(crossent, axis=axis), _count_nonzero(weights, axis=axis)
        )
    return crossent


def _count_nonzero(x, axis=None):
    return ops.sum(ops.cast(ops.not_equal(x, 0), x.dtype), axis=axis)


def _keras_mask(x):
    # Masks ride on tensors as `_keras_mask`; keras has no public getter.
    try:
        from keras.src.backend import get_keras_mask
    except ImportError:  # pragma: no cover - older or newer keras layouts
        return getattr(x, "_keras_mask", None)
    return get_keras_mask(x)


def _scale_for_distribution(loss):
    # What keras' own "sum_over_batch_size" reduction does: under
    # tf.distribute each replica's mean is divided by the number of replicas,
    # since the replicas' gradients are summed. A no-op elsewhere.
    try:
        from keras.src.losses.loss import scale_loss_for_distribution
    except ImportError:  # pragma: no cover - older or newer keras layouts
        return loss
    return scale_loss_for_distribution(loss)


@keras.saving.register_keras_serializable(package="seqzoo")
class SequenceLoss(keras.losses.Loss):
    """Masked token-level cross-entropy for `model.compile`.

    `y_true` holds the target ids, right padded with `pad_id`, and `y_pred`
    the logits. The weight of each token is `y_true != pad_id`, times the
    `sample_weight` given to `fit`/`evaluate` (per sequence `[B]` or per token
    `[B, T]`), times the keras mask of `y_pred` if the model propagates one.
    With the defaults the loss is the weighted mean over the real tokens of
    the batch: `sum(w * ce) / sum(w)`. Keras' own reduction is bypassed, so
    the value is not divided again by the batch size.

    The reduction flags mirror `sequence_loss`; with any of them off the loss
    is not a scalar and suits only direct calls, not `model.compile`.

    Args:
        from_logits: whether `y_pred` are logits (default) or probabilities.
        label_smoothing: float in `[0, 1]`, see `sequence_loss`.
        pad_id: the padding id of `y_true`, whose tokens get weight 0; `None`
            gives every token weight 1. Defaults to `PAD_ID` (0).
        average_across_timesteps: see `sequence_loss`. Defaults to `True`.
        average_across_batch: see `sequence_loss`. Defaults to `True`.
        sum_over_timesteps: see `sequence_loss`. Defaults to `False`.
        sum_over_batch: see `sequence_loss`. Defaults to `False`.
        softmax_loss_function: optional per-token loss
            `f(labels, logits) -> [B, T]`, see `sequence_loss`; it must be
            serializable by keras for `get_config` to round trip.
        name: name of the loss. Defaults to `"sequence_loss"`.
        dtype: dtype of the loss computation. Defaults to `floatx`.

    Call arguments:
        y_true: int tensor of shape `[batch_size, sequence_length]`.
        y_pred: float tensor of shape
            `[batch_size, sequence_length, num_classes]`.
        sample_weight: optional float tensor of shape `[batch_size]` or
            `[batch_size, sequence_length]`.

    Returns:
        The loss, a scalar with the default flags (else the shape
        `sequence_loss` gives).

    Example:

    ```python
    model.compile(optimizer="adam", loss=SequenceLoss(label_smoothing=0.1))
    ```
    """

    def __init__(
        self,
        from_logits=True,
        label_smoothing=0.0,
        pad_id=PAD_ID,
        average_across_timesteps=True,
        average_across_batch=True,
        sum_over_timesteps=False,
        sum_over_batch=False,
        softmax_loss_function=None,
        name="sequence_loss",
        dtype=None,
    ):
        _check_flags(
            average_across_timesteps,
            average_across_batch,
            sum_over_timesteps,
            sum_over_batch,
        )
        _check_smoothing(label_smoothing)
        if pad_id is not None and (
            isinstance(pad_id, bool) or not isinstance(pad_id, (int, np.integer))
        ):
            raise ArgumentError(
                f"`pad_id` must be an int or None. Received: pad_id={pad_id!r}"
            )
        super().__init__(name=name, reduction="none", dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.pad_id = None if pad_id is None else int(pad_id)
        self.average_across_timesteps = bool(average_across_timesteps)
        self.average_across_batch = bool(average_across_batch)
        self.sum_over_timesteps = bool(sum_over_timesteps)
        self.sum_over_batch = bool(sum_over_batch)
        self.softmax_loss_function = softmax_loss_function

    def _weights(self, y_true, y_pred, sample_weight):
        if self.pad_id is None:
            weights = ops.ones(ops.shape(y_true), dtype=self.dtype)
        else:
            weights = ops.cast(ops.not_equal(y_true, self.pad_id), self.dtype)
        if sample_weight is not None:
            sample_weight = ops.cast(
                ops.convert_to_tensor(sample_weight), self.dtype
            )
            if len(sample_weight.shape) == 1:
                sample_weight = ops.expand_dims(sample_weight, -1)
            elif len(sample_weight.shape) == 3 and sample_weight.shape[-1] == 1:
                sample_weight = ops.squeeze(sample_weight, -1)
            if len(sample_weight.shape) != 2:
                raise ArgumentError(
                    "`sample_weight` must have the shape `[batch_size]` or "
                    "`[batch_size, sequence_length]`. "
                    f"Received: sample_weight.shape={tuple(sample_weight.shape)}"
                )
            weights = weights * sample_weight
        mask = _keras_mask(y_pred)
        if mask is not None:
            weights = weights * ops.cast(mask, self.dtype)
        return weights

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
            if len(y_true.shape) == 3 and y_true.shape[-1] == 1:
                # Sparse targets are often shaped [B, T, 1] by data pipelines.
                y_true = ops.squeeze(y_true, -1)
            weights = self._weights(y_true, y_pred, sample_weight)
            y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
            loss = sequence_loss(
                y_pred,
                y_true,
                weights,
                average_across_timesteps=self.average_across_timesteps,
                average_across_batch=self.average_across_batch,
                sum_over_timesteps=self.sum_over_timesteps,
                sum_over_batch=self.sum_over_batch,
                label_smoothing=self.label_smoothing,
                softmax_loss_function=self.softmax_loss_function,
                from_logits=self.from_logits,
            )
            if len(loss.shape) == 0:
                loss = _scale_for_distribution(loss)
            return loss

    def call(self, y_true, y_pred):
        """Per-token losses `[B, T]`, unweighted and unreduced."""
        if self.softmax_loss_function is not None:
            return self.softmax_loss_function(labels=y_true, logits=y_pred)
        return token_crossentropy(
            y_true, y_pred, self.label_smoothing, from_logits=self.from_logits
        )

    def get_config(self):
        fn = self.softmax_loss_function
        return {
            "name": self.name,
            "dtype": self._dtype_policy.name,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "pad_id": self.pad_id,
            "average_across_timesteps": self.average_across_timesteps,
            "average_across_batch": self.average_across_batch,
            "sum_over_timesteps": self.sum_over_timesteps,
            "sum_over_batch": self.sum_over_batch,
            "softmax_loss_function": (
                None if fn is None else keras.saving.serialize_keras_object(fn)
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        fn = config.get("softmax_loss_function")
        if fn is not None and not callable(fn):
            config["softmax_loss_function"] = (
                keras.saving.deserialize_keras_object(fn)
            )
        return cls(**config)
