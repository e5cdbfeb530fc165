"""`tfa.seq2seq.AttentionWrapper` as a Keras 3 RNN cell, and its state."""

import keras
from keras import ops

from seqzoo.tfa.seq2seq._common import (
    require_tensorflow,
    static_or_dynamic,
    tensorflow,
)

# TFA kept the mechanisms in its `attention_wrapper` module; code that imports them
# from there (`tfa.seq2seq.attention_wrapper.LuongAttention`) finds them here too.
from seqzoo.tfa.seq2seq.attention_mechanism import (  # noqa: F401
    AttentionMechanism,
    BahdanauAttention,
    LuongAttention,
    hardmax,
)
from seqzoo.tfa.seq2seq.monotonic import (  # noqa: F401
    BahdanauMonotonicAttention,
    LuongMonotonicAttention,
    monotonic_attention,
    safe_cumprod,
)
from seqzoo.tfa.seq2seq.wrapper_state import AttentionWrapperState, _plain


def _default_cell_input_fn(inputs, attention):
    return ops.concatenate([inputs, ops.cast(attention, inputs.dtype)], axis=-1)


def _compute_attention(attention_mechanism, cell_output, attention_state, attention_layer):
    """TFA's attention step: alignments, context, and the optional attention layer."""
    alignments, next_attention_state = attention_mechanism([cell_output, attention_state])
    values = attention_mechanism.values
    context = ops.matmul(ops.expand_dims(ops.cast(alignments, values.dtype), 1), values)[:, 0]
    if attention_layer is not None:
        attention = attention_layer(ops.concatenate([cell_output, context], axis=1))
    else:
        attention = context
    return attention, alignments, next_attention_state


def _is_rnn_cell(cell):
    return all(hasattr(cell, attr) for attr in ("output_size", "state_size", "call"))


def _batch_message(name, where):
    return (f"When {where} AttentionWrapper {name}: Non-matching batch sizes between the "
            "memory (encoder output) and the query or state. Are you using the "
            "BeamSearchDecoder? Tile the memory and the initial state with "
            "tfa.seq2seq.tile_batch(x, multiple=beam_width) and pass "
            "batch_size=batch_size * beam_width to get_initial_state.")


@keras.saving.register_keras_serializable(package="seqzoo.tfa")
class AttentionWrapper(keras.layers.Layer):
    """Wraps an RNN cell with attention, as `tfa.seq2seq.AttentionWrapper`.

    A Keras 3 RNN cell: use it step by step (`output, state = cell(x, state)`),
    inside `keras.layers.RNN`, or in a `BasicDecoder`/`BeamSearchDecoder`.
    At each step the cell input is `cell_input_fn(inputs, state.attention)`
    (concatenation by default), the cell's output queries every mechanism,
    and the contexts (through an attention layer when one is set) make the
    new attention.

    Args:
        cell: a Keras RNN cell (`LSTMCell`, `GRUCell`, `StackedRNNCells`, ...).
        attention_mechanism: an `AttentionMechanism` or a list of them.
        attention_layer_size: `None`, an int, or a list of ints (one per
            mechanism): the size of a `Dense` (no bias) applied to the
            concatenation of the cell output and each context. `None` uses
            the contexts themselves.
        alignment_history: keep every step's alignments in the state
            (TensorFlow only: a `tf.TensorArray`, as TFA).
        cell_input_fn: `f(inputs, attention) -> cell inputs`.
        output_attention: output the attention (Luong style, default) or the
            cell output (Bahdanau style).
        initial_cell_state: optional initial state of the wrapped cell used by
            `get_initial_state`.
        name: layer name.
        attention_layer: a layer or list of layers instead of
            `attention_layer_size`.
        attention_fn: `f(mechanism, cell_output, attention_state,
            attention_layer) -> (attention, alignments, next_attention_state)`.
    """

    def __init__(self, cell, attention_mechanism, attention_layer_size=None,
                 alignment_history=False, cell_input_fn=None, output_attention=True,
                 initial_cell_state=None, name=None, attention_layer=None, attention_fn=None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not _is_rnn_cell(cell):
            raise TypeError(
                "Expected `cell` to be an RNN cell (with output_size, state_size and call). "
                f"Received: cell={cell!r}")
        self._is_multi = isinstance(attention_mechanism, (list, tuple))
        mechanisms = list(attention_mechanism) if self._is_multi else [attention_mechanism]
        for i, mechanism in enumerate(mechanisms):
            if not isinstance(mechanism, AttentionMechanism):
                raise TypeError(
                    "Expected `attention_mechanism` to be an AttentionMechanism or a list of "
                    f"them. Received: attention_mechanism[{i}]={mechanism!r}")
        if attention_layer_size is not None and attention_layer is not None:
            raise ValueError("Only one of attention_layer_size and attention_layer should be set")
        if alignment_history:
            require_tensorflow(
                "alignment_history=True",
                "Read `state.alignments` after each step instead (the last step's alignments).")
        self._attention_layer_size_arg = attention_layer_size
        if attention_layer_size is not None:
            sizes = (tuple(attention_layer_size)
                     if isinstance(attention_layer_size, (list, tuple))
                     else (attention_layer_size,))
            if len(sizes) != len(mechanisms):
                raise ValueError(
                    "If provided, attention_layer_size must contain exactly one integer per "
                    f"attention_mechanism, saw: {len(sizes)} vs {len(mechanisms)}")
            self._attention_layers = [
                keras.layers.Dense(int(size), name="attention_layer", use_bias=False,
                                   dtype=kwargs.get("dtype")) for size in sizes]
        elif attention_layer is not None:
            layers = (list(attention_layer) if isinstance(attention_layer, (list, tuple))
                      else [attention_layer])
            if len(layers) != len(mechanisms):
                raise ValueError(
                    "If provided, attention_layer must contain exactly one layer per "
                    f"attention_mechanism, saw: {len(layers)} vs {len(mechanisms)}")
            self._attention_layers = layers
        else:
            self._attention_layers = None
        self._attention_fn = attention_fn or _compute_attention
        self._custom_fns = cell_input_fn is not None or attention_fn is not None
        self._cell = cell
        self._attention_mechanisms = mechanisms
        self._cell_input_fn = cell_input_fn or _default_cell_input_fn
        self._output_attention = bool(output_attention)
        self._alignment_history = bool(alignment_history)
        self._initial_cell_state = None
        if initial_cell_state is not None:
            final = keras.tree.flatten(initial_cell_state)[-1]
            self._check_batch(static_or_dynamic(final, 0), "constructing")
            self._initial_cell_state = initial_cell_state

    @property
    def cell(self):
        return self._cell

    @property
    def attention_mechanisms(self):
        return list(self._attention_mechanisms)

    @property
    def attention_layers(self):
        return list(self._attention_layers or [])

    def _mechanisms_checks(self):
        for mechanism in self._attention_mechanisms:
            if not mechanism.memory_initialized:
                raise ValueError(
                    "The AttentionMechanism instances passed to this AttentionWrapper should be "
                    "initialized with a memory first, either by passing it to the "
                    "AttentionMechanism constructor or calling attention_mechanism.setup_memory()")

    def _check_batch(self, batch_size, where):
        self._mechanisms_checks()
        for mechanism in self._attention_mechanisms:
            if (isinstance(batch_size, int) and isinstance(mechanism.batch_size, int)
                    and batch_size != mechanism.batch_size):
                raise ValueError(
                    _batch_message(self.name, where)
                    + f" Received: batch_size={batch_size}, memory batch size="
                    f"{mechanism.batch_size}")

    def _item_or_tuple(self, seq):
        t = tuple(seq)
        return t if self._is_multi else t[0]

    def _memory_depths(self):
        """Each mechanism's memory depth: known once set up or built from a saved config."""
        depths = [m.memory_depth for m in self._attention_mechanisms]
        if None in depths:
            self._mechanisms_checks()
        return depths

    def _attention_sizes(self):
        depths = self._memory_depths()
        if self._attention_layers is None:
            return depths
        cell_size = self._cell.output_size
        return [int(layer.compute_output_shape((None, cell_size + depth))[-1])
                for layer, depth in zip(self._attention_layers, depths)]

    def _get_attention_layer_size(self):
        return sum(self._attention_sizes())

    @property
    def output_size(self):
        if self._output_attention:
            return self._get_attention_layer_size()
        return self._cell.output_size

    @property
    def state_size(self):
        """An `AttentionWrapperState` of sizes, as TFA's."""
        sizes = [m.alignments_size for m in self._attention_mechanisms]
        return AttentionWrapperState(
            cell_state=_plain(self._cell.state_size),
            attention=self._get_attention_layer_size(),
            alignments=self._item_or_tuple(sizes),
            attention_state=self._item_or_tuple(sizes),
            alignment_history=self._item_or_tuple(
                size if self._alignment_history else () for size in sizes))

    def build(self, input_shape):
        depths = self._memory_depths()
        if not self._cell.built:
            attention = self._get_attention_layer_size()
            self._cell.build((input_shape[0], input_shape[-1] + attention))
        for layer, depth in zip(self._attention_layers or [], depths):
            if not layer.built:
                layer.build((None, self._cell.output_size + depth))
        self.built = True

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        """The state before the first step.

        Args:
            inputs: optional tensor whose first dimension and dtype give
                `batch_size` and `dtype`.
            batch_size: the batch size (times the beam width in a beam search).
            dtype: the dtype of the state; defaults to the layer's.

        Returns:
            An `AttentionWrapperState`.
        """
        if inputs is not None:
            batch_size = static_or_dynamic(inputs, 0)
            dtype = inputs.dtype
        if batch_size is None:
            raise ValueError("Expected `inputs` or `batch_size` to be given. Received neither.")
        dtype = dtype or self.compute_dtype
        if self._initial_cell_state is not None:
            cell_state = self._initial_cell_state
        else:
            cell_state = _cell_initial_state(self._cell, batch_size, dtype)
        self._check_batch(batch_size, "calling get_initial_state of")
        initial_alignments = [m.initial_alignments(batch_size, dtype)
                              for m in self._attention_mechanisms]
        if self._alignment_history:
            tf = tensorflow()
            history = [tf.TensorArray(dtype, size=0, dynamic_size=True,
                                      element_shape=a.shape) for a in initial_alignments]
        else:
            history = [() for _ in initial_alignments]
        return AttentionWrapperState(
            cell_state=cell_state,
            attention=ops.zeros((batch_size, self._get_attention_layer_size()), dtype=dtype),
            alignments=self._item_or_tuple(initial_alignments),
            attention_state=self._item_or_tuple(
                m.initial_state(batch_size, dtype) for m in self._attention_mechanisms),
            alignment_history=self._item_or_tuple(history))

    def call(self, inputs, states, training=None):
        state = self._as_state(states)
        cell_inputs = self._cell_input_fn(inputs, state.attention)
        cell_state = state.cell_state
        cell_output, next_cell_state = self._cell(cell_inputs, cell_state, training=training)
        next_cell_state = keras.tree.pack_sequence_as(_plain(cell_state),
                                                      keras.tree.flatten(next_cell_state))
        self._check_batch(static_or_dynamic(cell_output, 0), "applying")
        if self._is_multi:
            previous_states = state.attention_state
            previous_histories = state.alignment_history
        else:
            previous_states = [state.attention_state]
            previous_histories = [state.alignment_history]
        attentions, alignments, attention_states, histories = [], [], [], []
        for i, mechanism in enumerate(self._attention_mechanisms):
            layer = self._attention_layers[i] if self._attention_layers else None
            attention, alignment, next_attention_state = self._attention_fn(
                mechanism, cell_output, previous_states[i], layer)
            if self._alignment_history:
                history = previous_histories[i]
                history = history.write(history.size(), alignment)
            else:
                history = ()
            attentions.append(attention)
            alignments.append(alignment)
            attention_states.append(next_attention_state)
            histories.append(history)
        attention = ops.concatenate(attentions, axis=1)
        next_state = AttentionWrapperState(
            cell_state=next_cell_state,
            attention=attention,
            attention_state=self._item_or_tuple(attention_states),
            alignments=self._item_or_tuple(alignments),
            alignment_history=self._item_or_tuple(histories))
        output = attention if self._output_attention else cell_output
        if not isinstance(states, AttentionWrapperState):
            # Given flat (as keras.layers.RNN does), return the same structure.
            next_state = keras.tree.pack_sequence_as(
                states, keras.tree.flatten(next_state))
        return output, next_state

    def __call__(self, inputs, states=None, training=None, **kwargs):
        # Called directly rather than through Keras' __call__, which would
        # convert the state's TensorArrays (alignment history) to tensors.
        if states is None:
            states = kwargs.pop("state", None)
        if states is None:
            raise ValueError("Expected the AttentionWrapper to be called with (inputs, state).")
        inputs = ops.convert_to_tensor(inputs)
        if not self.built:
            self.build(tuple(inputs.shape))
        return self.call(inputs, states, training=training)

    def _as_state(self, states):
        """An `AttentionWrapperState` from one, from its five fields, or from its flat
        tensors (what `keras.layers.RNN` passes when given a flat initial state)."""
        if isinstance(states, AttentionWrapperState):
            return states
        if isinstance(states, (list, tuple)):
            template = self.state_size
            flat = keras.tree.flatten(states)
            if len(flat) == len(keras.tree.flatten(template)):
                return keras.tree.pack_sequence_as(template, flat)
            if len(states) == len(AttentionWrapperState._fields):
                return AttentionWrapperState(*states)
        raise TypeError(
            "Expected state to be instance of AttentionWrapperState or values that can "
            f"construct AttentionWrapperState. Received type {type(states)} instead.")

    def get_config(self):
        if self._custom_fns:
            raise NotImplementedError(
                "An AttentionWrapper with a custom cell_input_fn or attention_fn cannot be "
                "serialized; register the function as a Keras serializable and subclass "
                "AttentionWrapper to save it.")
        config = super().get_config()
        config.update({
            "cell": keras.saving.serialize_keras_object(self._cell),
            "attention_mechanism": keras.saving.serialize_keras_object(
                self._attention_mechanisms if self._is_multi else self._attention_mechanisms[0]),
            "attention_layer_size": self._attention_layer_size_arg,
            "alignment_history": self._alignment_history,
            "output_attention": self._output_attention,
        })
        if self._attention_layer_size_arg is None and self._attention_layers is not None:
            config["attention_layer"] = keras.saving.serialize_keras_object(
                self._attention_layers)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("cell", "attention_mechanism", "attention_layer"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)




def _cell_initial_state(cell, batch_size, dtype):
    """The wrapped cell's zero state (Keras 3 cells take no dtype; cast to `dtype`)."""
    if hasattr(cell, "get_initial_state"):
        state = cell.get_initial_state(batch_size=batch_size)
    else:
        state = keras.tree.map_structure(
            lambda size: ops.zeros((batch_size, size)), cell.state_size)
    return keras.tree.map_structure(lambda s: ops.cast(s, dtype), state)
