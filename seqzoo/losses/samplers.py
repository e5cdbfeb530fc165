"""Candidate samplers for the sampled softmax.

Fixed-shape versions of TF's `log_uniform_candidate_sampler` and
`uniform_candidate_sampler` on `keras.random` and `keras.ops`, so that they
run under `jit` on every backend.
"""

import functools
import math

import keras
import numpy as np
from keras import ops

from seqzoo.checks import check_positive_int
from seqzoo.errors import ArgumentError

SAMPLERS = ("log_uniform", "uniform")



def _check_sampler(sampler):
    if sampler not in SAMPLERS:
        raise ArgumentError(
            f"`sampler` must be one of {SAMPLERS}. Received: sampler={sampler!r}"
        )


def _check_seed(seed):
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentError(
            "`seed` must be None, an int or a `keras.random.SeedGenerator`. "
            f"Received: seed={seed!r}"
        )


def _class_probs(sampler, classes, range_max):
    """P(k) of each id in `classes`, float32 tensor of the same shape."""
    k = ops.cast(classes, "float32")
    if sampler == "uniform":
        return ops.full(ops.shape(k), 1.0 / range_max, dtype="float32")
    # log(k + 2) - log(k + 1), written so that large ids keep their digits.
    return ops.log1p(1.0 / (k + 1.0)) / math.log(range_max + 1.0)


def _np_probs(sampler, range_max):
    if sampler == "uniform":
        return np.full(range_max, 1.0 / range_max)
    k = np.arange(range_max, dtype=np.float64)
    return np.log1p(1.0 / (k + 1.0)) / np.log(range_max + 1.0)


@functools.lru_cache(maxsize=64)
def effective_num_tries(sampler, range_max, num_sampled):
    """Number of i.i.d. draws whose expected number of distinct ids is `num_sampled`.

    Solves `sum_k 1 - (1 - P(k)) ** n = num_sampled` for `n` (Newton's method
    from `n = num_sampled`; the left side is increasing and concave in `n`,
    so the iterates rise monotonically to the root). Depends only on the
    static sampler configuration, so it is computed once in numpy.

    Args:
        sampler: `"log_uniform"` or `"uniform"`.
        range_max: number of classes.
        num_sampled: number of distinct candidates drawn.

    Returns:
        A Python float `n >= num_sampled`; `inf` when
        `num_sampled >= range_max` (every class is drawn).
    """
    _check_sampler(sampler)
    if num_sampled >= range_max:
        return math.inf
    if sampler == "uniform":
        return math.log1p(-num_sampled / range_max) / math.log1p(-1.0 / range_max)
    log_q = np.log1p(-_np_probs(sampler, range_max))
    n = float(num_sampled)
    for _ in range(200):
        q_n = np.exp(n * log_q)
        excess = np.sum(-np.expm1(n * log_q)) - num_sampled
        step = excess / np.sum(-log_q * q_n)
        n -= step
        if abs(step) <= 1e-12 * n:
            break
    return float(n)


def _expected_count(sampler, classes, num_sampled, range_max, unique):
    probs = _class_probs(sampler, classes, range_max)
    if not unique:
        return num_sampled * probs
    num_tries = effective_num_tries(sampler, range_max, num_sampled)
    if math.isinf(num_tries):
        return ops.ones_like(probs)
    return -ops.expm1(num_tries * ops.log1p(-probs))


def _draw(sampler, num_sampled, range_max, unique, seed):
    if unique:
        # Gumbel top-k: the top `num_sampled` of log P(k) + Gumbel noise are
        # distributed exactly as `num_sampled` successive draws without
        # replacement, which is also the law of the first `num_sampled`
        # distinct ids of an i.i.d. stream (what TF's rejection sampler keeps).
        if sampler == "uniform":
            scores = keras.random.uniform((range_max,), seed=seed)
        else:
            k = ops.arange(range_max, dtype="float32")
            tiny = float(np.finfo("float32").tiny)
            u = keras.random.uniform((range_max,), minval=tiny, seed=seed)
            scores = ops.log(ops.log1p(1.0 / (k + 1.0))) - ops.log(-ops.log(u))
        _, ids = ops.top_k(scores, num_sampled)
        return ops.cast(ids, "int32")
    if sampler == "uniform":
        return keras.random.randint((num_sampled,), 0, range_max, seed=seed)
    # Inverse CDF of the log-uniform distribution, as TF's sampler.
    u = keras.random.uniform((num_sampled,), seed=seed)
    ids = ops.floor(ops.exp(u * math.log(range_max + 1.0))) - 1.0
    return ops.cast(ops.clip(ids, 0, range_max - 1), "int32")


def _candidate_sampler(
    sampler, true_classes, num_sampled, range_max, unique, seed
):
    num_sampled = check_positive_int("num_sampled", num_sampled)
    range_max = check_positive_int("range_max", range_max)
    _check_seed(seed)
    if unique and num_sampled > range_max:
        raise ArgumentError(
            "With `unique=True`, `num_sampled` cannot exceed `range_max`. "
            f"Received: num_sampled={num_sampled}, range_max={range_max}"
        )
    true_classes = ops.convert_to_tensor(true_classes)
    if len(true_classes.shape) != 2:
        raise ArgumentError(
            "`true_classes` must have the shape `[batch_size, num_true]`. "
            f"Received: true_classes.shape={tuple(true_classes.shape)}"
        )
    sampled = _draw(sampler, num_sampled, range_max, unique, seed)
    true_expected = _expected_count(
        sampler, true_classes, num_sampled, range_max, unique
    )
    sampled_expected = _expected_count(
        sampler, sampled, num_sampled, range_max, unique
    )
    return (
        ops.stop_gradient(sampled),
        ops.stop_gradient(true_expected),
        ops.stop_gradient(sampled_expected),
    )


_SAMPLER_DOC = """

    Every draw is over `[0, range_max)`. The expected counts estimate how
    often each id appears in the draw and are what the sampled softmax
    subtracts (in log space) from the logits.

    - `unique=False`: `num_sampled` i.i.d. draws; the expected count of id
      `k` is exactly `num_sampled * P(k)`, as in TF.
    - `unique=True`: `num_sampled` distinct ids, drawn without replacement
      with a fixed shape (Gumbel top-k over `log P`, O(range_max) work). This
      has the same law as TF's sampler, which redraws until it holds
      `num_sampled` distinct ids, but there is no random number of tries
      `num_tries` to plug into TF's expected count
      `-expm1(num_tries * log1p(-P(k)))`. That formula is used with the
      effective number of tries `n` that solves
      `sum_k -expm1(n * log1p(-P(k))) = num_sampled` (see
      `effective_num_tries`), so the expected counts sum to `num_sampled`
      as the true inclusion probabilities do. For the uniform sampler this is
      exactly `num_sampled / range_max`; for the log-uniform one it is the
      usual approximation of inclusion probabilities under sampling without
      replacement. When `num_sampled == range_max` every count is 1.

    Args:
        true_classes: int tensor of shape `[batch_size, num_true]`, the target
            classes (only used for their expected counts).
        num_sampled: int, the number of candidates to draw.
        range_max: int, the number of classes.
        unique: whether the candidates are distinct (sampled without
            replacement).
        seed: None, an int, or a `keras.random.SeedGenerator`. An int gives
            the same draw at every call; a `SeedGenerator` advances (inside
            a compiled JAX function it must be one a Keras layer owns, so
            that the trainer carries its state).

    Returns:
        A tuple `(sampled_candidates, true_expected_count,
        sampled_expected_count)` of shapes `[num_sampled]` (int32),
        `[batch_size, num_true]` and `[num_sampled]` (float32), with gradients
        stopped.

    Raises:
        ValueError: if `num_sampled` or `range_max` is not a positive int,
            `num_sampled > range_max` with `unique=True`, or `true_classes` is
            not rank 2.
    """


def log_uniform_candidate_sampler(
    true_classes, num_sampled, range_max, unique=True, seed=None
):
    return _candidate_sampler(
        "log_uniform", true_classes, num_sampled, range_max, unique, seed
    )


log_uniform_candidate_sampler.__doc__ = (
    """Samples candidates from the log-uniform (Zipfian) distribution.

    `P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)`, as TF's
    `tf.random.log_uniform_candidate_sampler`; it suits vocabularies sorted
    by decreasing frequency."""
    + _SAMPLER_DOC
)


def uniform_candidate_sampler(
    true_classes, num_sampled, range_max, unique=True, seed=None
):
    return _candidate_sampler(
        "uniform", true_classes, num_sampled, range_max, unique, seed
    )


uniform_candidate_sampler.__doc__ = (
    """Samples candidates uniformly: `P(k) = 1 / range_max`."""
    + _SAMPLER_DOC
)
