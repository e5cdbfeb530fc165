"""Minimum length, no-repeat n-grams, nucleus sampling and average length normalisation,
on fake step functions whose right answers are known (greedy, sampling, beam search)."""

import numpy as np
import pytest
from keras import ops

from seqzoo.decoding.beam_search import beam_search
from seqzoo.decoding.constraints import constrain
from seqzoo.decoding.search import filter_logits, greedy_search, sample
from seqzoo.text.specials import BOS_ID, EOS_ID

pytestmark = pytest.mark.backend_neutral

V = 9  # PAD, UNK, BOS, EOS and the words 4..8


def _fixed(logits):
    """A step function whose logits are the same row at every step, whatever came before."""
    row = ops.convert_to_tensor(np.asarray(logits, "float32"))

    def step(ids, state):
        return ops.broadcast_to(row[None, :], (ops.shape(ids)[0], V)), state

    return step


def _start(batch=1):
    return ops.full((batch,), BOS_ID, "int32")


def _ids(result):
    return ops.convert_to_numpy(result).tolist()


# EOS first, then 4 > 5 > 6 > 7 > 8.
PREFERS_EOS = [-9, -9, -9, 5, 4, 3, 2, 1, 0]
# 4 > 5 > 6 > 7 > 8 > EOS.
PREFERS_FOUR = [-9, -9, -9, -1, 4, 3, 2, 1, 0]


def _reference_greedy(logits, steps, min_length=0, n=0):
    """The answer by brute force: the best allowed token at every step."""
    out = []
    for t in range(steps):
        banned = set()
        if t < min_length:
            banned.add(EOS_ID)
        if n and t >= n - 1:
            prefix = tuple(out[t - n + 1:]) if n > 1 else ()
            for p in range(t - n + 1):
                if tuple(out[p:p + n - 1]) == prefix:
                    banned.add(out[p + n - 1])
        token = max((v for v in range(V) if v not in banned), key=lambda v: logits[v])
        out.append(token)
        if token == EOS_ID:
            break
    return out


@pytest.mark.parametrize("min_length", [0, 1, 3])
def test_min_length_holds_eos_back(min_length):
    ids, _, _ = greedy_search(_fixed(PREFERS_EOS), _start(), {}, 6, min_length=min_length)
    expected = [4] * min_length + [EOS_ID]
    assert _ids(ids)[0][:min_length + 1] == expected
    assert expected == _reference_greedy(PREFERS_EOS, 6, min_length=min_length)
    result = beam_search(_fixed(PREFERS_EOS), _start(), {}, beam_size=3, max_length=6,
                         min_length=min_length)
    assert _ids(result["ids"])[0][0][:min_length + 1] == expected
    assert int(ops.convert_to_numpy(result["lengths"])[0, 0]) == min_length + 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_matches_brute_force(n):
    steps = 7
    expected = _reference_greedy(PREFERS_FOUR, steps, n=n)
    ids, _, _ = greedy_search(_fixed(PREFERS_FOUR), _start(2), {}, steps,
                              no_repeat_ngram_size=n)
    assert _ids(ids) == [expected + [0] * (steps - len(expected))] * 2
    assert len(expected) == steps or expected[-1] == EOS_ID
    # No n-gram twice.
    grams = [tuple(expected[i:i + n]) for i in range(len(expected) - n + 1)]
    assert len(grams) == len(set(grams))
    # Beam search of width 1 is greedy search.
    result = beam_search(_fixed(PREFERS_FOUR), _start(), {}, beam_size=1, max_length=steps,
                         no_repeat_ngram_size=n)
    assert _ids(result["ids"])[0][0][:len(expected)] == expected


def test_without_constraints_the_favourite_repeats():
    ids, _, _ = greedy_search(_fixed(PREFERS_FOUR), _start(), {}, 4)
    assert _ids(ids) == [[4, 4, 4, 4]]


def test_constrain_bans_the_tokens_that_would_repeat_an_ngram():
    history = ops.convert_to_tensor(np.array([[4, 5, 4, 5, 4, 0]], "int32"))
    scores = ops.zeros((1, V))
    # After "... 5 4" (t=5): bigram "4 5" seen -> 5 banned; trigram "5 4 5" seen -> 5 banned.
    for n, banned in ((2, {5}), (3, {5}), (1, {4, 5})):
        out = ops.convert_to_numpy(constrain(scores, 5, history, no_repeat_ngram_size=n))[0]
        assert {v for v in range(V) if out[v] < -1e8} == banned, n
    out = ops.convert_to_numpy(constrain(scores, 2, history, min_length=3))[0]
    assert [v for v in range(V) if out[v] < -1e8] == [EOS_ID]


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    probs = np.array([[0.0, 0.0, 0.0, 0.05, 0.5, 0.3, 0.15, 0.0, 0.0]]) + 1e-12
    logits = ops.convert_to_tensor(np.log(probs).astype("float32"))
    # 0.5 and 0.8 are reached exactly; float32 sums fall short of them by rounding.
    for top_p, kept in ((0.5, {4}), (0.50001, {4, 5}), (0.7, {4, 5}), (0.8, {4, 5}),
                        (0.80001, {4, 5, 6}), (0.81, {4, 5, 6}),
                        (0.96, {3, 4, 5, 6}), (1.0, set(range(V)))):
        out = ops.convert_to_numpy(filter_logits(logits, top_p=top_p))[0]
        assert {v for v in range(V) if out[v] > -1e8} == kept, top_p


def test_sampling_with_top_p_draws_inside_the_nucleus_only():
    probs = np.array([1e-9, 1e-9, 1e-9, 0.05, 0.5, 0.3, 0.15, 1e-9, 1e-9])
    step = _fixed(np.log(probs))
    batch, steps = 64, 3
    uniforms = ops.convert_to_tensor(
        np.random.default_rng(0).uniform(size=(steps, batch)).astype("float32"))
    ids, _, _ = sample(step, _start(batch), {}, steps, uniforms, top_p=0.7)
    drawn = ops.convert_to_numpy(ids)
    assert set(np.unique(drawn)) == {4, 5}
    # Renormalised: 0.5 / 0.8 of the draws are 4.
    assert abs((drawn == 4).mean() - 0.625) < 0.1
    ids, _, _ = sample(step, _start(batch), {}, steps, uniforms, top_p=0.7, min_length=2,
                       no_repeat_ngram_size=1)
    rows = ops.convert_to_numpy(ids)
    # The nucleus of what the constraints leave: no EOS in the first two, no token twice.
    assert all(row[0] != row[1] and EOS_ID not in row[:2] for row in rows)
    assert set(np.unique(rows[:, :2])) <= {4, 5, 6}


def _table_step(log_probs):
    """A step function whose next-token log-probabilities depend on the previous token."""
    table = ops.convert_to_tensor(np.asarray(log_probs, "float32"))

    def step(ids, state):
        return ops.take(table, ids, axis=0), state

    return step


def test_average_normalisation_prefers_the_better_mean_per_token():
    """From BOS: EOS at 0.5, or "4 5 EOS" at 0.45 * 0.8 * 0.8. Plain log-probabilities
    pick "EOS" (-0.69 against -1.25); per token, "4 5 EOS" (-0.42 against -0.69)."""
    table = np.full((V, V), 1e-6)
    table[BOS_ID, [EOS_ID, 4, 5]] = [0.5, 0.45, 0.05]
    table[4, [5, EOS_ID]] = [0.8, 0.2]
    table[5, [EOS_ID, 4]] = [0.8, 0.2]
    step = _table_step(np.log(table / table.sum(1, keepdims=True)))
    plain = beam_search(step, _start(), {}, beam_size=3, max_length=5)
    average = beam_search(step, _start(), {}, beam_size=3, max_length=5,
                          length_normalization="average")
    assert _ids(plain["ids"])[0][0][:1] == [EOS_ID]
    assert _ids(average["ids"])[0][0][:3] == [4, 5, EOS_ID]
    score = float(ops.convert_to_numpy(average["scores"])[0, 0])
    log_prob = float(ops.convert_to_numpy(average["log_probs"])[0, 0])
    assert score == pytest.approx(log_prob / 3, rel=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="min_length=-1"):
        greedy_search(_fixed(PREFERS_EOS), _start(), {}, 4, min_length=-1)
    with pytest.raises(ValueError, match="no_repeat_ngram_size=1.5"):
        beam_search(_fixed(PREFERS_EOS), _start(), {}, 2, 4, no_repeat_ngram_size=1.5)
    with pytest.raises(ValueError, match="top_p=0"):
        sample(_fixed(PREFERS_EOS), _start(), {}, 4, ops.zeros((4, 1)), top_p=0)
    with pytest.raises(ValueError, match="length_normalization='wu'"):
        beam_search(_fixed(PREFERS_EOS), _start(), {}, 2, 4, length_normalization="wu")


def test_a_forced_prefix_starts_every_output_then_the_search_goes_on():
    prefix = ops.convert_to_tensor(np.array([[5, 6, 0], [7, 0, 0]], "int32"))
    ids, _, _ = greedy_search(_fixed(PREFERS_FOUR), _start(2), {}, 5, prefix=prefix)
    assert _ids(ids) == [[5, 6, 4, 4, 4], [7, 4, 4, 4, 4]]
    result = beam_search(_fixed(PREFERS_FOUR), _start(2), {}, beam_size=3, max_length=5,
                         n_best=3, prefix=prefix)
    hyps = ops.convert_to_numpy(result["ids"])
    assert (hyps[0, :, :2] == [5, 6]).all() and (hyps[1, :, 0] == 7).all()
    assert hyps[0, 0].tolist() == [5, 6, 4, 4, 4]
    uniforms = ops.convert_to_tensor(np.full((5, 2), 0.5, "float32"))
    ids, _, _ = sample(_fixed(PREFERS_FOUR), _start(2), {}, 5, uniforms, prefix=prefix)
    drawn = ops.convert_to_numpy(ids)
    assert drawn[0, :2].tolist() == [5, 6] and drawn[1, 0] == 7
