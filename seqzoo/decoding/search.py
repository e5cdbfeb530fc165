"""Greedy search and sampling as pure functions of a step function.

A step function maps the previous tokens and a state to next-token logits
and a new state: `step_fn(token_ids [B], state) -> (logits [B, V], state)`,
where `state` is any nest of tensors (RNN states, encoder memory, masks,
attention history). The loops here use `keras.ops.while_loop` with fixed
shapes, so they compile on every backend (see `CompiledFunction`).
"""

import keras
from keras import ops

from seqzoo.decoding.constraints import check_constraint_args, constrain, has_constraints
from seqzoo.errors import ArgumentError
from seqzoo.text.specials import EOS_ID, PAD_ID


def _check_decode_args(max_length, temperature=1.0, top_k=None, top_p=None, min_length=0,
                       no_repeat_ngram_size=0):
    if not isinstance(max_length, int) or max_length < 1:
        raise ArgumentError(f"Expected a positive integer. Received: max_length={max_length!r}")
    if not temperature > 0:
        raise ArgumentError(f"Expected temperature > 0. Received: temperature={temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ArgumentError("Expected top_k to be None or a positive integer. "
                            f"Received: top_k={top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ArgumentError(f"Expected top_p to be None or in (0, 1]. Received: top_p={top_p!r}")
    check_constraint_args(min_length, no_repeat_ngram_size)


def decode_loop(step_fn, start_ids, state, max_length, choose, eos_id=EOS_ID, min_length=0,
                no_repeat_ngram_size=0, prefix=None):
    """Runs `step_fn` until every sequence has emitted `eos_id` or `max_length` steps.

    Args:
        step_fn: `(token_ids [B], state) -> (logits [B, V], state)`.
        start_ids: `[B]` int tensor, the first input tokens (usually BOS).
        state: initial state nest.
        max_length: the most tokens generated per sequence (EOS included).
        choose: `(step, logits [B, V]) -> next_ids [B]`.
        eos_id: the id that ends a sequence.
        min_length, no_repeat_ngram_size, prefix: constraints on the next
            token (`seqzoo.decoding.constraints`; `prefix`: `[B, P]` ids each
            output starts with), applied to the logits `choose` sees; the
            scores stay the model's log-probabilities.

    Returns:
        `(ids, scores, state)`: `ids` is `[B, max_length]` int32 holding the
        generated tokens, EOS included, then `PAD_ID`; `scores` is `[B]`, the
        sum of the model's log-probabilities of the generated tokens; `state`
        is the state after the last step.
    """
    start_ids = ops.cast(start_ids, "int32")
    batch = ops.shape(start_ids)[0]
    positions = ops.arange(max_length, dtype="int32")

    def cond(t, prev, state, ids, scores, finished):
        return ops.logical_and(t < max_length, ops.logical_not(ops.all(finished)))

    def body(t, prev, state, ids, scores, finished):
        logits, new_state = step_fn(prev, state)
        logits = ops.cast(logits, "float32")
        allowed = logits
        if has_constraints(min_length, no_repeat_ngram_size, prefix):
            allowed = constrain(logits, t, ids, min_length, no_repeat_ngram_size, eos_id,
                                prefix=prefix)
        chosen = ops.cast(choose(t, allowed), "int32")
        chosen = ops.where(finished, PAD_ID, chosen)
        log_probs = ops.log_softmax(logits, axis=-1)
        chosen_lp = ops.take_along_axis(log_probs, chosen[:, None], axis=1)[:, 0]
        scores = scores + ops.where(finished, 0.0, chosen_lp)
        ids = ops.where(positions[None, :] == t, chosen[:, None], ids)
        # A finished sequence keeps its state: later steps must not change it.
        new_state = keras.tree.map_structure(
            lambda new, old: _keep_where(finished, old, new), new_state, state
        )
        finished = ops.logical_or(finished, ops.equal(chosen, eos_id))
        return t + 1, chosen, new_state, ids, scores, finished

    loop_vars = (
        ops.convert_to_tensor(0, "int32"),
        start_ids,
        state,
        ops.zeros((batch, max_length), "int32"),
        ops.zeros((batch,), "float32"),
        ops.zeros((batch,), "bool"),
    )
    _, _, state, ids, scores, _ = ops.while_loop(cond, body, loop_vars)
    return ids, scores, state


def _keep_where(finished, old, new):
    if len(new.shape) == 0 or new.shape[0] != finished.shape[0]:
        return new
    keep = ops.reshape(finished, (-1,) + (1,) * (len(new.shape) - 1))
    return ops.where(keep, old, new)


def greedy_search(step_fn, start_ids, state, max_length, eos_id=EOS_ID, min_length=0,
                  no_repeat_ngram_size=0, prefix=None):
    """Picks the most likely allowed token at every step.

    Args and returns as `decode_loop`.
    """
    _check_decode_args(max_length, min_length=min_length,
                       no_repeat_ngram_size=no_repeat_ngram_size)
    return decode_loop(
        step_fn, start_ids, state, max_length, lambda t, logits: ops.argmax(logits, -1), eos_id,
        min_length, no_repeat_ngram_size, prefix)


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """Scales logits by `1 / temperature`, keeps only the `top_k` best, then the nucleus.

    `top_p` keeps the smallest set of most likely tokens whose probabilities
    (after temperature and `top_k`) sum to at least `top_p`, to within 1e-6
    of float32 rounding (Holtzman et al. 2020); the most likely token is
    always kept.
    """
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = ops.top_k(logits, top_k)[0][:, -1:]
        logits = ops.where(logits < kth, -1e9, logits)
    if top_p is not None and top_p < 1:
        ranked = ops.top_k(logits, logits.shape[-1])[0]
        probs = ops.softmax(ranked, axis=-1)
        before = ops.cumsum(probs, axis=-1) - probs  # probability of the tokens ranked above
        # Float32 sums of probabilities are off by a few units in the last place
        # (how many depends on the CPU's vector width): a set short of top_p by
        # less than 1e-6 reaches it, so a boundary case keeps the same set everywhere.
        kept = ops.logical_or(before < top_p - 1e-6, ops.arange(logits.shape[-1]) == 0)
        threshold = ops.min(ops.where(kept, ranked, ops.max(ranked, axis=-1, keepdims=True)),
                            axis=-1, keepdims=True)
        logits = ops.where(logits < threshold, -1e9, logits)
    return logits


def sample(step_fn, start_ids, state, max_length, uniforms, temperature=1.0, top_k=None,
           eos_id=EOS_ID, top_p=None, min_length=0, no_repeat_ngram_size=0, prefix=None):
    """Draws each token from the softmax of the step's logits.

    The randomness comes in as `uniforms` `[max_length, B]` (draw them with
    `keras.random.uniform` and a seed): token `t` of sequence `b` is found by
    inverse-CDF sampling with `uniforms[t, b]`. Keeping the random draws out
    of the loop makes the loop a pure, compilable function on every backend
    and a fixed seed reproducible.

    Args:
        step_fn, start_ids, state, max_length, eos_id: as in `decode_loop`.
        uniforms: `[max_length, B]` floats in `[0, 1)`.
        temperature: divides the logits; below 1 sharpens, above 1 flattens.
        top_k: sample among the `top_k` most likely tokens only.
        top_p: nucleus sampling: among the most likely tokens whose
            probabilities sum to `top_p` (see `filter_logits`).
        min_length, no_repeat_ngram_size, prefix: as in `decode_loop`.

    Returns:
        As `decode_loop`.
    """
    _check_decode_args(max_length, temperature, top_k, top_p, min_length, no_repeat_ngram_size)

    def choose(t, logits):
        probs = ops.softmax(filter_logits(logits, temperature, top_k, top_p), axis=-1)
        cdf = ops.cumsum(probs, axis=-1)
        u = ops.take(uniforms, t, axis=0)[:, None]
        index = ops.sum(ops.cast(cdf < u, "int32"), axis=-1)
        return ops.minimum(index, logits.shape[-1] - 1)

    return decode_loop(step_fn, start_ids, state, max_length, choose, eos_id, min_length,
                       no_repeat_ngram_size, prefix)
