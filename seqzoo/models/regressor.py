"""Sequence regressor: real-valued sequence in, real-valued sequence out."""

import keras

from seqzoo.errors import ArgumentError
from seqzoo.layers.rnn import RNNStack
from seqzoo.models.base import ZooModel, check_positive_int


@keras.saving.register_keras_serializable(package="seqzoo")
class SequenceRegressor(ZooModel):
    """An RNN mapping `[B, T, input_dim]` to `[B, T, output_dim]` (e.g. sin -> cos).

    With `stateful=True` the final states of one batch are the initial states
    of the next, so a long series can be fed in consecutive chunks; the batch
    size is then fixed (`batch_size`) and `reset_states()` starts over.

    Args:
        input_dim: features per input step.
        output_dim: values per output step.
        units, num_layers, cell, residual, dropout, use_cudnn: the
            `RNNStack` (unidirectional: a stateful model reads forward only).
        stateful: carry states across batches.
        batch_size: the fixed batch size, required when `stateful`.
        mask_value: steps whose features all equal it are masked.
    """

    def __init__(
        self,
        input_dim=1,
        output_dim=1,
        units=64,
        num_layers=1,
        cell="lstm",
        residual=False,
        dropout=0.0,
        use_cudnn="auto",
        stateful=False,
        batch_size=None,
        mask_value=None,
        tokenizer=None,
        **kwargs,
    ):
        check_positive_int("input_dim", input_dim)
        check_positive_int("output_dim", output_dim)
        if stateful and batch_size is None:
            raise ArgumentError(
                "A stateful model needs a fixed batch size. Received: stateful=True, "
                "batch_size=None"
            )
        check_positive_int("batch_size", batch_size, allow_none=True)
        inputs = keras.Input(batch_shape=(batch_size, None, input_dim), name="features")
        x = inputs
        if mask_value is not None:
            x = keras.layers.Masking(mask_value=mask_value, name="masking")(x)
        sequence, _ = RNNStack(
            units, num_layers=num_layers, cell=cell, residual=residual, dropout=dropout,
            use_cudnn=use_cudnn, stateful=stateful, name="encoder",
        )(x)
        outputs = keras.layers.Dense(output_dim, name="outputs")(sequence)
        super().__init__(inputs=inputs, outputs=outputs, tokenizer=tokenizer, **kwargs)
        self._hyperparameters = dict(
            input_dim=input_dim, output_dim=output_dim, units=units, num_layers=num_layers,
            cell=cell, residual=residual, dropout=dropout, use_cudnn=use_cudnn,
            stateful=stateful, batch_size=batch_size, mask_value=mask_value,
        )

    def reset_states(self):
        """Zeroes the carried states of a stateful model."""
        self.get_layer("encoder").reset_states()

    def default_loss(self):
        return keras.losses.MeanSquaredError()

    def default_metrics(self):
        return [keras.metrics.MeanAbsoluteError(name="mae")]
