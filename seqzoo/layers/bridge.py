"""Bridges: map an encoder's final states onto a decoder's initial states."""

import keras
from keras import ops

from seqzoo.errors import ArgumentError

BRIDGES = ("copy", "dense", "zero")


@keras.saving.register_keras_serializable(package="seqzoo")
class Bridge(keras.layers.Layer):
    """Turns `RNNStack` final states into the initial states of a decoder stack.

    The encoder states come as `RNNStack` returns them (per layer, per
    direction, `[h]` or `[h, c]`); the decoder states are per layer, one
    direction, `decoder_num_states` tensors of `[B, decoder_units]`. A
    bidirectional encoder's directions are joined the way its outputs are
    (`concat` or `sum`).

    Args:
        mode: `"copy"` (decoder layer `l` starts from encoder layer `l`'s
            joined states; needs equal depths, cells and sizes), `"dense"`
            (a learned linear map of the joined states, for any sizes,
            depths or cells; decoder layer `l` reads encoder layer
            `min(l, encoder_layers - 1)` when depths differ) or `"zero"`.
        decoder_units: size of each decoder state.
        decoder_layers: number of decoder layers.
        decoder_num_states: 2 for LSTM, 1 for GRU.
        merge_mode: how the encoder's two directions are joined.

    Call arguments:
        encoder_states: nested list as returned by `RNNStack`.
        batch_size: only used by `"zero"` when no states are given.

    Returns:
        A list (per decoder layer) of a list (one direction) of lists of
        `decoder_num_states` tensors `[B, decoder_units]`.
    """

    def __init__(self, mode="dense", decoder_units=None, decoder_layers=1,
                 decoder_num_states=2, merge_mode="concat", **kwargs):
        super().__init__(**kwargs)
        if mode not in BRIDGES:
            raise ArgumentError(f"Expected bridge mode in {list(BRIDGES)}. Received: mode={mode!r}")
        if not isinstance(decoder_units, int) or decoder_units < 1:
            raise ArgumentError("Expected a positive integer. "
                                f"Received: decoder_units={decoder_units!r}")
        self.mode = mode
        self.decoder_units = decoder_units
        self.decoder_layers = decoder_layers
        self.decoder_num_states = decoder_num_states
        self.merge_mode = merge_mode
        self.projections = []
        if mode == "dense":
            self.projections = [
                [keras.layers.Dense(decoder_units, name=f"bridge_{layer}_{s}")
                 for s in range(decoder_num_states)]
                for layer in range(decoder_layers)
            ]

    def _joined(self, encoder_states, layer, kind):
        """Encoder layer `layer`'s state `kind` (h=0, c=1), directions joined."""
        directions = encoder_states[layer]
        kind = min(kind, len(directions[0]) - 1)  # a GRU encoder has h only
        parts = [d[kind] for d in directions]
        if len(parts) == 1:
            return parts[0]
        if self.merge_mode == "sum":
            return parts[0] + parts[1]
        return ops.concatenate(parts, axis=-1)

    def _source_layer(self, encoder_states, layer):
        return layer if len(encoder_states) == self.decoder_layers else len(encoder_states) - 1

    def call(self, encoder_states):
        if self.mode == "zero":
            reference = encoder_states[0][0][0]
            zeros = ops.zeros((ops.shape(reference)[0], self.decoder_units), reference.dtype)
            return [[[zeros] * self.decoder_num_states] for _ in range(self.decoder_layers)]
        if self.mode == "copy":
            self._check_copy(encoder_states)
        out = []
        for layer in range(self.decoder_layers):
            source = self._source_layer(encoder_states, layer)
            states = []
            for kind in range(self.decoder_num_states):
                joined = self._joined(encoder_states, source, kind)
                if self.mode == "dense":
                    joined = self.projections[layer][kind](joined)
                states.append(joined)
            out.append([states])
        return out

    def _check_copy(self, encoder_states):
        width = self._joined(encoder_states, 0, 0).shape[-1]
        num_states = len(encoder_states[0][0])
        if (len(encoder_states) != self.decoder_layers or width != self.decoder_units
                or num_states != self.decoder_num_states):
            raise ArgumentError(
                "A 'copy' bridge needs the decoder to match the encoder: "
                f"{len(encoder_states)} layers, joined state size {width}, "
                f"{num_states} state(s) per layer. Received: decoder_layers="
                f"{self.decoder_layers}, decoder_units={self.decoder_units}, "
                f"decoder_num_states={self.decoder_num_states}. Use bridge='dense'."
            )

    def get_config(self):
        return {
            **super().get_config(), "mode": self.mode, "decoder_units": self.decoder_units,
            "decoder_layers": self.decoder_layers, "decoder_num_states": self.decoder_num_states,
            "merge_mode": self.merge_mode,
        }
