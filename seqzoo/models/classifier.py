"""Sequence classifier: a sequence in, one label out."""

import keras
from keras import ops

from seqzoo.errors import ArgumentError
from seqzoo.layers.rnn import RNNStack
from seqzoo.models.base import ZooModel, check_positive_int, check_rate, sequence_inputs

POOLINGS = ("last", "mean", "max")


@keras.saving.register_keras_serializable(package="seqzoo")
class MaskedPooling(keras.layers.Layer):
    """Mean or max over the real (unmasked) steps of `[B, T, D]` -> `[B, D]`."""

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "max"):
            raise ArgumentError(f"Expected mode 'mean' or 'max'. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, 1) if self.mode == "mean" else ops.max(inputs, 1)
        weights = ops.cast(mask, inputs.dtype)[:, :, None]
        if self.mode == "mean":
            return ops.sum(inputs * weights, 1) / ops.maximum(ops.sum(weights, 1), 1.0)
        lowest = ops.cast(-1e9, inputs.dtype)
        return ops.max(ops.where(weights > 0, inputs, lowest), 1)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def final_hidden(states):
    """The top layer's final `h`, directions concatenated: `[B, units * dirs]`."""
    top = [direction[0] for direction in states[-1]]
    return top[0] if len(top) == 1 else keras.layers.Concatenate()(top)


@keras.saving.register_keras_serializable(package="seqzoo")
class SequenceClassifier(ZooModel):
    """An RNN that reads a sequence and predicts one label.

    Inputs are token ids `[B, T]` (set `vocab_size`; id 0 pads) or feature
    vectors `[B, T, input_dim]` (e.g. the rows of an MNIST image). The
    output is `[B, num_classes]` logits.

    Args:
        num_classes: number of labels.
        vocab_size, embedding_dim: for token inputs.
        input_dim, mask_value: for feature inputs; steps whose features all
            equal `mask_value` are masked.
        units, num_layers, cell, bidirectional, merge_mode, residual,
            dropout, use_cudnn: the `RNNStack`.
        pooling: `"last"` (final hidden state of the top layer, both
            directions), `"mean"` or `"max"` over real steps.
        output_dropout: dropout before the output layer.
        tokenizer: optional tokenizer that travels with the saved model.
    """

    def __init__(
        self,
        num_classes,
        vocab_size=None,
        embedding_dim=64,
        input_dim=None,
        mask_value=None,
        units=128,
        num_layers=1,
        cell="lstm",
        bidirectional=False,
        merge_mode="concat",
        residual=False,
        dropout=0.0,
        use_cudnn="auto",
        pooling="last",
        output_dropout=0.0,
        tokenizer=None,
        **kwargs,
    ):
        check_positive_int("num_classes", num_classes)
        check_rate("output_dropout", output_dropout)
        if pooling not in POOLINGS:
            raise ArgumentError(
                f"Expected pooling in {list(POOLINGS)}. Received: pooling={pooling!r}")
        inputs, x = sequence_inputs(vocab_size, embedding_dim, input_dim, mask_value)
        sequence, states = RNNStack(
            units, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
            merge_mode=merge_mode, residual=residual, dropout=dropout, use_cudnn=use_cudnn,
            name="encoder",
        )(x)
        if pooling == "last":
            pooled = final_hidden(states)
        else:
            pooled = MaskedPooling(pooling, name="pooling")(sequence)
        if output_dropout:
            pooled = keras.layers.Dropout(output_dropout)(pooled)
        logits = keras.layers.Dense(num_classes, name="logits")(pooled)
        super().__init__(inputs=inputs, outputs=logits, tokenizer=tokenizer, **kwargs)
        self._hyperparameters = dict(
            num_classes=num_classes, vocab_size=vocab_size, embedding_dim=embedding_dim,
            input_dim=input_dim, mask_value=mask_value, units=units, num_layers=num_layers,
            cell=cell, bidirectional=bidirectional, merge_mode=merge_mode, residual=residual,
            dropout=dropout, use_cudnn=use_cudnn, pooling=pooling, output_dropout=output_dropout,
        )

    def default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
