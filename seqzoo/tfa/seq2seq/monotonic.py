"""`tfa.seq2seq`'s monotonic attention: `safe_cumprod`, `monotonic_attention`, and the
Bahdanau and Luong monotonic mechanisms (Raffel et al., 2017).

The mechanisms keep TFA's arguments, defaults, weight names and attributes
(`attention_score_bias`, and those of `BahdanauAttention`/`LuongAttention`),
and start with all attention on the first memory entry.
"""

import functools

import keras
import numpy as np
from keras import ops

from seqzoo.tfa.seq2seq.attention_mechanism import (
    AttentionMechanism,
    _check_units,
    _create_additive_weights,
    _register,
)


def _shift(x, axis, fill, reverse):
    """Shifts `x` one step along `axis` (backward with `reverse`), filling with `fill`."""
    size = x.shape[axis]
    body = [slice(None)] * len(x.shape)
    body[axis] = slice(0, 1)
    edge = ops.full_like(x[tuple(body)], fill)
    if reverse:
        body[axis] = slice(1, size)
        return ops.concatenate([x[tuple(body)], edge], axis=axis)
    body[axis] = slice(0, size - 1 if size is not None else -1)
    return ops.concatenate([edge, x[tuple(body)]], axis=axis)


def _cumulative(op, x, axis=0, exclusive=False, reverse=False, fill=0.0):
    """`tf.cumsum`/`tf.math.cumprod` with TF's `exclusive` and `reverse` flags."""
    if reverse:
        x = ops.flip(x, axis=axis)
    out = op(x, axis=axis)
    if exclusive:
        out = _shift(out, axis, fill, reverse=False)
    if reverse:
        out = ops.flip(out, axis=axis)
    return out


def _cumsum(x, axis=0, exclusive=False, reverse=False):
    return _cumulative(ops.cumsum, x, axis, exclusive, reverse, fill=0.0)


def _cumprod(x, axis=0, exclusive=False, reverse=False):
    return _cumulative(ops.cumprod, x, axis, exclusive, reverse, fill=1.0)


def safe_cumprod(x, *args, **kwargs):
    """Cumulative product computed as `exp(cumsum(log(x)))`, safe from underflow.

    Takes the arguments of `tf.cumsum` after `x`: `axis=0`, `exclusive=False`,
    `reverse=False`. Values are clipped to `[tiny, 1]` before the log.
    """
    x = ops.convert_to_tensor(x)
    tiny = float(np.finfo(keras.backend.standardize_dtype(x.dtype)).tiny)
    return ops.exp(_cumsum(ops.log(ops.clip(x, tiny, 1.0)), *args, **kwargs))


def monotonic_attention(p_choose_i, previous_attention, mode):
    """Expected monotonic alignments from choosing probabilities (Raffel et al., 2017).

    Args:
        p_choose_i: `[batch_size, memory_time]` probabilities of choosing
            each memory entry (0 or 1 for `mode="hard"`).
        previous_attention: `[batch_size, memory_time]` alignments of the
            previous step; one-hot on the first entry at the first step.
        mode: `"recursive"` (exact, a scan over memory time),
            `"parallel"` (cumulative products, may lose precision when some
            `p_choose_i` are close to 1) or `"hard"` (0/1 choices).

    Returns:
        `[batch_size, memory_time]` alignments.
    """
    p_choose_i = ops.convert_to_tensor(p_choose_i)
    previous_attention = ops.cast(ops.convert_to_tensor(previous_attention), p_choose_i.dtype)
    if mode == "recursive":
        shifted = _shift(1.0 - p_choose_i, axis=1, fill=1.0, reverse=False)

        def step(carry, xs):
            one_minus_p, prev = xs
            carry = one_minus_p * carry + prev
            return carry, carry

        init = ops.zeros_like(p_choose_i[:, 0])
        _, q = ops.scan(step, init, (ops.transpose(shifted), ops.transpose(previous_attention)))
        return p_choose_i * ops.transpose(q)
    if mode == "parallel":
        cumprod_1mp = safe_cumprod(1.0 - p_choose_i, axis=1, exclusive=True)
        return p_choose_i * cumprod_1mp * ops.cumsum(
            previous_attention / ops.clip(cumprod_1mp, 1e-10, 1.0), axis=1)
    if mode == "hard":
        p_choose_i = p_choose_i * ops.cumsum(previous_attention, axis=1)
        return p_choose_i * _cumprod(1.0 - p_choose_i, axis=1, exclusive=True)
    raise ValueError(f"mode must be 'recursive', 'parallel', or 'hard'. Received: mode={mode!r}")


def _check_mode(mode):
    if mode not in ("recursive", "parallel", "hard"):
        raise ValueError(
            f"mode must be 'recursive', 'parallel', or 'hard'. Received: mode={mode!r}")
    return mode


def _monotonic_probability_fn(score, previous_alignments, sigmoid_noise, mode, seed=None):
    if sigmoid_noise > 0:
        score = score + sigmoid_noise * keras.random.normal(
            ops.shape(score), dtype=score.dtype, seed=seed)
    if mode == "hard":
        p_choose_i = ops.cast(score > 0, score.dtype)
    else:
        p_choose_i = ops.sigmoid(score)
    return monotonic_attention(p_choose_i, previous_alignments, mode)


class _BaseMonotonicAttentionMechanism(AttentionMechanism):
    """Monotonic mechanisms start with all attention on the first memory entry."""

    def _monotonic_init(self, units, sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode):
        self.units = units
        self.sigmoid_noise = float(sigmoid_noise)
        self.sigmoid_noise_seed = sigmoid_noise_seed
        self.score_bias_init = float(score_bias_init)
        self.mode = _check_mode(mode)
        seed = None
        if self.sigmoid_noise > 0:
            seed = keras.random.SeedGenerator(sigmoid_noise_seed)
        return functools.partial(_monotonic_probability_fn, sigmoid_noise=self.sigmoid_noise,
                                 mode=mode, seed=seed)

    def _create_score_bias(self):
        if self.attention_score_bias is None:
            self.attention_score_bias = self.add_weight(
                name="attention_score_bias", shape=(),
                initializer=keras.initializers.Constant(self.score_bias_init))

    def initial_alignments(self, batch_size, dtype):
        return ops.one_hot(ops.zeros((batch_size,), dtype="int32"), self._alignments_size,
                           dtype=dtype)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "sigmoid_noise": self.sigmoid_noise,
                "sigmoid_noise_seed": self.sigmoid_noise_seed,
                "score_bias_init": self.score_bias_init, "mode": self.mode}


@_register
class BahdanauMonotonicAttention(_BaseMonotonicAttentionMechanism):
    """Monotonic additive attention, as `tfa.seq2seq.BahdanauMonotonicAttention`.

    The Bahdanau score plus the trainable scalar `attention_score_bias`
    (starts at `score_bias_init`) gives, through a sigmoid (a step for
    `mode="hard"`), the probability of stopping at each memory entry;
    `monotonic_attention` turns those into alignments.

    Args:
        units, memory, memory_sequence_length, normalize, kernel_initializer:
            as `BahdanauAttention`.
        sigmoid_noise: standard deviation of the noise added to the score
            before the sigmoid (training only helps it become discrete).
        sigmoid_noise_seed: seed of that noise.
        score_bias_init: initial `attention_score_bias`.
        mode: `"parallel"`, `"recursive"` or `"hard"`, see `monotonic_attention`.
    """

    def __init__(self, units, memory=None, memory_sequence_length=None, normalize=False,
                 sigmoid_noise=0.0, sigmoid_noise_seed=None, score_bias_init=0.0,
                 mode="parallel", kernel_initializer="glorot_uniform", dtype=None,
                 name="BahdanauMonotonicAttention", **kwargs):
        units = _check_units(units)
        fn = self._monotonic_init(units, sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode)
        query_layer = self._dense(kwargs, "query_layer", units, dtype)
        memory_layer = self._dense(kwargs, "memory_layer", units, dtype)
        self.normalize = bool(normalize)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.attention_v = self.attention_g = self.attention_b = None
        self.attention_score_bias = None
        super().__init__(memory=memory, memory_sequence_length=memory_sequence_length,
                         query_layer=query_layer, memory_layer=memory_layer, probability_fn=fn,
                         name=name, dtype=dtype, **kwargs)

    def _create_weights(self):
        if self.attention_v is None:
            self.attention_v = self.add_weight(
                name="attention_v", shape=(self.units,), initializer=self.kernel_initializer)
        self._create_score_bias()
        _create_additive_weights(self)

    def _calculate_attention(self, query, state):
        score = self._bahdanau(query) + ops.cast(self.attention_score_bias, query.dtype)
        alignments = self.probability_fn(score, state)
        return alignments, alignments

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@_register
class LuongMonotonicAttention(_BaseMonotonicAttentionMechanism):
    """Monotonic multiplicative attention, as `tfa.seq2seq.LuongMonotonicAttention`.

    The Luong score (times the scalar `attention_g` when `scale=True`) plus
    `attention_score_bias` feeds `monotonic_attention` as in
    `BahdanauMonotonicAttention`.

    Args:
        units, memory, memory_sequence_length, scale: as `LuongAttention`.
        sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode: as
            `BahdanauMonotonicAttention`.
    """

    def __init__(self, units, memory=None, memory_sequence_length=None, scale=False,
                 sigmoid_noise=0.0, sigmoid_noise_seed=None, score_bias_init=0.0,
                 mode="parallel", dtype=None, name="LuongMonotonicAttention", **kwargs):
        units = _check_units(units)
        fn = self._monotonic_init(units, sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode)
        memory_layer = self._dense(kwargs, "memory_layer", units, dtype)
        self.scale = bool(scale)
        self.attention_g = None
        self.attention_score_bias = None
        super().__init__(memory=memory, memory_sequence_length=memory_sequence_length,
                         query_layer=None, memory_layer=memory_layer, probability_fn=fn,
                         name=name, dtype=dtype, **kwargs)

    def _create_weights(self):
        if self.scale and self.attention_g is None:
            self.attention_g = self.add_weight(name="attention_g", shape=(), initializer="ones")
        self._create_score_bias()

    def _calculate_attention(self, query, state):
        score = self._luong(query, self.attention_g)
        score = score + ops.cast(self.attention_score_bias, score.dtype)
        alignments = self.probability_fn(score, state)
        return alignments, alignments

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
