"""`tfa.seq2seq` attention mechanisms on Keras 3: the base class, Luong and Bahdanau.

The monotonic forms are in `seqzoo.tfa.seq2seq.monotonic`.

Longer than 400 lines: the base class keeps TFA's two ways of being called
(directly, and as a layer of a functional model with the memory as an input)
and TFA's two-stage build, beside the two mechanisms with their arguments
documented.

The classes keep TFA's constructor arguments, defaults, layer names and
public attributes (`memory_layer`, `query_layer`, `attention_v`,
`attention_g`, `attention_b`, `scale_weight`, `attention_score_bias`,
`keys`, `values`, `batch_size`, `alignments_size`), so code that reads or
copies their weights keeps working. The score math is the zoo's own
(`seqzoo.layers.attention.dot_scores` / `additive_scores`).

A mechanism is stateful, as in TFA: `setup_memory(memory, ...)` (or the
`memory=` constructor argument) stores the masked memory and its keys, and
`mechanism([query, state])` returns `(alignments, next_state)`.
"""


import keras
import numpy as np
from keras import ops

from seqzoo.layers.attention import additive_scores, dot_scores
from seqzoo.layers.masking import sequence_mask
from seqzoo.tfa.seq2seq._common import check_rank, static_or_dynamic


def hardmax(logits, name=None):
    """One-hot of the argmax of `logits` along the last axis, in the logits' dtype."""
    del name
    logits = ops.convert_to_tensor(logits)
    return ops.one_hot(ops.argmax(logits, axis=-1), logits.shape[-1], dtype=logits.dtype)


def _softmax(score, _):
    return ops.softmax(score, axis=-1)


def _hardmax(score, _):
    return hardmax(score)


_PROBABILITY_FNS = {"softmax": _softmax, "hardmax": _hardmax}


def _probability_fn(name):
    if name not in _PROBABILITY_FNS:
        raise ValueError(
            f"Invalid probability function: {name!r}, options are {sorted(_PROBABILITY_FNS)}. "
            f"Received: probability_fn={name!r}")
    return _PROBABILITY_FNS[name]


def _check_units(units):
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"Expected `units` to be a positive int. Received: units={units!r}")
    return int(units)


class AttentionMechanism(keras.layers.Layer):
    """Base class of the `tfa.seq2seq` attention mechanisms.

    Args:
        memory: `[batch_size, max_time, depth]` memory to query, usually an
            encoder's outputs, or `None` to call `setup_memory` later.
        probability_fn: `f(score, state) -> alignments`.
        query_layer: optional layer applied to the query.
        memory_layer: optional layer applied to the memory to give the keys.
        memory_sequence_length: optional `[batch_size]` lengths; memory rows
            past them are zeroed and get no attention.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `[query, state]`: `query` `[batch_size, query_depth]` and
            `state` `[batch_size, max_time]`, the previous alignments. A third
            item (the processed memory, which TFA appends) is accepted and
            ignored.

    Returns:
        `(alignments, next_state)`, both `[batch_size, max_time]`.
    """

    def __init__(self, memory, probability_fn, query_layer=None, memory_layer=None,
                 memory_sequence_length=None, **kwargs):
        super().__init__(**kwargs)
        self.query_layer = query_layer
        self.memory_layer = memory_layer
        self.default_probability_fn = probability_fn
        self.probability_fn = probability_fn
        self.keys = None
        self.values = None
        self.batch_size = None
        self._alignments_size = None
        self._memory_initialized = False
        self._memory_shape = None
        self.memory_mask = None
        self._query_shape = None
        self.supports_masking = True
        if memory is not None:
            self.setup_memory(memory, memory_sequence_length)

    @property
    def memory_initialized(self):
        """`True` once a memory is set up."""
        return self._memory_initialized

    @property
    def memory_depth(self):
        """The memory's last dimension, once known (set up, or built from a saved config)."""
        if self._memory_shape is None:
            return None
        return int(self._memory_shape[-1])

    def setup_memory(self, memory, memory_sequence_length=None, memory_mask=None):
        """Stores the (masked) memory and its keys for the next queries.

        Args:
            memory: `[batch_size, max_time, depth]`.
            memory_sequence_length: optional `[batch_size]` lengths.
            memory_mask: optional `[batch_size, max_time]` bool mask; not
                together with `memory_sequence_length`.
        """
        if memory_sequence_length is not None and memory_mask is not None:
            raise ValueError(
                "memory_sequence_length and memory_mask cannot be used at same time for "
                "attention.")
        memory = ops.convert_to_tensor(memory)
        check_rank("memory", memory, (3,))
        if memory.shape[-1] is None:
            raise ValueError(
                "Expected memory to have a fully defined depth. "
                f"Received: memory.shape={tuple(memory.shape)}")
        max_time = static_or_dynamic(memory, 1)
        if memory_sequence_length is not None:
            lengths = ops.convert_to_tensor(memory_sequence_length)
            check_rank("memory_sequence_length", lengths, (1,))
            mask = sequence_mask(ops.cast(lengths, "int32"), max_time)
        elif memory_mask is not None:
            mask = ops.cast(ops.convert_to_tensor(memory_mask), "bool")
            check_rank("memory_mask", mask, (2,))
        else:
            mask = None
        self.values = memory if mask is None else memory * ops.cast(mask, memory.dtype)[:, :, None]
        self._build_for_memory(tuple(memory.shape))
        self.keys = self.memory_layer(self.values) if self.memory_layer is not None else self.values
        self.batch_size = static_or_dynamic(self.keys, 0)
        self._alignments_size = static_or_dynamic(self.keys, 1)
        self._set_mask(mask)
        self._memory_initialized = True

    def _set_mask(self, mask):
        self.memory_mask = mask
        if mask is None:
            self.probability_fn = self.default_probability_fn
        else:
            self.probability_fn = self._masked_probability_fn

    def _masked_probability_fn(self, score, prev):
        lowest = float(np.finfo(keras.backend.standardize_dtype(score.dtype)).min)
        score = ops.where(self.memory_mask, score, ops.full_like(score, lowest))
        return self.default_probability_fn(score, prev)

    def __call__(self, inputs, setup_memory=False, **kwargs):
        if setup_memory:
            if isinstance(inputs, (list, tuple)):
                if len(inputs) not in (1, 2):
                    raise ValueError(
                        f"Expect inputs to have 1 or 2 tensors, got {len(inputs)}")
                lengths = inputs[1] if len(inputs) == 2 else None
                self.setup_memory(inputs[0], lengths, kwargs.get("mask"))
            else:
                self.setup_memory(inputs, None, kwargs.get("mask"))
            return self.values
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3, 4):
            raise ValueError(
                "Expect the inputs to have query, state, and optional processed memory, got "
                f"{len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__}")
        if not self._memory_initialized and len(inputs) == 2:
            raise ValueError("Cannot query the attention before the setup of memory")
        inputs = list(inputs)
        if any(isinstance(x, keras.KerasTensor) for x in inputs[:2]):
            # A functional model: through Layer.__call__, with the memory (and its mask)
            # as inputs, so that the model records this layer, its weights and the memory.
            if len(inputs) == 2:
                inputs.append(self.values)
                if self.memory_mask is not None:
                    inputs.append(self.memory_mask)
            return super().__call__(inputs)
        return self.call(inputs)

    def call(self, inputs):
        """`(alignments, next_state)` for `[query, state]`, or `[query, state, values]` and
        `[query, state, values, mask]` (the memory as given to a functional model)."""
        query = ops.convert_to_tensor(inputs[0])
        check_rank("query", query, (2,))
        self._build_for_query(tuple(query.shape))
        if len(inputs) == 2:
            return self._calculate_attention(query, inputs[1])
        saved = self.values, self.keys, self.memory_mask
        values = inputs[2]
        if self.memory_layer is not None and not self.memory_layer.built:
            self._build_for_memory(tuple(values.shape))
        self.values = values
        self.keys = self.memory_layer(values) if self.memory_layer is not None else values
        self._set_mask(inputs[3] if len(inputs) == 4 else self.memory_mask)
        try:
            return self._calculate_attention(query, inputs[1])
        finally:
            self.values, self.keys = saved[:2]
            self._set_mask(saved[2])

    # Building: memory-side weights at setup_memory, query-side at the first query, as TFA.
    def _build_for_memory(self, memory_shape):
        if self.memory_layer is not None and not self.memory_layer.built:
            self.memory_layer.build(memory_shape)
        self._create_weights()
        self._memory_shape = [None, None, memory_shape[-1]]

    def _build_for_query(self, query_shape):
        if self.query_layer is not None and not self.query_layer.built:
            self.query_layer.build(query_shape)
        self._query_shape = [None, query_shape[-1]]
        self.built = True

    def _create_weights(self):
        """Creates the mechanism's own weights once; subclasses add theirs."""

    def build(self, input_shape=None):
        """Builds the memory side for a memory shape, the query side for `[query, state]`
        shapes (TFA's two stages)."""
        if input_shape is None:
            return
        if isinstance(input_shape[0], (list, tuple)) or input_shape[0] is None and len(
                input_shape) != 3:
            self._build_for_query(tuple(input_shape[0]))
        else:
            self._build_for_memory(tuple(input_shape))

    def get_build_config(self):
        return {"memory_shape": self._memory_shape, "query_shape": self._query_shape}

    def build_from_config(self, config):
        if config.get("memory_shape"):
            self._build_for_memory(tuple(config["memory_shape"]))
        if config.get("query_shape"):
            self._build_for_query(tuple(config["query_shape"]))

    def _calculate_attention(self, query, state):
        raise NotImplementedError("_calculate_attention need to be implemented by subclasses.")

    def compute_mask(self, inputs, mask=None):
        return None, None

    @property
    def alignments_size(self):
        """The memory's `max_time` (`None` before the memory is set up or when dynamic)."""
        return self._alignments_size if isinstance(self._alignments_size, int) else None

    @property
    def state_size(self):
        return self.alignments_size

    def initial_alignments(self, batch_size, dtype):
        """`[batch_size, max_time]` zeros: the alignments before the first step."""
        return ops.zeros((batch_size, self._alignments_size), dtype=dtype)

    def initial_state(self, batch_size, dtype):
        """The attention state before the first step (the initial alignments)."""
        return self.initial_alignments(batch_size, dtype)

    def get_config(self):
        config = super().get_config()
        for key in ("query_layer", "memory_layer"):
            layer = getattr(self, key)
            if layer is not None:
                # Without its build config, as TFA: the mechanism builds its layers itself.
                config[key] = keras.saving.serialize_keras_object(layer)
                config[key].pop("build_config", None)
        config["memory"] = None
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("query_layer", "memory_layer"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def _dense(self, kwargs, key, units, dtype):
        layer = kwargs.pop(key, None)
        return layer or keras.layers.Dense(units, name=key, use_bias=False, dtype=dtype)

    def _luong(self, query, scale):
        depth, key_units = query.shape[-1], self.keys.shape[-1]
        if depth != key_units:
            raise ValueError(
                "Incompatible or unknown inner dimensions between query and keys. "
                f"Query has units: {depth}. Keys have units: {key_units}. "
                f"Perhaps you need to set units to the keys' dimension ({key_units})?")
        score = dot_scores(ops.expand_dims(query, 1), ops.cast(self.keys, query.dtype))[:, 0]
        return score if scale is None else score * ops.cast(scale, score.dtype)

    def _bahdanau(self, query):
        processed = self.query_layer(query) if self.query_layer is not None else query
        dtype = processed.dtype  # the variables are cast as Layer.__call__ would (mixed precision)
        g = bias = None
        if self.attention_g is not None:
            g, bias = ops.cast(self.attention_g, dtype), ops.cast(self.attention_b, dtype)
        score = additive_scores(ops.expand_dims(processed, 1), ops.cast(self.keys, dtype),
                                ops.cast(self.attention_v, dtype), g=g, bias=bias)
        return score[:, 0]


def _register(cls):
    return keras.saving.register_keras_serializable(package="seqzoo.tfa")(cls)


@_register
class LuongAttention(AttentionMechanism):
    """Multiplicative attention (Luong et al., 2015), as `tfa.seq2seq.LuongAttention`.

    `score = query . (memory @ W)` with `W` the `memory_layer` (`units`,
    no bias); the query depth must equal `units`. With `scale=True` the
    score is multiplied by the trainable scalar `scale_weight` (starts at 1).

    Args:
        units: depth of the keys.
        memory, memory_sequence_length: see `AttentionMechanism`.
        scale: learn a scale of the score.
        probability_fn: `"softmax"` or `"hardmax"`.
        dtype, name: Keras layer arguments.
    """

    def __init__(self, units, memory=None, memory_sequence_length=None, scale=False,
                 probability_fn="softmax", dtype=None, name="LuongAttention", **kwargs):
        units = _check_units(units)
        fn = _probability_fn(probability_fn)
        memory_layer = self._dense(kwargs, "memory_layer", units, dtype)
        self.units = units
        self.scale = bool(scale)
        self.probability_fn_name = probability_fn
        self.scale_weight = None
        super().__init__(memory=memory, memory_sequence_length=memory_sequence_length,
                         query_layer=None, memory_layer=memory_layer, probability_fn=fn,
                         name=name, dtype=dtype, **kwargs)

    def _create_weights(self):
        if self.scale and self.scale_weight is None:
            self.scale_weight = self.add_weight(name="attention_g", shape=(), initializer="ones")

    def _calculate_attention(self, query, state):
        alignments = self.probability_fn(self._luong(query, self.scale_weight), state)
        return alignments, alignments

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale,
                "probability_fn": self.probability_fn_name}


@_register
class BahdanauAttention(AttentionMechanism):
    """Additive attention (Bahdanau et al., 2015), as `tfa.seq2seq.BahdanauAttention`.

    `score = attention_v . tanh(query_layer(query) + memory_layer(memory))`;
    with `normalize=True`, `attention_v` is weight-normalized with the scalar
    `attention_g` (starts at `sqrt(1 / units)`) and the bias `attention_b` is
    added inside the tanh.

    Args:
        units: depth of the hidden layer of the score.
        memory, memory_sequence_length: see `AttentionMechanism`.
        normalize: use the weight-normalized form.
        probability_fn: `"softmax"` or `"hardmax"`.
        kernel_initializer: initializer of `attention_v`.
        dtype, name: Keras layer arguments.
    """

    def __init__(self, units, memory=None, memory_sequence_length=None, normalize=False,
                 probability_fn="softmax", kernel_initializer="glorot_uniform", dtype=None,
                 name="BahdanauAttention", **kwargs):
        units = _check_units(units)
        fn = _probability_fn(probability_fn)
        query_layer = self._dense(kwargs, "query_layer", units, dtype)
        memory_layer = self._dense(kwargs, "memory_layer", units, dtype)
        self.units = units
        self.normalize = bool(normalize)
        self.probability_fn_name = probability_fn
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.attention_v = self.attention_g = self.attention_b = None
        super().__init__(memory=memory, memory_sequence_length=memory_sequence_length,
                         query_layer=query_layer, memory_layer=memory_layer, probability_fn=fn,
                         name=name, dtype=dtype, **kwargs)

    def _create_weights(self):
        _create_additive_weights(self)

    def _calculate_attention(self, query, state):
        alignments = self.probability_fn(self._bahdanau(query), state)
        return alignments, alignments

    def get_config(self):
        return {**super().get_config(), "units": self.units, "normalize": self.normalize,
                "probability_fn": self.probability_fn_name,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


def _create_additive_weights(mechanism):
    if mechanism.attention_v is None:
        mechanism.attention_v = mechanism.add_weight(
            name="attention_v", shape=(mechanism.units,),
            initializer=mechanism.kernel_initializer)
    if mechanism.normalize and mechanism.attention_g is None:
        mechanism.attention_g = mechanism.add_weight(
            name="attention_g", shape=(),
            initializer=keras.initializers.Constant(float(np.sqrt(1.0 / mechanism.units))))
        mechanism.attention_b = mechanism.add_weight(
            name="attention_b", shape=(mechanism.units,), initializer="zeros")
