"""Beam search as a pure function of a step function.

The step function has the contract of `seqzoo.decoding.search`:
`step_fn(token_ids [N], state) -> (logits [N, V], state)`, where `state` is a
nest of tensors whose leading axis is the batch. The first step runs on the
`B` rows given (every beam of an item would start from the same state and
token); its `K` best tokens per item start the beams, and the state grows to
`N = B * K` rows (beam-major within each batch item: rows
`b * K .. b * K + K - 1` belong to item `b`). It is reordered with
`keras.tree.map_structure` after every step, in one `keras.ops.while_loop`
with fixed shapes, so it compiles on every backend (see `CompiledFunction`).

Scoring (GNMT, Wu et al. 2016), with `|Y|` the number of generated tokens,
EOS included:

    lp(Y)    = ((5 + |Y|) / 6) ** alpha
    cp(X; Y) = beta * sum_i log(min(max(c_i, MIN_COVERAGE), 1))
    s(Y, X)  = log P(Y | X) / lp(Y) + cp(X; Y)

where `c_i` is the attention summed over the target steps on real source
position `i` (`source_mask`). `s` is used at two points:

1. During the search, to pick the `K` best of the `K * V` candidates of each
   step. Every candidate gets `log P / lp` with its own length (a finished
   hypothesis keeps its length). `cp` is added to finished candidates only
   (those that end with EOS now or earlier), as tfa.seq2seq does: coverage can
   only grow as a hypothesis goes on, so leaving an unfinished hypothesis
   unpenalised is the optimistic bound of its final `cp`, while penalising its
   partial coverage would favour short hypotheses, the opposite of what `cp`
   is for.
2. In the final selection: all `K` beams, finished or cut at `max_length`,
   get the full `s` (`cp` included) and are sorted; the best `n_best` are
   returned.

With `alpha = 0` and `beta = 0`, `s` is the plain log-probability.
`length_normalization="average"` replaces `lp(Y)` by `|Y|`, the average
log-probability per token (OpenNMT's `avg`, fairseq's default).

`min_length` and `no_repeat_ngram_size` (`seqzoo.decoding.constraints`) ban
next tokens of each hypothesis before the candidates are ranked.
"""

import numbers

import keras
from keras import ops

from seqzoo.decoding.constraints import check_constraint_args, constrain, has_constraints
from seqzoo.decoding.top_k import top_k_rows
from seqzoo.errors import ArgumentError
from seqzoo.text.specials import EOS_ID, PAD_ID

# Coverage sums are floored before the log: a real source position that got
# no attention at all costs `beta * log(MIN_COVERAGE)`, a large but finite
# penalty, instead of -inf, which would tie every such hypothesis.
MIN_COVERAGE = 1e-10

_NEG_INF = float("-inf")


LENGTH_NORMALIZATIONS = ("gnmt", "average")


def _check_beam_args(beam_size, max_length, n_best, length_penalty, coverage_penalty,
                     alignment_fn, source_mask, length_normalization="gnmt", min_length=0,
                     no_repeat_ngram_size=0):
    if length_normalization not in LENGTH_NORMALIZATIONS:
        raise ArgumentError(f"Expected length_normalization to be one of {LENGTH_NORMALIZATIONS}. "
                            f"Received: length_normalization={length_normalization!r}")
    check_constraint_args(min_length, no_repeat_ngram_size)
    for name, value in (("beam_size", beam_size), ("max_length", max_length)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ArgumentError(
                f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    if not isinstance(n_best, numbers.Integral) or isinstance(n_best, bool) \
            or not 1 <= n_best <= beam_size:
        raise ArgumentError(
            f"Expected n_best to be an integer in [1, beam_size={beam_size}]. "
            f"Received: n_best={n_best!r}")
    for name, value in (("length_penalty", length_penalty), ("coverage_penalty", coverage_penalty)):
        if not isinstance(value, numbers.Real) or not value >= 0:
            raise ArgumentError(f"Expected {name} to be a number >= 0. Received: {name}={value!r}")
    if coverage_penalty > 0 and alignment_fn is None:
        raise ArgumentError(
            "The coverage penalty needs the attention of every step: pass alignment_fn. "
            f"Received: coverage_penalty={coverage_penalty!r}, alignment_fn=None")
    if source_mask is not None and alignment_fn is None:
        raise ArgumentError(
            "source_mask is only used with alignment_fn (coverage and alignments). "
            "Received: source_mask with alignment_fn=None")


def _length_penalty(lengths, alpha):
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, alpha)


def _coverage_penalty(coverage, mask, beta):
    """`beta * sum_i log(min(c_i, 1))` over real positions: `[B, K, S] -> [B, K]`."""
    logs = ops.log(ops.clip(coverage, MIN_COVERAGE, 1.0))
    return beta * ops.sum(ops.where(mask > 0, logs, 0.0), axis=-1)


def _tile(x, beam_size):
    # Rank-0 tensors have no batch axis: they are shared by every beam.
    if len(x.shape) == 0:
        return x
    return ops.repeat(x, beam_size, axis=0)


def _map_state(state, shared, fn_rows, fn_shared=lambda x: x):
    """Maps `fn_rows` over the leaves of a state nest, and `fn_shared` over the values
    of dict entries named in `shared` (at any depth), which have one row per item."""
    if isinstance(state, dict):
        return {key: (keras.tree.map_structure(fn_shared, value) if key in shared
                      else _map_state(value, shared, fn_rows, fn_shared))
                for key, value in state.items()}
    if isinstance(state, (list, tuple)) and not hasattr(state, "shape"):
        mapped = [_map_state(x, shared, fn_rows, fn_shared) for x in state]
        return type(state)(*mapped) if hasattr(state, "_fields") else type(state)(mapped)
    return fn_rows(state)


def _take_rows(x, rows):
    return x if len(x.shape) == 0 else ops.take(x, rows, axis=0)


def _keep_finished(finished, old, new):
    """Rows of finished hypotheses keep their old state."""
    if len(new.shape) == 0:
        return new
    keep = ops.reshape(finished, (-1,) + (1,) * (len(new.shape) - 1))
    return ops.where(keep, old, new)


def _gather_beams(x, rows, width):
    """Picks `rows` (flat indices into `B * K`) of `x [B, K, ...]` -> `[B, width, ...]`."""
    rest = tuple(ops.shape(x)[2:])
    flat = ops.take(ops.reshape(x, (-1,) + rest), rows, axis=0)
    return ops.reshape(flat, (-1, width) + rest)


def _flat_rows(index, beam_size):
    """`[B, W]` beam indices within each item -> `[B * W]` rows of the `B * K` layout."""
    base = ops.arange(ops.shape(index)[0], dtype="int32") * beam_size
    return ops.reshape(index + base[:, None], (-1,))


def beam_search(step_fn, start_ids, state, beam_size, max_length, eos_id=EOS_ID,
                length_penalty=0.0, coverage_penalty=0.0, n_best=1,
                alignment_fn=None, source_mask=None, length_normalization="gnmt",
                min_length=0, no_repeat_ngram_size=0, prefix=None, shared=(),
                return_alignments=True):
    """Keeps the `beam_size` best hypotheses of every batch item at every step.

    A hypothesis is finished once it emits `eos_id`. From then on its only
    continuation is `PAD_ID` at log-probability 0, so its score stays fixed
    while it competes with the unfinished ones, its state is no longer
    advanced, and its tokens after EOS are `PAD_ID`. The loop stops when every
    live hypothesis of every item is finished, or after `max_length` steps.
    The first step runs on one row per item (`N = B`), and its `K` best
    tokens start the `K` beams (with fewer than `K` tokens in the vocabulary
    it runs on `K` rows per item, only the first of them live). Shapes are
    fixed, so `step_fn` still runs on the rows of finished hypotheses (fed `PAD_ID`); their
    logits and new state are discarded. See the module docstring for the
    scores and where they are applied.

    Args:
        step_fn: `(token_ids [N], state) -> (logits [N, V], state)`.
        start_ids: `[B]` int tensor, the first input tokens (usually BOS).
        state: initial state nest; every tensor of rank >= 1 has the batch
            as its leading axis (rank-0 tensors are shared by all beams).
        beam_size: `K`, the number of hypotheses kept per item (a Python int,
            so it is a static argument of a compiled decoding function).
        max_length: the most tokens generated per hypothesis (EOS included).
        eos_id: the id that ends a hypothesis.
        length_penalty: `alpha >= 0` of the GNMT length penalty.
        coverage_penalty: `beta >= 0` of the GNMT coverage penalty; needs
            `alignment_fn` when `> 0`.
        n_best: how many hypotheses to return per item, `<= beam_size`.
        alignment_fn: optional `state -> [N, S]`, the attention over the
            source of the step that produced `state`. Called on the state
            after every step (and once on the tiled initial state, to learn
            `S`). Enables the coverage penalty and the `"alignments"` output.
        source_mask: optional `[B, S]`, nonzero on real source positions;
            only those count in the coverage penalty. Default: all real.
        length_normalization: `"gnmt"` (`length_penalty` is GNMT's alpha) or
            `"average"` (scores are log-probabilities per token;
            `length_penalty` is then unused).
        min_length: `</s>` is banned before this many tokens.
        no_repeat_ngram_size: `n > 0` bans tokens that would repeat an n-gram
            of the hypothesis.
        prefix: optional `[B, P]` ids every hypothesis of an item starts
            with (right padded with `PAD_ID`).
        shared: names of dict entries of `state` (at any depth) that are the
            same for every beam and that `step_fn` accepts with one row per
            item while the tokens have `K` rows per item (beam-major; one at
            the first step), such as
            an encoder memory attended by all beams of an item at once. They
            are neither tiled nor reordered, which saves copying them at every
            step; `step_fn` must pass them through unchanged.
        return_alignments: with `alignment_fn`, keep and return each
            hypothesis' attention (`"alignments"`); `False` saves that work
            where only the coverage penalty needs the attention.

    Returns:
        A dict:
        - `"ids"`: `[B, n_best, max_length]` int32, best first; EOS included,
          then `PAD_ID`.
        - `"scores"`: `[B, n_best]` float32, the final scores `s(Y, X)`.
        - `"log_probs"`: `[B, n_best]` float32, `log P(Y | X)`.
        - `"lengths"`: `[B, n_best]` int32, tokens generated, EOS included
          (`max_length` for a hypothesis that never emitted EOS).
        - `"alignments"` (with `alignment_fn`): `[B, n_best, max_length, S]`
          float32, the attention of each returned hypothesis at each of its
          steps; zeros after its EOS.
        - `"state"`: the state nest of each returned hypothesis after its
          last step, each tensor `[B, n_best, ...]` (rank-0 ones as they are).
    """
    _check_beam_args(beam_size, max_length, n_best, length_penalty, coverage_penalty,
                     alignment_fn, source_mask, length_normalization, min_length,
                     no_repeat_ngram_size)
    k = int(beam_size)
    max_length = int(max_length)
    alpha = float(length_penalty)
    beta = float(coverage_penalty)

    start_ids = ops.cast(start_ids, "int32")
    batch = ops.shape(start_ids)[0]
    shared = tuple(shared)
    state = _map_state(state, shared, ops.convert_to_tensor, ops.convert_to_tensor)
    positions = ops.arange(max_length, dtype="int32")
    if prefix is not None:
        prefix = ops.convert_to_tensor(prefix, "int32")

    mask, extras = None, ()  # the optional per-beam records: alignments, coverage
    if alignment_fn is not None:
        if source_mask is not None:
            source_len = ops.shape(source_mask)[-1]
            mask = ops.cast(source_mask, "float32")[:, None, :]
        else:
            source_len = ops.shape(alignment_fn(state))[-1]
            mask = ops.ones((batch, 1, source_len), "float32")
        extras = ("alignments",) * bool(return_alignments) + ("coverage",) * (beta > 0)

    def start_beams(width):
        """The beams before the first step, `width` per item: only the first is live."""
        beams = {
            "log_probs": ops.zeros((batch, width), "float32")
            + ops.where(ops.arange(width) == 0, 0.0, _NEG_INF)[None, :],
            "lengths": ops.zeros((batch, width), "int32"),
            "finished": ops.zeros((batch, width), "bool"),
            "ids": ops.zeros((batch, width, max_length), "int32"),
        }
        if "alignments" in extras:
            beams["alignments"] = ops.zeros((batch, width, max_length, source_len), "float32")
        if "coverage" in extras:
            beams["coverage"] = ops.zeros((batch, width, source_len), "float32")
        return beams

    def penalised(log_probs, lengths):
        if length_normalization == "average":
            return log_probs / ops.cast(ops.maximum(lengths, 1), "float32")
        return log_probs / _length_penalty(lengths, alpha) if alpha > 0 else log_probs

    def cond(t, prev, state, beams):
        # -inf beams (only there when K exceeds the live candidates) never matter.
        done = ops.logical_or(beams["finished"], beams["log_probs"] == _NEG_INF)
        return ops.logical_and(t < max_length, ops.logical_not(ops.all(done)))

    def advance(t, prev, state, beams, step, prefix, kk):
        """One step from `kk` hypotheses per item (rows `b * kk .. b * kk + kk - 1`)
        to `k`: `step` is `step_fn(prev, state)`, already taken."""
        finished = beams["finished"]
        logits, new_state = step
        logits = ops.cast(logits, "float32")
        vocab = ops.shape(logits)[-1]
        tokens = ops.arange(vocab, dtype="int32")
        width, shortlist = vocab, None
        short = beta == 0 and isinstance(vocab, int) and vocab > k
        # The shortlist ranks the logits and normalizes only the K it keeps.
        step_lp = logits if short else ops.log_softmax(logits, axis=-1)
        if has_constraints(min_length, no_repeat_ngram_size, prefix):
            history = ops.reshape(beams["ids"], (-1, max_length))
            step_lp = constrain(step_lp, t, history, min_length, no_repeat_ngram_size, eos_id,
                                banned=_NEG_INF, prefix=prefix)
        if short:
            # Within a beam every candidate has the same length, so its score is a
            # monotone function of the token's log-probability: the K best
            # candidates of the item are among the K best tokens of each beam.
            # Ranking those K * K instead of all K * V candidates gives the same
            # choice (ties still go to the lower beam, then the lower token id).
            # A finished beam's only candidate is PAD at 0 (its token is set to
            # PAD below), the rest -inf.
            # (On the [N, V] rows: XLA's CPU top_k of a [B, K, V] array is slower.)
            step_lp, shortlist = top_k_rows(step_lp, k)
            top = ops.max(logits, axis=-1, keepdims=True)
            step_lp = (step_lp - top) - ops.log(ops.sum(ops.exp(logits - top), axis=-1,
                                                         keepdims=True))
            step_lp = ops.reshape(step_lp, (-1, kk, k))
            shortlist = ops.reshape(shortlist, (-1, kk, k))  # int32 from top_k_rows
            first_only = ops.where(ops.arange(k) == 0, 0.0, _NEG_INF)
            step_lp = ops.where(finished[..., None], first_only[None, None, :], step_lp)
            width = k
        else:
            step_lp = ops.reshape(step_lp, (-1, kk, vocab))
            pad_only = ops.where(tokens == PAD_ID, 0.0, _NEG_INF)
            step_lp = ops.where(finished[..., None], pad_only[None, None, :], step_lp)
        cand_lp = beams["log_probs"][..., None] + step_lp
        cand_len = ops.where(finished, beams["lengths"], t + 1)
        cand_scores = penalised(cand_lp, cand_len[..., None])

        # Leaves the step passes through unchanged (the encoder memory, its keys and
        # mask) are the same in every beam of an item: they need no keeping and no
        # reordering, which would copy them at every step.
        constant = keras.tree.map_structure(lambda new, old: new is old, new_state, state)
        new_state = keras.tree.map_structure(
            lambda new, old, same: new if same
            else _keep_finished(ops.reshape(finished, (-1,)), old, new),
            new_state, state, constant,
        )
        if alignment_fn is not None:
            align = ops.cast(alignment_fn(new_state), "float32")
            align = ops.reshape(align, (-1, kk, ops.shape(align)[-1]))
            align = ops.where(finished[..., None], 0.0, align)
        if beta > 0:
            coverage = beams["coverage"] + align
            cand_finished = ops.logical_or(finished[..., None], (tokens == eos_id)[None, None, :])
            cp = _coverage_penalty(coverage, mask, beta)
            cand_scores = cand_scores + ops.where(cand_finished, cp[..., None], 0.0)

        _, index = ops.top_k(ops.reshape(cand_scores, (-1, kk * width)), k)
        index = ops.cast(index, "int32")
        parent = index // width
        rows = _flat_rows(parent, kk)
        parent_finished = _gather_beams(finished, rows, k)
        token = index % width
        if shortlist is not None:  # back from the shortlist's rank to the token id
            token = ops.take_along_axis(ops.reshape(shortlist, (-1, kk * width)), index, axis=1)
        token = ops.where(parent_finished, PAD_ID, token)

        new = {
            "log_probs": ops.take_along_axis(ops.reshape(cand_lp, (-1, kk * width)), index,
                                             axis=1),
            "lengths": ops.where(parent_finished, _gather_beams(beams["lengths"], rows, k), t + 1),
            "finished": ops.logical_or(parent_finished, token == eos_id),
            "ids": ops.where(positions[None, None, :] == t, token[..., None],
                             _gather_beams(beams["ids"], rows, k)),
        }
        if "alignments" in beams:
            new["alignments"] = ops.where(
                positions[None, None, :, None] == t,
                _gather_beams(align, rows, k)[:, :, None, :],
                _gather_beams(beams["alignments"], rows, k),
            )
        if beta > 0:
            new["coverage"] = _gather_beams(coverage, rows, k)
        if kk == k:
            new_state = keras.tree.map_structure(
                lambda x, same: x if same else _take_rows(x, rows), new_state, constant)
        else:  # from one row per item to K: every leaf but the shared ones grows
            new_state = _map_state(new_state, shared, lambda x: _take_rows(x, rows))
        return t + 1, ops.reshape(token, (-1,)), new_state, new

    tiled_prefix = None if prefix is None else _tile(prefix, k)

    def body(t, prev, state, beams):
        return advance(t, prev, state, beams, step_fn(prev, state), tiled_prefix, k)

    t = ops.convert_to_tensor(0, "int32")
    # The first step on one row per item (see the docstring); a vocabulary
    # smaller than K cannot fill the beams: then K rows from the start.
    first = step_fn(start_ids, state) if k > 1 else None
    if first is not None and isinstance(ops.shape(first[0])[-1], int) \
            and ops.shape(first[0])[-1] >= k:
        loop_vars = advance(t, start_ids, state, start_beams(1), first, prefix, 1)
    else:
        state = _map_state(state, shared, lambda x: _tile(x, k))
        loop_vars = (t, _tile(start_ids, k), state, start_beams(k))
    _, _, state, beams = ops.while_loop(cond, body, loop_vars)

    scores = penalised(beams["log_probs"], beams["lengths"])
    if beta > 0:
        scores = scores + _coverage_penalty(beams["coverage"], mask, beta)
    best_scores, order = ops.top_k(scores, n_best)
    rows = _flat_rows(ops.cast(order, "int32"), k)
    result = {
        "ids": _gather_beams(beams["ids"], rows, n_best),
        "scores": best_scores,
        "log_probs": _gather_beams(beams["log_probs"], rows, n_best),
        "lengths": _gather_beams(beams["lengths"], rows, n_best),
        "state": _map_state(
            state, shared,
            lambda x: x if len(x.shape) == 0
            else ops.reshape(ops.take(x, rows, axis=0), (-1, n_best) + tuple(ops.shape(x)[1:])),
            lambda x: x if len(x.shape) == 0 else ops.repeat(x[:, None], n_best, axis=1),
        ),
    }
    if "alignments" in beams:
        result["alignments"] = _gather_beams(beams["alignments"], rows, n_best)
    return result
