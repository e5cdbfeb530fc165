"""Beam search on fake step functions whose answers are known.

The fake model is a time-dependent transition language model carried in the
state: the logits of step `t` after token `prev` are `table[b, t, prev]`, and
the attention of a step that consumed token `v` is `attn[b, v]`. Tables and
attention are tensors, so every test with the same shapes and static
arguments reuses one compiled function (JAX compiles per configuration).
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.decoding import top_k
from seqzoo.decoding.beam_search import beam_search
from seqzoo.decoding.compiled import CompiledFunction
from seqzoo.decoding.search import greedy_search
from seqzoo.text.specials import BOS_ID, EOS_ID, PAD_ID

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

V, T = 5, 4  # vocabulary (PAD, UNK, BOS, EOS, one word) and max_length of most tests


def _state(start, table, attn=None):
    state = {"table": table, "t": ops.zeros_like(start), "tok": start}
    if attn is not None:
        state["attn"] = attn
    return state


def _step(ids, state):
    table = state["table"]
    time = ops.one_hot(state["t"], table.shape[1])
    prev = ops.one_hot(ids, table.shape[2])
    logits = ops.einsum("ntpv,nt,np->nv", table, time, prev)
    return logits, {**state, "t": state["t"] + 1, "tok": ids}


def _align(state):
    attn = state["attn"]
    return ops.einsum("nvs,nv->ns", attn, ops.one_hot(state["tok"], attn.shape[1]))


def _beam(start, table, attn, mask, alignment=False, **static):
    if alignment:
        return beam_search(_step, start, _state(start, table, attn), alignment_fn=_align,
                           source_mask=mask, **static)
    return beam_search(_step, start, _state(start, table), **static)


_BEAM = CompiledFunction(_beam, lambda: [])
_GREEDY = CompiledFunction(
    lambda start, table, **static: greedy_search(_step, start, _state(start, table), **static),
    lambda: [],
)


def _inputs(table, attn=None, mask=None):
    table = np.asarray(table, "float32")
    batch, vocab = table.shape[0], table.shape[-1]
    if attn is None:
        attn = np.full((batch, vocab, vocab), 1.0 / vocab, "float32")
    if mask is None:
        mask = np.ones((batch, np.shape(attn)[-1]), "float32")
    start = np.full((batch,), BOS_ID, "int32")
    return start, table, np.asarray(attn, "float32"), np.asarray(mask, "float32")


def run_beam(table, attn=None, mask=None, **static):
    out = _BEAM(*_inputs(table, attn, mask), **static)
    return keras.tree.map_structure(ops.convert_to_numpy, out)


def _log_softmax(table):
    table = np.asarray(table, "float64")
    shifted = table - table.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _seq_log_prob(logp, ids, length, start=BOS_ID):
    """log P of `ids[:length]` under one item's table `logp [T, V, V]`."""
    prev, total = start, 0.0
    for j in range(length):
        total += logp[j, prev, ids[j]]
        prev = ids[j]
    return total


def _lp(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def _random_table(seed, eos_bias, steps=T, vocab=V):
    """Random logits; `eos_bias[b]` pushes item `b` to finish early (> 0) or late (< 0)."""
    table = np.random.default_rng(seed).normal(size=(len(eos_bias), steps, vocab, vocab))
    table[..., EOS_ID] += np.asarray(eos_bias)[:, None, None]
    return table.astype("float32")


def _table_from_probs(rows, batch=1, steps=T, vocab=V):
    """Logits `log p` for the `(t, prev) -> {token: p}` rows given; uniform elsewhere."""
    table = np.zeros((batch, steps, vocab, vocab), "float32")
    for (t, prev), probs in rows.items():
        p = np.array([probs.get(v, 0.0) for v in range(vocab)])
        assert abs(p.sum() - 1.0) < 1e-6 and p.min() > 0
        table[:, t, prev] = np.log(p)
    return table


def test_beam_width_one_is_greedy_search():
    table = _random_table(0, eos_bias=[3.0, 0.0, -6.0])
    start = np.full((3,), BOS_ID, "int32")
    greedy_ids, greedy_scores, greedy_state = keras.tree.map_structure(
        ops.convert_to_numpy, _GREEDY(start, table, max_length=T)
    )
    out = run_beam(table, beam_size=1, max_length=T)

    assert out["ids"].shape == (3, 1, T) and out["ids"].dtype == np.int32
    np.testing.assert_array_equal(out["ids"][:, 0], greedy_ids)
    np.testing.assert_allclose(out["scores"][:, 0], greedy_scores, rtol=1e-6)
    np.testing.assert_allclose(out["log_probs"][:, 0], greedy_scores, rtol=1e-6)
    np.testing.assert_array_equal(out["state"]["t"][:, 0], greedy_state["t"])
    # The premise: one item stops early, another runs to max_length.
    assert out["lengths"][0, 0] < T and out["lengths"][2, 0] == T


# Greedy takes token 1 (p=0.55) but every continuation of 1 is poor; token 4
# (p=0.40) is followed by EOS with p=0.95.
_MISLED = {
    (0, BOS_ID): {0: 0.01, 1: 0.55, 2: 0.02, 3: 0.02, 4: 0.40},
    (1, 1): {0: 0.175, 1: 0.175, 2: 0.175, 3: 0.30, 4: 0.175},
    (1, 4): {0: 0.0125, 1: 0.0125, 2: 0.0125, 3: 0.95, 4: 0.0125},
}


@pytest.mark.parametrize("beam_size", [4, 8])
def test_the_first_step_runs_on_one_row_per_item(beam_size):
    """Every beam of an item would start from the same state and token: the
    first step runs on one row per item and its best tokens start the beams;
    later steps run on `K` rows per item. A vocabulary smaller than the beam
    (5 < 8) cannot fill it: those steps run on `K` rows from the first."""
    rows = []

    def step(ids, state):
        rows.append(int(ops.shape(ids)[0]))
        return _step(ids, state)

    table = _random_table(5, eos_bias=[-8.0, -8.0, -8.0])
    start, table, _, _ = _inputs(table)
    out = beam_search(step, start, _state(start, table), beam_size=beam_size, max_length=T,
                      n_best=4)
    assert rows[0] == 3 and rows[1:] and set(rows[1:]) == {3 * beam_size}
    logp = _log_softmax(table)
    for b in range(3):
        # The K best of every step, from one hypothesis (BOS) at the first;
        # eos_bias keeps </s> out of the best, so no hypothesis finishes.
        beams = [(0.0, [])]
        for t in range(T):
            candidates = [(lp + logp[b, t, ids[-1] if ids else BOS_ID, v], ids + [v])
                          for lp, ids in beams for v in range(V)]
            beams = sorted(candidates, key=lambda c: -c[0])[:beam_size]
        np.testing.assert_array_equal(ops.convert_to_numpy(out["ids"][b]),
                                      [ids for _, ids in beams[:4]])
        np.testing.assert_allclose(ops.convert_to_numpy(out["log_probs"][b]),
                                   [lp for lp, _ in beams[:4]], rtol=1e-5)


def test_beam_search_beats_misled_greedy_search():
    table = _table_from_probs(_MISLED)
    # Three copies share the compiled greedy search of the width-one test.
    greedy_ids, greedy_scores, _ = _GREEDY(np.full((3,), BOS_ID, "int32"), np.repeat(table, 3, 0),
                                           max_length=T)
    np.testing.assert_array_equal(ops.convert_to_numpy(greedy_ids)[0], [1, EOS_ID, PAD_ID, PAD_ID])

    out = run_beam(table, beam_size=2, max_length=T, n_best=2, length_penalty=0.0)
    np.testing.assert_array_equal(out["ids"][0], [[4, EOS_ID, 0, 0], [1, EOS_ID, 0, 0]])
    np.testing.assert_allclose(out["scores"][0], np.log([0.40 * 0.95, 0.55 * 0.30]), rtol=1e-5)
    assert out["scores"][0, 0] > float(ops.convert_to_numpy(greedy_scores)[0])
    np.testing.assert_array_equal(out["lengths"][0], [2, 2])


def _exhaustive(logp, length, alpha):
    """Every hypothesis of one item: EOS-terminated ones and those cut at `length`."""
    vocab = logp.shape[-1]
    hyps = []
    for n in range(1, length + 1):
        for seq in itertools.product(range(vocab), repeat=n):
            if EOS_ID in seq[:-1] or (n < length and seq[-1] != EOS_ID):
                continue
            log_prob = _seq_log_prob(logp, seq, n)
            ids = list(seq) + [PAD_ID] * (length - n)
            hyps.append((log_prob / _lp(n, alpha), log_prob, n, ids))
    return sorted(hyps, key=lambda h: -h[0])


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_wide_beam_returns_the_exhaustive_n_best(alpha):
    length, vocab, n_best = 3, 4, 5
    table = _random_table(3, eos_bias=[1.5, 0.5], steps=length, vocab=vocab)
    out = run_beam(table, beam_size=vocab ** (length - 1), max_length=length, n_best=n_best,
                   length_penalty=alpha)
    logp = _log_softmax(table)
    for b in range(2):
        best = _exhaustive(logp[b], length, alpha)[:n_best]
        np.testing.assert_array_equal(out["ids"][b], [h[3] for h in best])
        np.testing.assert_allclose(out["scores"][b], [h[0] for h in best], rtol=1e-5)
        np.testing.assert_allclose(out["log_probs"][b], [h[1] for h in best], rtol=1e-5)
        np.testing.assert_array_equal(out["lengths"][b], [h[2] for h in best])
    # The n-best mixes EOS-terminated shorter hypotheses with full-length ones.
    assert out["lengths"].min() < length and out["lengths"].max() == length


def _one_hot_attention(batch):
    return np.broadcast_to(np.eye(V, dtype="float32"), (batch, V, V))


def _run_with_alignments():
    table = _random_table(5, eos_bias=[2.0, 0.5, -1.0])
    return table, run_beam(table, _one_hot_attention(3), beam_size=3, max_length=T, n_best=3,
                           alignment=True)


def test_finished_hypotheses_are_not_extended():
    table, out = _run_with_alignments()
    logp = _log_softmax(table)
    finished_early = 0
    for b, n in itertools.product(range(3), range(3)):
        ids, length = out["ids"][b, n], int(out["lengths"][b, n])
        assert EOS_ID not in ids[:length - 1]
        if length < T:
            finished_early += 1
            assert ids[length - 1] == EOS_ID
        np.testing.assert_array_equal(ids[length:], PAD_ID)
        # The score stopped changing at EOS: it is the sum up to EOS only.
        np.testing.assert_allclose(out["log_probs"][b, n], _seq_log_prob(logp[b], ids, length),
                                   rtol=1e-5)
        np.testing.assert_allclose(out["scores"][b, n], out["log_probs"][b, n])
        # The state was not advanced after EOS: its step counter is the length
        # and its last input is the token before EOS.
        assert out["state"]["t"][b, n] == length
        assert out["state"]["tok"][b, n] == (ids[length - 2] if length >= 2 else BOS_ID)
    assert finished_early >= 3


def test_n_best_is_distinct_and_sorted():
    _, out = _run_with_alignments()
    for b in range(3):
        assert len({tuple(row) for row in out["ids"][b]}) == 3
        assert np.all(np.diff(out["scores"][b]) <= 0)


def test_alignments_follow_the_chosen_hypotheses():
    _, out = _run_with_alignments()
    assert out["alignments"].shape == (3, 3, T, V)
    for b, n in itertools.product(range(3), range(3)):
        ids, length = out["ids"][b, n], int(out["lengths"][b, n])
        inputs = [BOS_ID] + list(ids[:length - 1])
        expected = np.zeros((T, V), "float32")
        expected[np.arange(length), inputs] = 1.0
        np.testing.assert_array_equal(out["alignments"][b, n], expected)


# EOS now (p=0.5) against a longer hypothesis [4, 4, EOS] (p=0.4704 * 0.98).
_SHORT_OR_LONG = {
    (0, BOS_ID): {0: 0.0067, 1: 0.0067, 2: 0.0066, 3: 0.5, 4: 0.48},
    (1, 4): {0: 0.005, 1: 0.005, 2: 0.005, 3: 0.005, 4: 0.98},
    (2, 4): {0: 0.005, 1: 0.005, 2: 0.005, 3: 0.98, 4: 0.005},
}


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_length_penalty_prefers_the_longer_hypothesis(alpha):
    table = _table_from_probs(_SHORT_OR_LONG)
    out = run_beam(table, beam_size=2, max_length=T, n_best=2, length_penalty=alpha)
    short, long = [EOS_ID, 0, 0, 0], [4, 4, EOS_ID, 0]
    expected = [short, long] if alpha == 0 else [long, short]
    np.testing.assert_array_equal(out["ids"][0], expected)
    logp = _log_softmax(table)[0]
    np.testing.assert_allclose(
        out["log_probs"][0], [_seq_log_prob(logp, ids, 1 + 2 * (ids == long)) for ids in expected],
        rtol=1e-5,
    )
    lengths = out["lengths"][0]
    np.testing.assert_array_equal(lengths, [1, 3] if alpha == 0 else [3, 1])
    np.testing.assert_allclose(
        out["scores"][0], out["log_probs"][0] / ((5.0 + lengths.astype("float32")) / 6.0) ** alpha,
        rtol=1e-6,
    )


# After step 2, [EOS] (log P -1.10) beats [4, 1] (-1.20) on log P but not on
# log P / lp (-1.10 against -1.03): with beam_size 2 the penalised pruning
# drops [EOS] and keeps [4, 1].
_PRUNING = {
    (0, BOS_ID): {0: 0.0057, 1: 0.0057, 2: 0.0056, 3: 0.333, 4: 0.65},
    (1, 4): {0: 0.0124, 1: 0.463, 2: 0.0123, 3: 0.0123, 4: 0.5},
    (2, 1): {0: 0.025, 1: 0.025, 2: 0.025, 3: 0.9, 4: 0.025},
    (2, 4): {0: 0.025, 1: 0.025, 2: 0.025, 3: 0.9, 4: 0.025},
}


def test_length_penalty_is_applied_when_pruning_during_the_search():
    out = run_beam(_table_from_probs(_PRUNING), beam_size=2, max_length=T, n_best=2,
                   length_penalty=1.0)
    # Ranked on log P at step 2, the beam would end as [[4, 4, EOS], [EOS]].
    np.testing.assert_array_equal(out["ids"][0], [[4, 4, EOS_ID, 0], [4, 1, EOS_ID, 0]])


# [EOS] is the more likely hypothesis; [4, EOS] attends to the source much better.
_COVERAGE_PROBS = {
    (0, BOS_ID): {0: 0.001, 1: 0.001, 2: 0.001, 3: 0.55, 4: 0.447},
    (1, 4): {0: 0.0125, 1: 0.0125, 2: 0.0125, 3: 0.95, 4: 0.0125},
}
_ATTN = np.full((V, V), 0.2, "float32")
_ATTN[BOS_ID] = [0.3, 0.05, 0.05, 0.55, 0.05]  # the first step, whatever the hypothesis
_ATTN[4] = [0.3, 0.6, 0.08, 0.01, 0.01]
_REAL = np.array([[1, 1, 1, 0, 0]], "float32")  # positions 3 and 4 are padding
_ALPHA, _BETA = 0.6, 0.5


def _expected_score(ids, length, logp, attn, mask):
    coverage = attn[[BOS_ID] + list(ids[:length - 1])].sum(0)
    cp = _BETA * np.sum(mask * np.log(np.clip(coverage, 1e-10, 1.0)))
    return _seq_log_prob(logp, ids, length) / _lp(length, _ALPHA) + cp


@pytest.mark.parametrize("beta", [0.0, _BETA])
def test_coverage_penalty_changes_the_ranking_on_real_positions_only(beta):
    table = _table_from_probs(_COVERAGE_PROBS)
    out = run_beam(table, _ATTN[None], _REAL, beam_size=3, max_length=T, n_best=3,
                   length_penalty=_ALPHA, coverage_penalty=beta, alignment=True)
    short, covering = [EOS_ID, 0, 0, 0], [4, EOS_ID, 0, 0]
    expected = [short, covering] if beta == 0 else [covering, short]
    np.testing.assert_array_equal(out["ids"][0, :2], expected)
    if beta == 0:
        return
    logp = _log_softmax(table)[0]
    for n in range(3):
        ids, length = out["ids"][0, n], out["lengths"][0, n]
        np.testing.assert_allclose(out["scores"][0, n],
                                   _expected_score(ids, length, logp, _ATTN, _REAL[0]), rtol=1e-5)
    # Whatever the attention on padded positions (even none at all), nothing changes.
    junk = _ATTN.copy()
    junk[:, 3:] = np.random.default_rng(0).choice([0.0, 0.7, 3.0], size=(V, 2))
    again = run_beam(table, junk[None], _REAL, beam_size=3, max_length=T, n_best=3,
                     length_penalty=_ALPHA, coverage_penalty=beta, alignment=True)
    np.testing.assert_array_equal(again["ids"], out["ids"])
    np.testing.assert_allclose(again["scores"], out["scores"], rtol=1e-6)


def test_coverage_penalty_counts_for_finished_candidates_only_while_pruning():
    # At step 1, [EOS] (log P -0.71, cp -3.60) ranks below the unfinished [4],
    # [1] and [2] (log P -1.39, -1.90, -2.30, no cp yet) and is pruned from a
    # beam of 3. Penalising every candidate would keep it (ahead of [2]).
    probs = {
        (0, BOS_ID): {0: 0.01, 1: 0.15, 2: 0.1, 3: 0.49, 4: 0.25},
        **{(1, v): {0: 0.0125, 1: 0.0125, 2: 0.0125, 3: 0.95, 4: 0.0125} for v in (1, 2, 4)},
    }
    table = _table_from_probs(probs)
    out = run_beam(table, _ATTN[None], _REAL, beam_size=3, max_length=T, n_best=3,
                   length_penalty=_ALPHA, coverage_penalty=_BETA, alignment=True)
    np.testing.assert_array_equal(out["ids"][0], [[4, EOS_ID, 0, 0], [1, EOS_ID, 0, 0],
                                                  [2, EOS_ID, 0, 0]])
    logp = _log_softmax(table)[0]
    np.testing.assert_allclose(
        out["scores"][0],
        [_expected_score(ids, 2, logp, _ATTN, _REAL[0]) for ids in out["ids"][0]], rtol=1e-5,
    )


def test_batch_items_are_decoded_independently():
    table = _random_table(9, eos_bias=[6.0, 0.0, -4.0])
    attn = np.random.default_rng(8).dirichlet(np.ones(6), size=(3, V)).astype("float32")
    mask = (np.arange(6)[None] < np.array([[6], [4], [2]])).astype("float32")
    static = dict(beam_size=3, max_length=T, n_best=3, length_penalty=_ALPHA,
                  coverage_penalty=_BETA, alignment=True)
    together = run_beam(table, attn, mask, **static)
    # The premise: the items finish at different steps.
    assert together["lengths"][0].max() < T and together["lengths"][2].min() == T
    for b in range(3):
        alone = run_beam(table[b:b + 1], attn[b:b + 1], mask[b:b + 1], **static)
        for key in ("ids", "lengths", "scores", "log_probs", "alignments"):
            np.testing.assert_allclose(together[key][b], alone[key][0], rtol=1e-5, atol=1e-6,
                                       err_msg=key)


def test_beam_search_over_a_large_vocabulary_is_the_same_with_blocked_top_k(monkeypatch):
    vocab, steps = 1000, 6
    rng = np.random.default_rng(3)
    by_prev = ops.convert_to_tensor(rng.normal(size=(vocab, vocab)).astype("float32"))
    by_time = ops.convert_to_tensor(rng.normal(size=(steps + 1, vocab)).astype("float32") * 2)

    def step(ids, state):
        logits = (ops.take(by_prev, ids, axis=0) + ops.take(by_time, state["t"], axis=0)
                  + state["item"])
        return logits, {**state, "t": state["t"] + 1}

    start = np.full((5,), BOS_ID, "int32")
    state = {"t": ops.zeros((5,), "int32"),
             "item": ops.convert_to_tensor(rng.normal(size=(5, vocab)).astype("float32"))}
    runs = []
    for backends in ((), (keras.backend.backend(),)):
        monkeypatch.setattr(top_k, "BLOCKED_BACKENDS", backends)
        out = beam_search(step, start, state, beam_size=4,
                          max_length=steps, n_best=4)
        runs.append(keras.tree.map_structure(ops.convert_to_numpy, out))
    for key in ("ids", "lengths", "scores", "log_probs"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)
    assert len({tuple(ids) for ids in runs[0]["ids"].reshape(-1, steps).tolist()}) == 20


def test_compiled_and_eager_agree():
    table, compiled = _run_with_alignments()
    start, table, attn, mask = _inputs(table, _one_hot_attention(3))
    eager = _beam(start, table, attn, mask, alignment=True, beam_size=3, max_length=T, n_best=3)
    for key in ("ids", "lengths", "scores", "log_probs", "alignments"):
        np.testing.assert_allclose(ops.convert_to_numpy(eager[key]), compiled[key], rtol=1e-6,
                                   err_msg=key)
    # The compiled function was built once per configuration and reused.
    assert len(_BEAM._cache) >= 1
    n = len(_BEAM._cache)
    _run_with_alignments()
    assert len(_BEAM._cache) == n


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beam_size=0), "Received: beam_size=0"),
        (dict(beam_size=2.0), "Received: beam_size=2.0"),
        (dict(max_length=0), "Received: max_length=0"),
        (dict(n_best=3), "Received: n_best=3"),
        (dict(n_best=0), "Received: n_best=0"),
        (dict(length_penalty=-0.1), "Received: length_penalty=-0.1"),
        (dict(coverage_penalty=-1.0), "Received: coverage_penalty=-1.0"),
        (dict(coverage_penalty=0.2), "Received: coverage_penalty=0.2, alignment_fn=None"),
        (dict(source_mask=np.ones((1, 3))), "alignment_fn=None"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    args = dict(beam_size=2, max_length=3)
    args.update(kwargs)
    start = np.array([BOS_ID], "int32")
    with pytest.raises(ValueError, match=message):
        beam_search(_step, start, _state(start, np.zeros((1, 3, V, V), "float32")), **args)
