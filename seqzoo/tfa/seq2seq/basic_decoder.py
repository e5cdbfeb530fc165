"""`tfa.seq2seq.BasicDecoder` on Keras 3: an RNN cell, a sampler and an optional output layer."""

import collections

import keras

from seqzoo.tfa.seq2seq._common import as_list_shape
from seqzoo.tfa.seq2seq.decoder import BaseDecoder
from seqzoo.tfa.seq2seq.sampler import Sampler


class BasicDecoderOutput(collections.namedtuple("BasicDecoderOutput",
                                                ("rnn_output", "sample_id"))):
    """The outputs of a `BasicDecoder`.

    Fields:
        rnn_output: the output layer's output (else the cell's) at each step.
        sample_id: the sampler's samples at each step.
    """


def _check_cell(cell):
    # `dir`, not `hasattr`: the sizes of an AttentionWrapper need its memory, set up later.
    missing = [attr for attr in ("output_size", "state_size", "call") if attr not in dir(cell)]
    if missing:
        raise TypeError(f"The argument 'cell' ({cell!r}) is not an RNN cell: it has no "
                        f"{', '.join(missing)}.")


@keras.saving.register_keras_serializable(package="seqzoo.tfa")
class BasicDecoder(BaseDecoder):
    """Decodes with an RNN cell; the sampler turns each step's output into the next input.

    With a training sampler (`TrainingSampler`, scheduled sampling) it reads
    the given inputs:

        decoder = BasicDecoder(cell, TrainingSampler(), output_layer=Dense(V))
        outputs, state, lengths = decoder(inputs, initial_state=state,
                                          sequence_length=lengths)

    With an inference sampler it feeds its own samples back:

        decoder = BasicDecoder(cell, GreedyEmbeddingSampler(), Dense(V),
                               maximum_iterations=20)
        outputs, state, lengths = decoder(embedding_matrix, initial_state=state,
                                          start_tokens=starts, end_token=end)

    Args:
        cell: a Keras RNN cell (`LSTMCell`, `GRUCell`, `AttentionWrapper`, ...).
        sampler: a `Sampler`.
        output_layer: optional layer applied to the cell output (logits).
        **kwargs: `BaseDecoder` arguments (`maximum_iterations`,
            `impute_finished`, `output_time_major`, ...) and Layer arguments.

    Returns (of a call):
        `(BasicDecoderOutput(rnn_output [batch, time, ...], sample_id
        [batch, time, ...]), final_state, final_sequence_lengths [batch])`.
    """

    def __init__(self, cell, sampler, output_layer=None, **kwargs):
        _check_cell(cell)
        if not isinstance(sampler, Sampler):
            raise TypeError(f"Expected `sampler` to be a tfa.seq2seq Sampler. "
                            f"Received: sampler={sampler!r}")
        if output_layer is not None and not isinstance(output_layer, keras.layers.Layer):
            raise TypeError("Expected `output_layer` to be a Keras layer or None. "
                            f"Received: output_layer={output_layer!r}")
        super().__init__(**kwargs)
        self.cell = cell
        self.sampler = sampler
        self.output_layer = output_layer
        # Tracked, so that a jitted JAX function gets their states as variables.
        self._sampler_seed_generators = list(sampler.seed_generators)
        embedding_fn = getattr(sampler, "embedding_fn", None)
        self._sampler_layers = ([embedding_fn] if isinstance(embedding_fn, keras.layers.Layer)
                                else [])
        self._cell_dtype = None

    def initialize(self, inputs, initial_state=None, **kwargs):
        """`(finished, first_inputs, initial_state)`; the cell and output layer are built."""
        finished, first_inputs = self.sampler.initialize(inputs, **kwargs)
        if initial_state is None:
            initial_state = self._zero_state(self.sampler.batch_size)
        self._cell_dtype = keras.backend.standardize_dtype(
            keras.tree.flatten(initial_state)[0].dtype)
        self._build_layers(first_inputs)
        return finished, first_inputs, initial_state

    def _zero_state(self, batch_size):
        try:
            return self.cell.get_initial_state(batch_size=batch_size, dtype=self.compute_dtype)
        except TypeError:  # Keras 3 cells take no dtype
            return self.cell.get_initial_state(batch_size=batch_size)

    def _build_layers(self, first_inputs):
        if not self.cell.built:
            self.cell.build(tuple(keras.tree.flatten(first_inputs)[0].shape))
        if self.output_layer is not None and not self.output_layer.built:
            self.output_layer.build((None,) + self._cell_output_shape())
        self.built = True

    def _cell_output_shape(self):
        return tuple(as_list_shape(self.cell.output_size))

    @property
    def batch_size(self):
        return self.sampler.batch_size

    def _rnn_output_size(self):
        size = self._cell_output_shape()
        if self.output_layer is None:
            return size
        return tuple(self.output_layer.compute_output_shape((None,) + size)[1:])

    @property
    def output_size(self):
        return BasicDecoderOutput(rnn_output=self._rnn_output_size(),
                                  sample_id=self.sampler.sample_ids_shape)

    @property
    def output_dtype(self):
        dtype = self._cell_dtype or self.compute_dtype
        return BasicDecoderOutput(dtype, self.sampler.sample_ids_dtype)

    def step(self, time, inputs, state, training=None):
        """One step: `(BasicDecoderOutput, next_state, next_inputs, finished)`."""
        cell_outputs, cell_state = self.cell(inputs, state, training=training)
        cell_state = keras.tree.pack_sequence_as(state, keras.tree.flatten(cell_state))
        if self.output_layer is not None:
            cell_outputs = self.output_layer(cell_outputs)
        sample_ids = self.sampler.sample(time=time, outputs=cell_outputs, state=cell_state)
        finished, next_inputs, next_state = self.sampler.next_inputs(
            time=time, outputs=cell_outputs, state=cell_state, sample_ids=sample_ids)
        return BasicDecoderOutput(cell_outputs, sample_ids), next_state, next_inputs, finished

    def get_config(self):
        config = super().get_config()
        config.update({
            "cell": keras.saving.serialize_keras_object(self.cell),
            "sampler": keras.saving.serialize_keras_object(self.sampler),
            "output_layer": keras.saving.serialize_keras_object(self.output_layer),
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("cell", "sampler", "output_layer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
