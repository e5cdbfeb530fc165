"""Attention mechanisms for the seq2seq decoders: Luong and Bahdanau.

The replacement for `tfa.seq2seq.LuongAttention` / `BahdanauAttention`, on
`keras.ops`. A mechanism splits its work in two so a decoder pays for the
memory only once per sequence:

- `compute_keys(memory)`: everything that depends on the memory alone.
- `attend(query, keys, values, mask)`: per decoder step (`[B, Q]` query) or
  for all steps at once (`[B, T, Q]` query, the fused decoder path).

Scores, softmax and context are computed in float32 whatever the compute
dtype. Padded memory positions get exactly zero weight; a row whose memory is
all padding gets zero weights and a zero context (no NaN values or gradients).
"""

import math

import keras
from keras import ops

from seqzoo.checks import check_positive_int
from seqzoo.errors import ArgumentError

LUONG_SCORES = ("dot", "general", "scaled")

# Finite (not -inf) so a fully padded row gives a uniform softmax that the mask
# then zeroes, instead of 0/0 = NaN in the values and the gradients.
_MASKED_SCORE = -1e9


def _check_units(value, allow_none=False):
    check_positive_int("units", value, allow_none=allow_none)


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ArgumentError(f"Expected {name} to be a bool. Received: {name}={value!r}")


def dot_scores(query, keys):
    """Multiplicative scores `query . key`: `[B, T, D]`, `[B, S, D]` -> `[B, T, S]`.

    Shared by `LuongAttention` and the `seqzoo.tfa.seq2seq` Luong mechanisms.
    """
    return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))


def additive_scores(processed_query, keys, v, g=None, bias=None, extra=None):
    """Additive scores `v . tanh(q + k (+ b))`: `[B, T, U]`, `[B, S, U]` -> `[B, T, S]`.

    With `g` given, `v` is weight-normalized to `g * v / ||v||` (Salimans and
    Kingma, 2016). `extra`, broadcastable to `[B, T, S, U]`, is added inside
    the tanh (coverage). Shared by `BahdanauAttention` and the
    `seqzoo.tfa.seq2seq` Bahdanau mechanisms.
    """
    hidden = ops.expand_dims(processed_query, 2) + ops.expand_dims(keys, 1)
    if extra is not None:
        hidden = hidden + extra
    if bias is not None:
        hidden = hidden + bias
    if g is not None:
        v = g * v / ops.sqrt(ops.sum(ops.square(v)))
    return ops.sum(ops.tanh(hidden) * v, axis=-1)


def _softmax(scores):
    # Written out: a one-word source gives a softmax over a single position,
    # which is right here but makes keras.ops.softmax warn at every call.
    exp = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
    return exp / ops.sum(exp, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="seqzoo")
class BaseAttention(keras.layers.Layer):
    """Base class of the attention mechanisms: masked softmax over memory positions.

    Subclasses implement `compute_keys` (memory-only precomputation) and
    `score` (query against keys); this class does the masking, the softmax
    and the context, for one decoder step or for all steps at once.

    Call arguments:
        query: `[B, Q]` (one decoder step) or `[B, T, Q]` (all steps).
        memory: `[B, S, M]` encoder outputs.
        mask: optional `[B, S]` bool, `True` on real memory positions. When
            `None`, `memory_mask` is used, which Keras fills in from the
            mask attached to `memory` (e.g. by `TokenEmbedding` and the RNNs
            after it).
        memory_mask: the same as `mask`; `mask` wins when both are given.

    Coverage (Tu et al., 2016): with `coverage=True` the layer also takes the
    sum of the attention weights of the previous decoder steps, `[B, S]`,
    and learns how much it changes the scores (a scalar weight for Luong,
    a vector inside the tanh for Bahdanau; both start at 0). A decoder can
    then avoid attending twice to what it has already used.

    Returns:
        A tuple `(context, weights)`: `context` is `[B, M]` or `[B, T, M]`
        in the memory's dtype; `weights` is `[B, S]` or `[B, T, S]` float32.
        The outputs carry no Keras mask.
    """

    def __init__(self, coverage=False, **kwargs):
        super().__init__(**kwargs)
        _check_bool("coverage", coverage)
        self.coverage = coverage
        self.query_size = None
        self.memory_size = None

    def build(self, query_shape, memory_shape):
        query_size, memory_size = query_shape[-1], memory_shape[-1]
        if query_size is None or memory_size is None:
            raise ArgumentError(
                "Expected the last dimensions of query and memory to be known. "
                f"Received: query_shape={tuple(query_shape)}, memory_shape={tuple(memory_shape)}"
            )
        self.query_size = int(query_size)
        self.memory_size = int(memory_size)

    def compute_keys(self, memory):
        """What the score needs from the memory alone, computed once per sequence.

        Args:
            memory: `[B, S, M]` encoder outputs.

        Returns:
            Keys of shape `[B, S, K]`, to pass to `attend`.
        """
        raise NotImplementedError

    def score(self, query, keys, coverage=None):
        """Unnormalized scores: `[B, T, Q]` float32 query, keys -> `[B, T, S]` float32.

        `coverage`, when the layer uses it, is `[B, 1, S]` float32.
        """
        raise NotImplementedError

    def attend(self, query, keys, values, mask=None, coverage=None):
        """Attends with precomputed keys.

        Args:
            query: `[B, Q]` or `[B, T, Q]`.
            keys: `[B, S, K]` from `compute_keys(values)`.
            values: `[B, S, M]`, the memory.
            mask: optional `[B, S]` bool, `True` on real memory positions.
            coverage: `[B, S]` summed previous weights; required by, and only
                accepted by, a layer built with `coverage=True` and a 2-D query.

        Returns:
            `(context, weights)`: `[B, M]` and `[B, S]` for a 2-D query,
            `[B, T, M]` and `[B, T, S]` for a 3-D one. `weights` is float32.
        """
        self._check_built()
        rank = len(query.shape)
        if rank not in (2, 3):
            raise ArgumentError(
                "Expected a query of shape [B, Q] or [B, T, Q]. "
                f"Received: query.shape={tuple(query.shape)}"
            )
        # A 2-D query is a 3-D one with T = 1, so the step path and the fused
        # path run the same computation.
        q = ops.cast(query, "float32")
        if rank == 2:
            q = ops.expand_dims(q, 1)
        if self.coverage:
            if coverage is None or rank != 2:
                raise ArgumentError(
                    "An attention layer with coverage=True attends one step at a time "
                    "and needs the coverage of the previous steps. Received: "
                    f"query.shape={tuple(query.shape)}, coverage={coverage is not None}")
            coverage = ops.expand_dims(ops.cast(coverage, "float32"), 1)
        scores = self.score(q, keys, coverage)  # [B, T, S]
        if mask is None:
            weights = _softmax(scores)
        else:
            real = ops.expand_dims(ops.cast(mask, "bool"), 1)  # [B, 1, S]
            scores = ops.where(real, scores, ops.cast(_MASKED_SCORE, "float32"))
            weights = _softmax(scores) * ops.cast(real, "float32")
        context = ops.matmul(weights, ops.cast(values, "float32"))  # [B, T, M]
        if rank == 2:
            weights = ops.squeeze(weights, 1)
            context = ops.squeeze(context, 1)
        return ops.cast(context, values.dtype), weights

    def call(self, query, memory, mask=None, memory_mask=None):
        if mask is None:
            mask = memory_mask
        return self.attend(query, self.compute_keys(memory), memory, mask)

    def compute_mask(self, query, previous_mask=None):
        return None

    def compute_output_shape(self, query_shape, memory_shape):
        batch_and_steps = tuple(query_shape[:-1])
        return (
            batch_and_steps + (memory_shape[-1],),
            batch_and_steps + (memory_shape[1],),
        )

    def _build_coverage(self, shape):
        if self.coverage:
            self.coverage_weight = self.add_weight(
                name="coverage_weight", shape=shape, initializer="zeros")

    def get_config(self):
        return {**super().get_config(), "coverage": self.coverage}

    def _check_built(self):
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built. Call it on (query, memory) or call "
                "build(query_shape, memory_shape) before compute_keys/attend."
            )


@keras.saving.register_keras_serializable(package="seqzoo")
class LuongAttention(BaseAttention):
    """Multiplicative attention (Luong et al., 2015).

    The score of memory position `s` for query `q`:

    - `"dot"`: `q . m_s` (query and memory must have the same size);
    - `"general"`: `q . (W m_s)` with `W` of shape `[M, Q]`, so query and
      memory sizes may differ (`compute_keys` returns `memory @ W`);
    - `"scaled"`: `q . m_s / sqrt(Q)`, as in scaled dot-product attention
      (same sizes, like `"dot"`).

    With `learned_scale=True` the score is multiplied by a trainable scalar
    `g` initialised to 1 (`scale=True` in `tfa.seq2seq.LuongAttention`).

    Args:
        units: the query size `Q`. `None` takes it from the query; when
            given, a query of another size is an error (as in tfa, where
            `units` must match the query depth).
        score: `"dot"`, `"general"` or `"scaled"`.
        learned_scale: multiply the score by a trainable scalar.

    Call arguments:
        query: `[B, Q]` or `[B, T, Q]`.
        memory: `[B, S, M]`.
        mask: optional `[B, S]` bool, `True` on real memory positions.
        memory_mask: see `BaseAttention`.

    Returns:
        `(context, weights)`: `[B, M]` and `[B, S]` (2-D query) or
        `[B, T, M]` and `[B, T, S]` (3-D query).
    """

    def __init__(self, units=None, score="general", learned_scale=False, **kwargs):
        super().__init__(**kwargs)
        _check_units(units, allow_none=True)
        if score not in LUONG_SCORES:
            raise ArgumentError(
                f"Expected score to be one of {list(LUONG_SCORES)}. Received: score={score!r}"
            )
        _check_bool("learned_scale", learned_scale)
        self.units = units
        self.score_mode = score
        self.learned_scale = learned_scale
        self.kernel = None
        self.scale = None

    def build(self, query_shape, memory_shape):
        super().build(query_shape, memory_shape)
        if self.units is not None and self.query_size != self.units:
            raise ArgumentError(
                f"Expected a query of size units={self.units}. "
                f"Received: query size={self.query_size}"
            )
        if self.score_mode != "general" and self.query_size != self.memory_size:
            raise ArgumentError(
                f"score={self.score_mode!r} needs query and memory of the same size; "
                "use score='general' for different sizes. "
                f"Received: query size={self.query_size}, memory size={self.memory_size}"
            )
        if self.score_mode == "general":
            self.kernel = self.add_weight(
                name="kernel", shape=(self.memory_size, self.query_size),
                initializer="glorot_uniform")
        if self.learned_scale:
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        self._build_coverage(())
        self.built = True

    def compute_keys(self, memory):
        """`memory @ W` (`[B, S, Q]`) for `"general"`, the memory itself otherwise."""
        self._check_built()
        if self.score_mode == "general":
            return ops.matmul(memory, ops.cast(self.kernel, memory.dtype))
        return memory

    def score(self, query, keys, coverage=None):
        scores = dot_scores(query, ops.cast(keys, "float32"))
        if self.score_mode == "scaled":
            scores = scores * (1.0 / math.sqrt(self.query_size))
        if self.learned_scale:
            scores = scores * ops.cast(self.scale, "float32")
        if coverage is not None:
            scores = scores + coverage * ops.cast(self.coverage_weight, "float32")
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {"units": self.units, "score": self.score_mode, "learned_scale": self.learned_scale}
        )
        return config


@keras.saving.register_keras_serializable(package="seqzoo")
class BahdanauAttention(BaseAttention):
    """Additive attention (Bahdanau et al., 2015).

    The score of memory position `s` for query `q` is
    `v . tanh(W_q q + W_m m_s)`; `compute_keys` returns `memory @ W_m`, so
    each step only projects its query.

    With `normalize=True` it is the weight-normalized form of
    `tfa.seq2seq.BahdanauAttention(normalize=True)` (Salimans and Kingma,
    2016): `v` is replaced by `g * v / ||v||` with a trainable scalar `g`
    initialised to `sqrt(1 / units)`, and a trainable bias `b` (zeros) is
    added inside the tanh.

    Args:
        units: size of the hidden layer of the score, `> 0`.
        normalize: use the weight-normalized form.

    Call arguments:
        query: `[B, Q]` or `[B, T, Q]`.
        memory: `[B, S, M]`.
        mask: optional `[B, S]` bool, `True` on real memory positions.
        memory_mask: see `BaseAttention`.

    Returns:
        `(context, weights)`: `[B, M]` and `[B, S]` (2-D query) or
        `[B, T, M]` and `[B, T, S]` (3-D query).
    """

    def __init__(self, units, normalize=False, **kwargs):
        super().__init__(**kwargs)
        _check_units(units)
        _check_bool("normalize", normalize)
        self.units = units
        self.normalize = normalize
        self.query_kernel = None
        self.memory_kernel = None
        self.v = None
        self.g = None
        self.bias = None

    def build(self, query_shape, memory_shape):
        super().build(query_shape, memory_shape)
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(self.query_size, self.units),
            initializer="glorot_uniform")
        self.memory_kernel = self.add_weight(
            name="memory_kernel", shape=(self.memory_size, self.units),
            initializer="glorot_uniform")
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        if self.normalize:
            self.g = self.add_weight(
                name="g", shape=(),
                initializer=keras.initializers.Constant(math.sqrt(1.0 / self.units)))
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self._build_coverage((self.units,))
        self.built = True

    def compute_keys(self, memory):
        """`memory @ W_m`: `[B, S, M]` -> `[B, S, units]`."""
        self._check_built()
        return ops.matmul(memory, ops.cast(self.memory_kernel, memory.dtype))

    def score(self, query, keys, coverage=None):
        processed = ops.matmul(query, ops.cast(self.query_kernel, "float32"))  # [B, T, U]
        extra = None
        if coverage is not None:
            extra = ops.expand_dims(coverage, -1) * ops.cast(self.coverage_weight, "float32")
        g = bias = None
        if self.normalize:
            g, bias = ops.cast(self.g, "float32"), ops.cast(self.bias, "float32")
        return additive_scores(processed, ops.cast(keys, "float32"),
                               ops.cast(self.v, "float32"), g=g, bias=bias, extra=extra)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "normalize": self.normalize})
        return config
