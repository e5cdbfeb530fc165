"""`tfa.seq2seq.BeamSearchDecoder` on Keras 3, with TFA's semantics and outputs.

The step math (TFA's scores, finished beams, lengths) is in
`seqzoo.tfa.seq2seq.beam_search_ops.beam_search_step`; this module holds the
decoder: the `Decoder` interface (`initialize`, `step`, `finalize`) that
`dynamic_decode` runs, the reshapes between the cell's `[batch * beam, ...]`
and the search's `[batch, beam, ...]`, and the reordering of the cell
state's `tf.TensorArray`s (alignment history) along the final beams.
"""

import numbers
import warnings

import keras
import numpy as np
from keras import ops

from seqzoo.tfa.seq2seq._common import is_tensor_array, rank, static_or_dynamic, tensorflow
from seqzoo.tfa.seq2seq.beam_search_ops import (
    BeamSearchDecoderOutput,
    BeamSearchDecoderState,
    FinalBeamSearchDecoderOutput,
    attention_probs,
    beam_search_step,
    gather_tree,
    gather_tree_from_array,
    lengths_dtype,
    tile_batch,
)
from seqzoo.tfa.seq2seq.decoder import BaseDecoder

__all__ = [
    "BeamSearchDecoder",
    "BeamSearchDecoderOutput",
    "BeamSearchDecoderState",
    "FinalBeamSearchDecoderOutput",
    "gather_tree",
    "gather_tree_from_array",
    "tile_batch",
]


def _check_cell(cell):
    # dir(), not hasattr(): a wrapper's sizes may not be known before its memory is set up.
    missing = [f"'{a}' property is missing" for a in ("output_size", "state_size")
               if a not in dir(cell)]
    if not callable(cell):
        missing.append("'call' method is missing")
    if missing:
        raise TypeError(
            f"The argument 'cell' ({cell!r}) is not an RNNCell: {', '.join(missing)}.")


def _scalar_weight(name, value):
    value = ops.convert_to_numpy(value) if not isinstance(value, numbers.Real) else value
    if np.ndim(value) != 0:
        raise ValueError(f"{name} should be a scalar, but saw shape: {np.shape(value)}")
    return float(value)


def _checked_batch_beam(t, batch_size, beam_width):
    """`t` `[time, ...]` (a stacked TensorArray: TensorFlow only), after a run-time check
    that its elements are `[batch * beam, ...]` or `[batch, beam, ...]`."""
    tf = tensorflow()
    shape = tf.shape(t)
    condition = tf.equal(shape[1], batch_size * beam_width)
    if rank(t) > 2:
        condition = tf.logical_or(condition, tf.logical_and(
            tf.equal(shape[1], batch_size), tf.equal(shape[2], beam_width)))
    message = ("TensorArray reordering expects elements to be reshapable to [batch_size, "
               "beam_size, -1], which is incompatible with the dynamic shape of the elements. "
               "Consider setting reorder_tensor_arrays to False to disable TensorArray "
               "reordering during the beam search.")
    with tf.control_dependencies([tf.debugging.Assert(condition, [message])]):
        return tf.identity(t)


class _Run:
    """The tensors of one decode, kept off Keras' attribute tracking (which would turn
    their lists into tracked lists that the loops do not accept)."""

    def __init__(self, **values):
        self.__dict__.update(values)


@keras.saving.register_keras_serializable(package="seqzoo.tfa")
class BeamSearchDecoder(BaseDecoder):
    """Beam search decoder, as `tfa.seq2seq.BeamSearchDecoder`.

    With an `AttentionWrapper` cell, the memory, its lengths and the initial
    cell state must be tiled with `tile_batch(x, beam_width)` (not
    `ops.tile`), and the wrapper's initial state made with
    `get_initial_state(batch_size=batch_size * beam_width)`, as with TFA.

    Calling the decoder runs `dynamic_decode`:
    `decoder(embedding, start_tokens=, end_token=, initial_state=)` returns
    `(FinalBeamSearchDecoderOutput, BeamSearchDecoderState,
    final_sequence_lengths)`, the beams sorted best first.

    The scores are TFA's, not `seqzoo.decoding.beam_search`'s (see
    `beam_search_ops.beam_search_step`): a finished beam can only add
    `end_token` (other tokens get the float minimum), the length penalty of
    a candidate does not count an end token chosen at that step, and the
    coverage penalty only applies to beams finished at an earlier step.

    Args:
        cell: a Keras RNN cell (or `AttentionWrapper`).
        beam_width: Python int, the number of beams.
        embedding_fn: optional callable from `int32` ids to embeddings; used
            when the decoder is called with `embedding=None`.
        output_layer: optional layer applied to the cell output (the logits).
        length_penalty_weight: float, the GNMT length penalty weight; 0 disables.
        coverage_penalty_weight: float, the GNMT coverage penalty weight
            (needs attention); 0 disables.
        reorder_tensor_arrays: reorder the `tf.TensorArray`s of the cell state
            (alignment history) along the final beams; they come back stacked.
        output_all_scores: output every token's score (`[batch, beam, vocab]`
            per step) instead of the chosen beams' scores.
        **kwargs: `BaseDecoder`'s arguments (`maximum_iterations`,
            `output_time_major`, `impute_finished`, ...) and the layer's.
    """

    def __init__(self, cell, beam_width, embedding_fn=None, output_layer=None,
                 length_penalty_weight=0.0, coverage_penalty_weight=0.0,
                 reorder_tensor_arrays=True, output_all_scores=False, **kwargs):
        _check_cell(cell)
        if isinstance(beam_width, bool) or not isinstance(beam_width, numbers.Integral):
            raise TypeError(
                f"Expected beam_width to be a Python int. Received: beam_width={beam_width!r}")
        if beam_width < 1:
            raise ValueError(
                f"Expected beam_width to be a positive int. Received: beam_width={beam_width}")
        if embedding_fn is not None and not callable(embedding_fn):
            raise TypeError(
                f"Expected embedding_fn to be callable. Received: embedding_fn={embedding_fn!r}")
        super().__init__(**kwargs)
        self._cell = cell
        self._beam_width = int(beam_width)
        self._embedding_fn = embedding_fn
        self._output_layer = output_layer
        self._length_penalty_weight = _scalar_weight("length_penalty_weight",
                                                     length_penalty_weight)
        self._coverage_penalty_weight = _scalar_weight("coverage_penalty_weight",
                                                       coverage_penalty_weight)
        self._reorder_tensor_arrays = bool(reorder_tensor_arrays)
        self._output_all_scores = bool(output_all_scores)
        self._run = None

    @property
    def cell(self):
        return self._cell

    @property
    def output_layer(self):
        return self._output_layer

    @property
    def beam_width(self):
        return self._beam_width

    @property
    def batch_size(self):
        return None if self._run is None else self._run.batch_size

    @property
    def tracks_own_finished(self):
        """`True`: the beams are reordered at every step, their finished flags with them."""
        return True

    def _rnn_output_size(self):
        size = self._cell.output_size
        if self._output_layer is None:
            return size
        shape = self._output_layer.compute_output_shape((None, size))
        return int(shape[-1])

    @property
    def output_size(self):
        scores = ([self._beam_width, self._rnn_output_size()] if self._output_all_scores
                  else [self._beam_width])
        return BeamSearchDecoderOutput(scores=scores, predicted_ids=[self._beam_width],
                                       parent_ids=[self._beam_width])

    @property
    def output_dtype(self):
        dtype = (self.compute_dtype if self._run is None
                 else keras.tree.flatten(self._run.initial_cell_state)[0].dtype)
        return BeamSearchDecoderOutput(scores=keras.backend.standardize_dtype(dtype),
                                       predicted_ids="int32", parent_ids="int32")

    # ----------------------------------------------------------------- reshapes

    def _merge_batch_beams(self, t):
        """`[batch, beam, ...]` -> `[batch * beam, ...]`."""
        if is_tensor_array(t) or rank(t) < 2:
            return t
        rest = tuple(t.shape[2:])
        if None in rest:
            rest = tuple(ops.shape(t)[2:])
        return ops.reshape(t, (-1,) + rest)

    def _split_batch_beams(self, t):
        """`[batch * beam, ...]` -> `[batch, beam, ...]`."""
        if is_tensor_array(t) or rank(t) < 1:
            return t
        batch, rows = self._run.batch_size, t.shape[0]
        if isinstance(batch, int) and rows is not None and rows != batch * self._beam_width:
            raise ValueError(
                "Unexpected behavior when reshaping between beam width and batch size. "
                f"The tensor has shape {tuple(t.shape)}; expected its first dimension to be "
                f"batch_size * beam_width = {batch} * {self._beam_width}. Perhaps you forgot "
                "to tile the initial state with tile_batch and call get_initial_state with "
                "batch_size=encoder_batch_size * beam_width?")
        rest = tuple(t.shape[1:])
        if None in rest:
            rest = tuple(ops.shape(t)[1:])
        return ops.reshape(t, (-1, self._beam_width) + rest)

    # ---------------------------------------------------------------- interface

    def initialize(self, embedding, start_tokens=None, end_token=None, initial_state=None):
        """Starts a decode.

        Args:
            embedding: `[vocab_size, depth]` matrix looked up for the inputs;
                `None` uses the constructor's `embedding_fn`.
            start_tokens: `[batch_size]` int32, the first tokens.
            end_token: int32 scalar, the token that ends a beam.
            initial_state: the cell's initial state, each tensor
                `[batch_size * beam_width, ...]` (tiled with `tile_batch`).

        Returns:
            `(finished, start_inputs, initial_state)`: `[batch_size,
            beam_width]` bool (only beam 0 live), the start tokens'
            embeddings `[batch_size, beam_width, depth]`, and a
            `BeamSearchDecoderState`.
        """
        if embedding is not None:
            embedding_fn = lambda ids: ops.take(embedding, ids, axis=0)  # noqa: E731
        elif self._embedding_fn is None:
            raise ValueError(
                "You should either pass an embedding variable when calling the "
                "BeamSearchDecoder or set embedding_fn in the constructor.")
        else:
            embedding_fn = self._embedding_fn
        start_tokens = ops.cast(ops.convert_to_tensor(start_tokens), "int32")
        if rank(start_tokens) != 1:
            raise ValueError(
                f"start_tokens must be a vector. Received: start_tokens.shape="
                f"{tuple(start_tokens.shape)}")
        end_token = ops.cast(ops.convert_to_tensor(end_token), "int32")
        if rank(end_token) != 0:
            raise ValueError(
                f"end_token must be a scalar. Received: end_token.shape={tuple(end_token.shape)}")
        if initial_state is None:
            raise ValueError("Expected initial_state to be given. Received: initial_state=None")
        batch_size = static_or_dynamic(start_tokens, 0)
        self._run = _Run(batch_size=batch_size, end_token=end_token, embedding_fn=embedding_fn)
        cell_state = keras.tree.map_structure(
            lambda t: self._split_batch_beams(
                t if is_tensor_array(t) else ops.convert_to_tensor(t)), initial_state)
        self._run.initial_cell_state = cell_state
        start_tokens = ops.repeat(start_tokens[:, None], self._beam_width, axis=1)
        start_inputs = embedding_fn(start_tokens)
        self._run.start_inputs = start_inputs

        dtype = keras.tree.flatten(cell_state)[0].dtype
        first = ops.arange(self._beam_width, dtype="int32")[None, :] == 0
        finished = ops.logical_not(ops.broadcast_to(first, (batch_size, self._beam_width)))
        log_probs = ops.where(finished, ops.full((), -np.inf, dtype), ops.zeros((), dtype))
        accumulated = attention_probs(cell_state, self._coverage_penalty_weight)
        state = BeamSearchDecoderState(
            cell_state=cell_state, log_probs=log_probs, finished=finished,
            lengths=ops.zeros((batch_size, self._beam_width), lengths_dtype()),
            accumulated_attention_probs=() if accumulated is None else accumulated)
        return finished, start_inputs, state

    def step(self, time, inputs, state, training=None):
        """One beam search step: runs the cell on every beam and keeps the best.

        Returns:
            `(BeamSearchDecoderOutput, BeamSearchDecoderState, next_inputs,
            finished)`; `next_inputs` are the start inputs once every beam
            has finished.
        """
        del time
        run = self._run
        inputs = keras.tree.map_structure(self._merge_batch_beams, inputs)
        cell_state = keras.tree.map_structure(self._merge_batch_beams, state.cell_state)
        cell_outputs, next_cell_state = self._cell(inputs, cell_state, training=training)
        cell_outputs = keras.tree.map_structure(self._split_batch_beams, cell_outputs)
        next_cell_state = keras.tree.pack_sequence_as(cell_state,
                                                      keras.tree.flatten(next_cell_state))
        next_cell_state = keras.tree.map_structure(self._split_batch_beams, next_cell_state)
        if self._output_layer is not None:
            cell_outputs = self._output_layer(cell_outputs)
        output, next_state = beam_search_step(
            cell_outputs, next_cell_state, state, run.end_token, self._length_penalty_weight,
            self._coverage_penalty_weight, self._output_all_scores)
        finished = next_state.finished
        all_finished = ops.all(finished)
        next_inputs = keras.tree.map_structure(
            lambda start, new: ops.where(all_finished, start, new),
            run.start_inputs, run.embedding_fn(output.predicted_ids))
        return output, next_state, next_inputs, finished

    def finalize(self, outputs, final_state, sequence_lengths):
        """Follows the parent ids back from the last step (`gather_tree`).

        Args:
            outputs: the time-major `BeamSearchDecoderOutput` of every step.
            final_state: the last `BeamSearchDecoderState`.
            sequence_lengths: ignored; `final_state.lengths` are used.

        Returns:
            `(FinalBeamSearchDecoderOutput, final_state)`, the cell state's
            `TensorArray`s reordered (and stacked) with `reorder_tensor_arrays`.
        """
        del sequence_lengths
        max_sequence_lengths = ops.cast(ops.max(final_state.lengths, axis=1), "int32")
        predicted_ids = gather_tree(outputs.predicted_ids, outputs.parent_ids,
                                    max_sequence_lengths, self._run.end_token)
        if self._reorder_tensor_arrays:
            final_state = final_state._replace(cell_state=keras.tree.map_structure(
                lambda t: self._maybe_sort_array_beams(t, outputs.parent_ids,
                                                       final_state.lengths),
                final_state.cell_state))
        return FinalBeamSearchDecoderOutput(predicted_ids=predicted_ids,
                                            beam_search_decoder_output=outputs), final_state

    def _maybe_sort_array_beams(self, t, parent_ids, sequence_length):
        if not is_tensor_array(t):
            return t
        shape = t.element_shape
        if shape.rank is None or shape.rank < 1:
            warnings.warn(
                "A TensorArray in the cell state cannot be reordered along the beams: its "
                f"elements need a known rank >= 1, saw shape {shape}.", stacklevel=2)
            return t
        batch = self._run.batch_size
        rows = shape[0]
        if isinstance(batch, int) and rows is not None and rows != batch * self._beam_width \
                and not (shape.rank >= 2 and rows == batch and shape[1] == self._beam_width):
            warnings.warn(
                "TensorArray reordering expects elements to be reshapable to "
                f"[batch_size, beam_width, -1] = [{batch}, {self._beam_width}, -1], which is "
                f"incompatible with the shape {shape}. Consider setting "
                "reorder_tensor_arrays to False.", stacklevel=2)
            return t
        stacked = _checked_batch_beam(t.stack(), batch, self._beam_width)
        return gather_tree_from_array(stacked, parent_ids, sequence_length)

    def build(self, input_shape=None):
        """Nothing to create: the cell, the output layer and an embedding layer build on
        their first call (or from their own build configs when a model is loaded)."""
        del input_shape

    def call(self, embedding, start_tokens=None, end_token=None, initial_state=None,
             training=None, **kwargs):
        return super().call(embedding, start_tokens=start_tokens, end_token=end_token,
                            initial_state=initial_state, training=training, **kwargs)

    def get_config(self):
        if self._embedding_fn is not None and not isinstance(self._embedding_fn,
                                                             keras.layers.Layer):
            raise NotImplementedError(
                "A BeamSearchDecoder with an embedding_fn that is not a Keras layer cannot be "
                "serialized; pass a layer (keras.layers.Embedding) or the embedding matrix "
                "at call time.")
        config = super().get_config()
        config.update({
            "cell": keras.saving.serialize_keras_object(self._cell),
            "beam_width": self._beam_width,
            "embedding_fn": keras.saving.serialize_keras_object(self._embedding_fn),
            "output_layer": keras.saving.serialize_keras_object(self._output_layer),
            "length_penalty_weight": self._length_penalty_weight,
            "coverage_penalty_weight": self._coverage_penalty_weight,
            "reorder_tensor_arrays": self._reorder_tensor_arrays,
            "output_all_scores": self._output_all_scores,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("cell", "embedding_fn", "output_layer"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
