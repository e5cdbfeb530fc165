"""`tfa.seq2seq.sequence_loss` and `SequenceLoss`, with TFA's checks and defaults.

Both sit on the zoo's `seqzoo.losses.sequence_loss`. What differs from the
zoo's own form: `weights` is required, mixing an average over one axis with
a sum over the other raises (TFA: "ambiguous order"), targets may be one-hot
(`[batch, time, classes]`), a `softmax_loss_function` receives flattened
`labels` `[batch * time]` and `logits` `[batch * time, classes]`, and
`SequenceLoss` defaults to `sum_over_timesteps=True, sum_over_batch=True`
with no padding id (the weights alone mask).
"""

import keras
from keras import ops

from seqzoo.losses import sequence_loss as _zoo_sequence_loss


def _check(logits, targets, weights, average_across_timesteps, average_across_batch,
           sum_over_timesteps, sum_over_batch):
    if len(logits.shape) != 3:
        raise ValueError(
            "Logits must be a [batch_size x sequence_length x logits] tensor. "
            f"Received: logits.shape={tuple(logits.shape)}")
    if len(targets.shape) not in (2, 3):
        raise ValueError(
            "Targets must be either a [batch_size x sequence_length] tensor where each "
            "element contains the labels' index or a [batch_size x sequence_length x "
            f"num_classes] one-hot tensor. Received: targets.shape={tuple(targets.shape)}")
    if len(weights.shape) != 2:
        raise ValueError(
            "Weights must be a [batch_size x sequence_length] tensor. "
            f"Received: weights.shape={tuple(weights.shape)}")
    same_axis = "cannot be set to True at same time."
    ambiguous = "cannot be set to True at same time because of ambiguous order."
    clashes = (
        (average_across_timesteps and sum_over_timesteps,
         f"average_across_timesteps and sum_over_timesteps {same_axis}"),
        (average_across_batch and sum_over_batch,
         f"average_across_batch and sum_over_batch {same_axis}"),
        (average_across_batch and sum_over_timesteps,
         f"average_across_batch and sum_over_timesteps {ambiguous}"),
        (sum_over_batch and average_across_timesteps,
         f"sum_over_batch and average_across_timesteps {ambiguous}"),
    )
    for clash, message in clashes:
        if clash:
            raise ValueError(message)


def sequence_loss(logits, targets, weights, average_across_timesteps=True,
                  average_across_batch=True, sum_over_timesteps=False, sum_over_batch=False,
                  softmax_loss_function=None, name=None):
    """Weighted cross-entropy of a sequence of logits, as `tfa.seq2seq.sequence_loss`.

    Args:
        logits: `[batch_size, sequence_length, num_classes]` float.
        targets: `[batch_size, sequence_length]` int ids, or one-hot
            `[batch_size, sequence_length, num_classes]`.
        weights: `[batch_size, sequence_length]` float (the padding mask).
        average_across_timesteps, average_across_batch: sum over the axis and
            divide by the sum of the weights along it.
        sum_over_timesteps, sum_over_batch: sum over the axis and divide by
            the number of non-zero weights along it.
        softmax_loss_function: `f(labels=[B*T], logits=[B*T, V]) -> [B*T]`
            used instead of the softmax cross-entropy.
        name: unused (TFA's name scope).

    Returns:
        A tensor of rank 0, 1 or 2 depending on the flags.

    Raises:
        ValueError: wrong ranks, or flags that cannot be combined.
    """
    del name
    logits = ops.convert_to_tensor(logits)
    targets = ops.convert_to_tensor(targets)
    weights = ops.convert_to_tensor(weights)
    _check(logits, targets, weights, average_across_timesteps, average_across_batch,
           sum_over_timesteps, sum_over_batch)
    num_classes = ops.shape(logits)[-1]
    if len(targets.shape) == 3:
        one_hot = ops.cast(targets, logits.dtype)

        def loss_fn(labels, logits):
            del labels
            return -ops.sum(one_hot * ops.log_softmax(logits, axis=-1), axis=-1)

        targets = ops.zeros(ops.shape(targets)[:2], dtype="int32")
    elif softmax_loss_function is not None:
        user_fn = softmax_loss_function

        def loss_fn(labels, logits):
            return user_fn(labels=ops.reshape(labels, (-1,)),
                           logits=ops.reshape(logits, (-1, num_classes)))
    else:
        loss_fn = None
    return _zoo_sequence_loss(
        logits, targets, weights,
        average_across_timesteps=average_across_timesteps,
        average_across_batch=average_across_batch,
        sum_over_timesteps=sum_over_timesteps, sum_over_batch=sum_over_batch,
        softmax_loss_function=loss_fn)


@keras.saving.register_keras_serializable(package="seqzoo.tfa")
class SequenceLoss(keras.losses.Loss):
    """`sequence_loss` as a Keras loss, as `tfa.seq2seq.SequenceLoss`.

    Called as `loss(y_true=targets, y_pred=logits, sample_weight=weights)`;
    with no `sample_weight` every token weighs 1. Keras' own reduction is
    not applied (TFA's `Reduction.NONE`): the flags reduce.
    """

    def __init__(self, average_across_timesteps=False, average_across_batch=False,
                 sum_over_timesteps=True, sum_over_batch=True, softmax_loss_function=None,
                 name=None):
        super().__init__(name=name or "sequence_loss", reduction="none")
        self.average_across_timesteps = bool(average_across_timesteps)
        self.average_across_batch = bool(average_across_batch)
        self.sum_over_timesteps = bool(sum_over_timesteps)
        self.sum_over_batch = bool(sum_over_batch)
        self.softmax_loss_function = softmax_loss_function

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        if sample_weight is None:
            sample_weight = ops.ones(ops.shape(y_pred)[:2], dtype=y_pred.dtype)
        return sequence_loss(
            y_pred, y_true, sample_weight,
            average_across_timesteps=self.average_across_timesteps,
            average_across_batch=self.average_across_batch,
            sum_over_timesteps=self.sum_over_timesteps, sum_over_batch=self.sum_over_batch,
            softmax_loss_function=self.softmax_loss_function)

    def call(self, y_true, y_pred):
        return self.__call__(y_true, y_pred)

    def get_config(self):
        if self.softmax_loss_function is not None:
            fn = keras.saving.serialize_keras_object(self.softmax_loss_function)
        else:
            fn = None
        return {"name": self.name, "average_across_timesteps": self.average_across_timesteps,
                "average_across_batch": self.average_across_batch,
                "sum_over_timesteps": self.sum_over_timesteps,
                "sum_over_batch": self.sum_over_batch, "softmax_loss_function": fn}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("softmax_loss_function") is not None:
            config["softmax_loss_function"] = keras.saving.deserialize_keras_object(
                config["softmax_loss_function"])
        return cls(**config)
