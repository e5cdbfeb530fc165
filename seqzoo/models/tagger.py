"""Sequence tagger: one label per step."""

import keras

from seqzoo.layers.rnn import RNNStack
from seqzoo.models.base import ZooModel, check_positive_int, check_rate, sequence_inputs


@keras.saving.register_keras_serializable(package="seqzoo")
class SequenceTagger(ZooModel):
    """An RNN that predicts one label per input step.

    Inputs are token ids `[B, T]` (id 0 pads) or feature vectors
    `[B, T, input_dim]`; the output is `[B, T, num_tags]` logits carrying the
    input's padding mask, so the default loss and accuracy skip padded steps.
    Use `bidirectional=True` when a label may depend on later steps.

    Args:
        num_tags: number of labels per step.
        vocab_size, embedding_dim: for token inputs.
        input_dim, mask_value: for feature inputs.
        units, num_layers, cell, bidirectional, merge_mode, residual,
            dropout, use_cudnn: the `RNNStack`.
        output_dropout: dropout before the output layer.
        tokenizer: optional tokenizer that travels with the saved model.
    """

    def __init__(
        self,
        num_tags,
        vocab_size=None,
        embedding_dim=64,
        input_dim=None,
        mask_value=None,
        units=128,
        num_layers=2,
        cell="lstm",
        bidirectional=False,
        merge_mode="concat",
        residual=False,
        dropout=0.0,
        use_cudnn="auto",
        output_dropout=0.0,
        tokenizer=None,
        **kwargs,
    ):
        check_positive_int("num_tags", num_tags)
        check_rate("output_dropout", output_dropout)
        inputs, x = sequence_inputs(vocab_size, embedding_dim, input_dim, mask_value)
        sequence, _ = RNNStack(
            units, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
            merge_mode=merge_mode, residual=residual, dropout=dropout, use_cudnn=use_cudnn,
            name="encoder",
        )(x)
        if output_dropout:
            sequence = keras.layers.Dropout(output_dropout)(sequence)
        logits = keras.layers.Dense(num_tags, name="logits")(sequence)
        super().__init__(inputs=inputs, outputs=logits, tokenizer=tokenizer, **kwargs)
        self._hyperparameters = dict(
            num_tags=num_tags, vocab_size=vocab_size, embedding_dim=embedding_dim,
            input_dim=input_dim, mask_value=mask_value, units=units, num_layers=num_layers,
            cell=cell, bidirectional=bidirectional, merge_mode=merge_mode, residual=residual,
            dropout=dropout, use_cudnn=use_cudnn, output_dropout=output_dropout,
        )

    def default_loss(self):
        # The logits carry the input mask: Keras weights the loss with it.
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
