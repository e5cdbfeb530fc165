"""Stacks of LSTM/GRU layers: uni- or bidirectional, residual, with dropout."""

import functools

import keras
from keras import ops

from seqzoo.checks import check_choice, check_positive_int
from seqzoo.errors import ArgumentError
from seqzoo.layers import recurrence

CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
MERGE_MODES = ("concat", "sum")
LOOPS = ("auto", "projected", "keras")


@functools.cache
def accelerator_present():
    """Whether the Keras backend computes on a GPU (where cuDNN may run); asked of
    the backend once per process (its devices do not change)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def auto_loop(cell, input_width=None, units=None):
    """The loop `loop="auto"` takes for a layer of `cell` ("lstm"/"gru") reading
    `input_width` features into `units`, on this backend and device:
    `"projected"` where the `rnn` suite measured it faster than Keras' loop
    (docs/results/rnn-cpu.md), on TensorFlow's CPU backend only: every GRU
    layer (1.03-1.21x), and an LSTM layer whose input is wider than its units,
    as the layers above a bidirectional one read both directions' outputs
    (its input product, then the larger one, leaves the loop: two
    bidirectional layers 1.25x); `"keras"` elsewhere: on JAX, and for the
    other LSTM layers, Keras' loop was as fast or faster (XLA fuses its
    per-step input product), and on a GPU cuDNN is."""
    if keras.backend.backend() != "tensorflow" or accelerator_present():
        return "keras"
    wide = input_width is not None and units is not None and input_width > units
    return "projected" if cell == "gru" or wide else "keras"


@keras.saving.register_keras_serializable(package="seqzoo")
class RNNStack(keras.layers.Layer):
    """A stack of whole-sequence LSTM or GRU layers.

    Each layer is a `keras.layers.LSTM`/`GRU` with the default activations
    and `recurrent_dropout=0`, so it runs the fused cuDNN kernel on a GPU
    where the backend offers one. Masks (right padding) flow through every
    layer: padded steps change neither the outputs at real steps nor the
    final states.

    Args:
        units: hidden size of each layer (per direction).
        num_layers: number of stacked layers.
        cell: `"lstm"` or `"gru"`.
        bidirectional: run each layer forwards and backwards.
        merge_mode: how the two directions are merged into the next layer's
            input and the output: `"concat"` (size `2 * units`) or `"sum"`.
        residual: add each layer's input to its output when their sizes are
            equal (from the second layer on, or the first when the input
            size matches).
        dropout: dropout rate applied between layers (not after the last).
        use_cudnn: `"auto"`, `True` or `False`, passed to the Keras layers.
        unroll: unroll the time loop (Keras `unroll`): faster for short
            fixed-length sequences on the TensorFlow CPU backend, slower on
            JAX, and not the cuDNN path; off by default.
        stateful: keep each batch's final states as the next batch's initial
            states (needs a fixed batch size; unidirectional only).
        loop: how the time loop runs. `"projected"` projects the inputs of
            all steps in one matrix product before the loop, which then does
            only the recurrent product and the gates (seqzoo.layers.
            recurrence); `"keras"` calls the Keras layers (their generic
            loop, or cuDNN on a GPU); `"auto"` (default) takes the projected
            loop, layer by layer, where it was measured faster (on
            TensorFlow's CPU backend: GRU layers, and LSTM layers whose input
            is wider than `units`; see `auto_loop`) and Keras' elsewhere.
            Both compute the same function of the same weights.
        kernel_initializer, recurrent_initializer: passed to the Keras
            layers.

    Call arguments:
        inputs: `[B, T, D]` float tensor.
        mask: optional `[B, T]` boolean mask, `True` on real steps.
        initial_state: optional list (one entry per layer) of lists (one
            per direction) of state tensors, as returned by this layer.
        training: whether dropout is active.

    Returns:
        A tuple `(outputs, states)`: `outputs` is `[B, T, output_size]`;
        `states` is a list with one entry per layer, each a list with one
        entry per direction (forward first), each the list of that
        direction's final states (`[h, c]` for LSTM, `[h]` for GRU), every
        state `[B, units]`.
    """

    def __init__(
        self,
        units,
        num_layers=1,
        cell="lstm",
        bidirectional=False,
        merge_mode="concat",
        residual=False,
        dropout=0.0,
        use_cudnn="auto",
        stateful=False,
        unroll=False,
        loop="auto",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        check_positive_int("num_layers", num_layers)
        check_choice("cell", cell, CELLS)
        check_choice("merge_mode", merge_mode, MERGE_MODES)
        check_choice("use_cudnn", use_cudnn, ("auto", True, False))
        check_choice("loop", loop, LOOPS)
        if not 0.0 <= dropout < 1.0:
            raise ArgumentError(f"Expected 0 <= dropout < 1. Received: dropout={dropout!r}")
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.residual = residual
        self.dropout = dropout
        if stateful and bidirectional:
            raise ArgumentError(
                "A stateful stack reads forward only. Received: stateful=True, bidirectional=True"
            )
        self.use_cudnn = use_cudnn
        self.stateful = stateful
        self.unroll = unroll
        self.loop = loop
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.supports_masking = True
        self.rnn_layers = []
        for i in range(num_layers):
            directions = [self._make_rnn(f"{cell}_{i}_fw", go_backwards=False)]
            if bidirectional:
                directions.append(self._make_rnn(f"{cell}_{i}_bw", go_backwards=True))
            self.rnn_layers.append(directions)
        self.dropout_layer = keras.layers.Dropout(dropout) if dropout else None

    def _make_rnn(self, name, go_backwards):
        return CELLS[self.cell](
            self.units,
            return_sequences=True,
            return_state=True,
            go_backwards=go_backwards,
            zero_output_for_mask=True,
            use_cudnn=self.use_cudnn,
            stateful=self.stateful,
            unroll=self.unroll,
            kernel_initializer=self.kernel_initializer,
            recurrent_initializer=self.recurrent_initializer,
            name=name,
        )

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def num_states(self):
        """Number of state tensors of one direction of one layer."""
        return 2 if self.cell == "lstm" else 1

    @property
    def output_size(self):
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units

    def build(self, input_shape):
        size = input_shape[-1]
        for directions in self.rnn_layers:
            for rnn in directions:
                rnn.build((input_shape[0], input_shape[1], size))
            size = self.output_size
        self.built = True

    def _merge(self, outputs):
        if len(outputs) == 1:
            return outputs[0]
        if self.merge_mode == "concat":
            return ops.concatenate(outputs, axis=-1)
        return outputs[0] + outputs[1]

    def call(self, inputs, mask=None, initial_state=None, training=False):
        if initial_state is not None and len(initial_state) != self.num_layers:
            raise ArgumentError(
                f"Expected initial_state with one entry per layer ({self.num_layers}). "
                f"Received: {len(initial_state)} entries"
            )
        x = inputs
        states = []
        for i, directions in enumerate(self.rnn_layers):
            if i > 0 and self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
            outputs, layer_states = [], []
            for d, rnn in enumerate(directions):
                init = None if initial_state is None else list(initial_state[i][d])
                if self._projected(rnn):
                    out, *final = recurrence.run(rnn, x, mask=mask, initial_state=init)
                else:
                    out, *final = rnn(x, mask=mask, initial_state=init, training=training)
                if rnn.go_backwards:
                    # Keras emits the backward outputs in reversed time order.
                    out = ops.flip(out, axis=1)
                outputs.append(out)
                layer_states.append(final)
            merged = self._merge(outputs)
            if self.residual and merged.shape[-1] == x.shape[-1]:
                merged = merged + x
            x = merged
            states.append(layer_states)
        return x, states

    def _projected(self, rnn):
        """Whether `call` runs `rnn` through the projected loop."""
        if self.loop == "keras" or not recurrence.supports(rnn):
            return False
        if self.loop == "projected":
            return True
        return auto_loop(self.cell, rnn.cell.kernel.shape[0], self.units) == "projected"

    def initial_states(self, batch_size, dtype="float32"):
        """Zero states in the structure `call` returns, `[B, units]` each."""
        zeros = lambda: ops.zeros((batch_size, self.units), dtype)  # noqa: E731
        return [
            [[zeros() for _ in range(self.num_states)] for _ in directions]
            for directions in self.rnn_layers
        ]

    def step_noise(self, batch, steps):
        """The masks of the dropout between layers for `steps` steps, drawn at once:
        `[steps, batch, (num_layers - 1) * units]` (layer `i`'s input uses columns
        `(i - 1) * units` to `i * units`), or `None` without that dropout.

        A loop over time (`ops.scan`) takes them as inputs: drawing random numbers
        inside the loop's body would update the dropout's seed state inside a
        traced function, which JAX refuses."""
        if self.dropout_layer is None or self.num_layers < 2:
            return None
        return step_dropout_masks(self.dropout_layer, steps, batch,
                                  (self.num_layers - 1) * self.units)

    def step(self, inputs, states, training=False, noise=None):
        """Advances a unidirectional stack by one time step.

        Runs the same cells and weights as `call`, one step at a time, for
        decoding (and for training decoders that step through time).

        Args:
            inputs: `[B, D]` input of this step.
            states: as returned by `call` or `initial_states`.
            training: whether the dropout between layers is active, as in
                `call` (element-wise, so one step at a time draws from the
                same distribution as the whole sequence).
            noise: this step's slice of `step_noise` (`[B, (num_layers - 1) *
                units]`): the dropout masks to apply instead of drawing them.

        Returns:
            `(outputs [B, units], states)` with `states` in the same structure.
        """
        if self.bidirectional:
            raise ValueError("A bidirectional stack cannot run step by step: it reads the future.")
        x = inputs
        new_states = []
        for i, ((rnn,), (layer_state,)) in enumerate(zip(self.rnn_layers, states)):
            if i > 0 and noise is not None:
                x = x * ops.cast(noise[:, (i - 1) * self.units:i * self.units], x.dtype)
            elif i > 0 and self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
            out, new = rnn.cell(x, list(layer_state), training=False)
            if self.residual and out.shape[-1] == x.shape[-1]:
                out = out + x
            new_states.append([list(new) if isinstance(new, (list, tuple)) else [new]])
            x = out
        return x, new_states

    def reset_states(self):
        """Zeroes the carried states of a stateful stack."""
        for directions in self.rnn_layers:
            for rnn in directions:
                rnn.reset_states()

    def compute_mask(self, inputs, mask=None):
        return [mask, None] if mask is not None else None

    def compute_output_shape(self, input_shape):
        """The shapes `call` returns, `(outputs, states)`, without running it: on
        JAX and torch a model's graph is otherwise built by tracing every step of
        every loop of the stack."""
        state = (input_shape[0], self.units)
        states = [[[state] * self.num_states for _ in directions]
                  for directions in self.rnn_layers]
        return (*input_shape[:-1], self.output_size), states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "bidirectional": self.bidirectional,
                "merge_mode": self.merge_mode,
                "residual": self.residual,
                "dropout": self.dropout,
                "use_cudnn": self.use_cudnn,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "loop": self.loop,
                "kernel_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.kernel_initializer)
                ),
                "recurrent_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.recurrent_initializer)
                ),
            }
        )
        return config


def step_dropout_masks(dropout, steps, batch, width):
    """`[steps, batch, width]` masks of a `keras.layers.Dropout` (0, or `1 / (1 - rate)`),
    drawn from its seed generator before a loop over time: the `step_noise` of
    `RNNStack`, `RNNDecoder` and `Seq2Seq`."""
    return keras.random.dropout(ops.ones((steps, batch, width)), dropout.rate,
                                seed=dropout.seed_generator)

