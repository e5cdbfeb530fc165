"""Tests for the candidate samplers of seqzoo.losses.sampled_softmax."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.losses import (
    effective_num_tries,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from tests.helpers import BACKEND

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

SAMPLERS = {
    "log_uniform": log_uniform_candidate_sampler,
    "uniform": uniform_candidate_sampler,
}
TRUE = np.array([[0, 3], [5, 1], [19, 2]], "int32")
# Few distinct sizes: on JAX every new shape costs an eager compile.
R, S = 40, 5


def log_uniform_p(range_max):
    k = np.arange(range_max, dtype=np.float64)
    return (np.log(k + 2) - np.log(k + 1)) / np.log(range_max + 1)


def np_all(*tensors):
    return [ops.convert_to_numpy(t) for t in tensors]


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("unique", [True, False])
def test_shapes_dtypes_and_range(name, unique):
    sampled, true_ec, sampled_ec = np_all(
        *SAMPLERS[name](TRUE, num_sampled=S, range_max=R, unique=unique, seed=3)
    )
    assert sampled.shape == (S,) and sampled.dtype == np.int32
    assert true_ec.shape == (3, 2) and sampled_ec.shape == (S,)
    assert true_ec.dtype == sampled_ec.dtype == np.float32
    assert sampled.min() >= 0 and sampled.max() < R
    assert np.all(true_ec > 0) and np.all(sampled_ec > 0)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_unique_candidates_are_distinct(name):
    gen = keras.random.SeedGenerator(0)
    for _ in range(5):
        sampled = ops.convert_to_numpy(
            SAMPLERS[name](TRUE, S, R, unique=True, seed=gen)[0]
        )
        assert len(set(sampled.tolist())) == S
    everything = ops.convert_to_numpy(SAMPLERS[name](TRUE, R, R, seed=1)[0])
    assert sorted(everything.tolist()) == list(range(R))


def test_log_uniform_frequencies_match_zipf():
    range_max, draws = R, 40000
    sampled = ops.convert_to_numpy(
        log_uniform_candidate_sampler(
            TRUE, draws, range_max, unique=False, seed=7
        )[0]
    )
    freq = np.bincount(sampled, minlength=range_max) / draws
    p = log_uniform_p(range_max)
    sigma = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(freq - p) < 5 * sigma), (freq, p)


def test_unique_log_uniform_inclusion_frequencies_follow_expected_counts():
    # Without replacement the frequency of id k in a draw is its inclusion
    # probability, which the effective-tries expected count approximates
    # (within a few percent at this size; see the sampler's docstring).
    range_max, num_sampled, rounds = R, S, 300
    gen = keras.random.SeedGenerator(11)
    counts = np.zeros(range_max)
    for _ in range(rounds):
        s = ops.convert_to_numpy(
            log_uniform_candidate_sampler(TRUE, num_sampled, range_max, seed=gen)[0]
        )
        counts[s] += 1
    freq = counts / rounds
    ids = np.arange(range_max, dtype="int32")[:, None]
    expected = ops.convert_to_numpy(
        log_uniform_candidate_sampler(ids, num_sampled, range_max, seed=0)[1]
    )[:, 0]
    assert np.abs(freq - expected).max() < 0.1
    assert freq[0] > freq[5] > freq[19]  # head ids come more often


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_non_unique_expected_counts_are_num_sampled_times_p(name):
    sampled, true_ec, sampled_ec = np_all(
        *SAMPLERS[name](TRUE, S, R, unique=False, seed=0)
    )
    p = log_uniform_p(R) if name == "log_uniform" else np.full(R, 1 / R)
    np.testing.assert_allclose(true_ec, S * p[TRUE], rtol=1e-6)
    np.testing.assert_allclose(sampled_ec, S * p[sampled], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_unique_expected_counts_use_effective_tries(name):
    ids = np.arange(R, dtype="int32")[:, None]
    _, ec, _ = np_all(*SAMPLERS[name](ids, S, R, unique=True, seed=0))
    p = log_uniform_p(R) if name == "log_uniform" else np.full(R, 1 / R)
    n = effective_num_tries(name, R, S)
    np.testing.assert_allclose(ec[:, 0], -np.expm1(n * np.log1p(-p)), rtol=1e-5)
    # The expected counts of all ids add up to the number drawn.
    np.testing.assert_allclose(ec.sum(), float(S), rtol=1e-5)
    assert np.all(ec <= 1.0)


def test_unique_uniform_expected_count_is_exact_inclusion_probability():
    _, true_ec, sampled_ec = np_all(*uniform_candidate_sampler(TRUE, S, R, seed=0))
    np.testing.assert_allclose(true_ec, np.full((3, 2), S / R), rtol=1e-5)
    np.testing.assert_allclose(sampled_ec, np.full(S, S / R), rtol=1e-5)


def test_sampling_every_class_gives_unit_expected_counts():
    _, true_ec, sampled_ec = np_all(*log_uniform_candidate_sampler(TRUE, R, R, seed=0))
    assert np.all(true_ec == 1.0) and np.all(sampled_ec == 1.0)


def test_int_seed_is_reproducible_and_generator_advances():
    a = ops.convert_to_numpy(log_uniform_candidate_sampler(TRUE, S, R, seed=5)[0])
    b = ops.convert_to_numpy(log_uniform_candidate_sampler(TRUE, S, R, seed=5)[0])
    np.testing.assert_array_equal(a, b)
    gen = keras.random.SeedGenerator(5)
    c = ops.convert_to_numpy(log_uniform_candidate_sampler(TRUE, S, R, seed=gen)[0])
    d = ops.convert_to_numpy(log_uniform_candidate_sampler(TRUE, S, R, seed=gen)[0])
    assert not np.array_equal(c, d)


def test_samplers_run_compiled():
    def draw(true_classes):
        return log_uniform_candidate_sampler(true_classes, S, R, seed=1)

    if BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(draw, jit_compile=True)
    elif BACKEND == "jax":
        import jax

        compiled = jax.jit(draw)
    else:
        pytest.skip(f"no compiler wrapper for {BACKEND}")
    sampled, true_ec, _ = np_all(*compiled(TRUE))
    eager, eager_ec, _ = np_all(*draw(TRUE))
    assert len(set(sampled.tolist())) == S
    np.testing.assert_allclose(true_ec, eager_ec, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_sampled=0), "num_sampled=0"),
        (dict(num_sampled=2.0), "num_sampled=2.0"),
        (dict(range_max=0), "range_max=0"),
        (dict(num_sampled=21), "num_sampled=21, range_max=20"),
        (dict(true_classes=np.array([1, 2])), r"true_classes.shape=\(2,\)"),
        (dict(seed="x"), "seed='x'"),
    ],
)
def test_sampler_bad_arguments(kwargs, match):
    args = dict(true_classes=TRUE, num_sampled=4, range_max=20)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        log_uniform_candidate_sampler(**args)


def test_effective_num_tries_solves_its_equation():
    p = log_uniform_p(1000)
    n = effective_num_tries("log_uniform", 1000, 64)
    assert n > 64
    np.testing.assert_allclose(np.sum(-np.expm1(n * np.log1p(-p))), 64.0, rtol=1e-9)
    with pytest.raises(ValueError, match="sampler='zipf'"):
        effective_num_tries("zipf", 10, 2)
