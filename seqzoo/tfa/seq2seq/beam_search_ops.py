"""The tensor functions of `tfa.seq2seq`'s beam search on `keras.ops`.

`gather_tree`, `gather_tree_from_array` and `tile_batch` are TFA's public
functions; `beam_search_step` is the selection of one `BeamSearchDecoder`
step (TFA's `_beam_search_step`), with TFA's scores: see its docstring.

`gather_tree` follows TFA's custom op (`Addons>GatherTree`): the inputs are
time-major `[max_time, batch_size, beam_width]`, a length above `max_time` is
clamped to it, a length of 0 gives a column of `end_token`, every step at or
past a batch item's length is `end_token`, and so is every step after a
beam's first `end_token`. Unlike the op, out-of-range parent ids are not
checked (a backend's gather decides: TensorFlow fails on CPU, JAX clamps).
"""

import collections

import keras
import numpy as np
from keras import ops

from seqzoo.tfa.seq2seq._common import is_tensor_array, rank, static_or_dynamic
from seqzoo.tfa.seq2seq.wrapper_state import AttentionWrapperState


class BeamSearchDecoderState(collections.namedtuple(
        "BeamSearchDecoderState",
        ("cell_state", "log_probs", "finished", "lengths", "accumulated_attention_probs"))):
    """The state of a `BeamSearchDecoder`, with TFA's fields.

    Fields:
        cell_state: the cell's state, each tensor `[batch_size, beam_width, ...]`.
        log_probs: `[batch_size, beam_width]` float32, each beam's log-probability.
        finished: `[batch_size, beam_width]` bool.
        lengths: `[batch_size, beam_width]` int64 (int32 on JAX without 64-bit
            types), each beam's length (its end token included).
        accumulated_attention_probs: `[batch_size, beam_width, memory_time]`,
            the attention summed over the steps (with a coverage penalty), else `()`.
    """


class BeamSearchDecoderOutput(collections.namedtuple(
        "BeamSearchDecoderOutput", ("scores", "predicted_ids", "parent_ids"))):
    """The outputs of a `BeamSearchDecoder` step, with TFA's fields.

    Fields:
        scores: `[batch_size, beam_width]` float32, the (penalised) scores of
            the chosen beams; `[batch_size, beam_width, vocab_size]`, every
            token's score, with `output_all_scores=True`.
        predicted_ids: `[batch_size, beam_width]` int32, the chosen tokens.
        parent_ids: `[batch_size, beam_width]` int32, the beam each came from.
    """


class FinalBeamSearchDecoderOutput(collections.namedtuple(
        "FinalBeamDecoderOutput", ("predicted_ids", "beam_search_decoder_output"))):
    """The outputs of a whole beam search, with TFA's fields.

    Fields:
        predicted_ids: `[batch_size, T, beam_width]` int32 (`[T, batch_size,
            beam_width]` when time major), the beams' tokens after `gather_tree`,
            best beam first.
        beam_search_decoder_output: the `BeamSearchDecoderOutput` of every
            step, stacked on the time axis.
    """


def _int32(x):
    x = ops.convert_to_tensor(x)
    return x if x.dtype == "int32" else ops.cast(x, "int32")


def _tile_one(t, multiplier):
    t = ops.convert_to_tensor(t)
    if rank(t) < 1:
        raise ValueError(
            "t must have statically known rank (>= 1): tile_batch repeats the batch axis. "
            f"Received: t.shape={tuple(t.shape)}")
    return ops.repeat(t, multiplier, axis=0)


def tile_batch(t, multiplier, name=None):
    """Repeats each batch entry `multiplier` times, in every tensor of a nest.

    A tensor `[batch_size, ...]` with entries `t[0], t[1], ...` becomes
    `[batch_size * multiplier, ...]` with entries
    `t[0], t[0], ..., t[1], t[1], ...`: the layout a `BeamSearchDecoder`
    expects of the memory and the initial state (not `ops.tile`, which
    repeats the whole batch).

    Args:
        t: a tensor of rank >= 1 shaped `[batch_size, ...]`, or a nested
            structure (list, tuple, dict, namedtuple) of them.
        multiplier: Python int, the beam width.
        name: unused; kept for TFA's signature.

    Returns:
        The same structure, each tensor `[batch_size * multiplier, ...]`.

    Raises:
        ValueError: if a tensor has rank 0.
    """
    del name
    return keras.tree.map_structure(lambda x: _tile_one(x, multiplier), t)


def _check_gather_tree_args(step_ids, parent_ids, max_sequence_lengths, end_token):
    if rank(step_ids) != 3:
        raise ValueError(
            f"step_ids must be a 3-tensor, saw shape: {tuple(step_ids.shape)}")
    if rank(max_sequence_lengths) != 1:
        raise ValueError(
            "max_sequence_lengths must be a vector, saw shape: "
            f"{tuple(max_sequence_lengths.shape)}")
    if rank(end_token) != 0:
        raise ValueError(f"end_token must be a scalar, saw shape: {tuple(end_token.shape)}")
    a, b = tuple(step_ids.shape), tuple(parent_ids.shape)
    if len(a) != len(b) or any(x is not None and y is not None and x != y
                               for x, y in zip(a, b)):
        raise ValueError(
            f"step_ids.shape must match parent_ids.shape. but shapes are: {a} and {b}")
    batch, lengths_batch = a[1], max_sequence_lengths.shape[0]
    if batch is not None and lengths_batch is not None and batch != lengths_batch:
        raise ValueError(
            "batch size dimensions step_ids.shape[1] and max_sequence_lengths.shape[0] must "
            f"match. but shapes are: {a} and {tuple(max_sequence_lengths.shape)}")


def _concrete(x):
    """`x` as numpy when its values are known (eager), else `None` (traced)."""
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # a symbolic tensor or a tracer: the values come at run time
        return None


def _check_parent_ids(parent_ids, max_sequence_lengths):
    """TFA's check of the parent ids each beam's path reads, where their values are known."""
    parents, lengths = _concrete(parent_ids), _concrete(max_sequence_lengths)
    if parents is None or lengths is None:
        return
    max_time, batch_size, beam_width = parents.shape
    for batch in range(batch_size):
        length = min(max_time, int(lengths[batch]))
        for beam in range(beam_width):
            parent = beam
            for level in range(length - 1, 0, -1):
                parent = int(parents[level, batch, parent])
                if not 0 <= parent < beam_width:
                    raise ValueError(
                        f"Saw invalid parent id {parent} at (batch, time, beam) == "
                        f"({batch}, {level - 1}, {beam}); parent ids must be in "
                        f"[0, {beam_width}).")


def gather_tree(step_ids, parent_ids, max_sequence_lengths, end_token):
    """Calculates the full beams from the per-step ids and parent beam ids.

    Walks each beam back from the last step of its batch item through
    `parent_ids`. Past the first `end_token` of a beam, and at or past
    `max_sequence_lengths[b]`, every value is `end_token`.

    Args:
        step_ids: `[max_time, batch_size, beam_width]` int32, the token ids
            chosen at each step.
        parent_ids: `[max_time, batch_size, beam_width]` int32, the beam
            each step's beam came from.
        max_sequence_lengths: `[batch_size]` int32, the number of steps of
            each batch item (clamped to `max_time`).
        end_token: int32 scalar, the end token id.

    Returns:
        `[max_time, batch_size, beam_width]` int32, the token ids of each
        final beam.

    Raises:
        ValueError: if the ranks or the batch sizes do not agree, or, where the
            values are known (eagerly), if a beam's path reads a parent id
            outside `[0, beam_width)`.
    """
    step_ids = _int32(step_ids)
    parent_ids = _int32(parent_ids)
    max_sequence_lengths = _int32(max_sequence_lengths)
    end_token = _int32(end_token)
    _check_gather_tree_args(step_ids, parent_ids, max_sequence_lengths, end_token)
    _check_parent_ids(parent_ids, max_sequence_lengths)
    max_time = static_or_dynamic(step_ids, 0)
    beam_width = static_or_dynamic(step_ids, 2)
    lengths = ops.minimum(max_sequence_lengths, ops.cast(max_time, "int32"))
    in_range = ops.arange(max_time, dtype="int32")[:, None] < lengths[None, :]  # [T, B]

    last = ops.broadcast_to(ops.arange(beam_width, dtype="int32")[None, :],
                            ops.shape(step_ids)[1:])

    def back_step(t, beam, beams):
        # `beam` [B, W]: for each final beam, its ancestor at step `t`.
        valid = in_range[t][:, None]
        token = ops.where(valid, ops.take_along_axis(step_ids[t], beam, axis=1), end_token)
        beam = ops.where(valid, ops.take_along_axis(parent_ids[t], beam, axis=1), beam)
        return t - 1, beam, ops.slice_update(beams, (t, 0, 0), token[None])

    _, _, beams = ops.while_loop(
        lambda t, beam, beams: t >= 0, back_step,
        (ops.cast(max_time, "int32") - 1, last, ops.zeros_like(step_ids)))
    ended = ops.cumsum(ops.cast(beams == end_token, "int32"), axis=0) > 0
    return ops.where(ended, end_token, beams)


def gather_tree_from_array(t, parent_ids, sequence_length):
    """Reorders the beams of per-step values along the beam search's paths.

    Args:
        t: `[max_time, batch_size, beam_width, ...]` or
            `[max_time, batch_size * beam_width, ...]` (a stacked
            `tf.TensorArray`, or the `TensorArray` itself on TensorFlow).
        parent_ids: `[max_time, batch_size, beam_width]` int32.
        sequence_length: `[batch_size, beam_width]`, the length of each beam.

    Returns:
        A tensor shaped like `t` whose beams follow each final beam's
        ancestors; steps at or past a beam's length keep their own beam.
    """
    if is_tensor_array(t):
        t = t.stack()
    t = ops.convert_to_tensor(t)
    parent_ids = _int32(parent_ids)
    sequence_length = _int32(sequence_length)
    max_time = static_or_dynamic(parent_ids, 0)
    batch_size = static_or_dynamic(parent_ids, 1)
    beam_width = static_or_dynamic(parent_ids, 2)
    beam_ids = ops.broadcast_to(ops.arange(beam_width, dtype="int32")[None, None, :],
                                ops.shape(parent_ids))
    sorted_beam_ids = gather_tree(beam_ids, parent_ids, ops.max(sequence_length, axis=1),
                                  beam_width + 1)
    times = ops.arange(max_time, dtype="int32")[:, None, None]
    in_bound = times < sequence_length[None, :, :]
    sorted_beam_ids = ops.where(in_bound, sorted_beam_ids, beam_ids)
    gather_from = ops.reshape(t, (max_time, batch_size, beam_width, -1))
    ordered = ops.take_along_axis(gather_from, sorted_beam_ids[..., None], axis=2)
    return ops.reshape(ordered, ops.shape(t))


def lengths_dtype():
    """TFA's `int64` for the beam lengths; `int32` on JAX without 64-bit types (its default)."""
    if keras.backend.backend() == "jax":
        import jax

        return "int64" if jax.config.jax_enable_x64 else "int32"
    return "int64"


def length_penalty(sequence_lengths, penalty_factor):
    """GNMT's length penalty `((5 + lengths) / 6) ** penalty_factor`, as TFA computes it.

    Returns `1.0` when `penalty_factor` is 0.
    """
    if penalty_factor == 0:
        return 1.0
    factor = ops.convert_to_tensor(penalty_factor, "float32")
    lengths = ops.cast(sequence_lengths, "float32")
    return ops.power(5.0 + lengths, factor) / ops.power(6.0, factor)


def _mask_probs(probs, end_token, finished):
    """Finished beams: 0 for `end_token`, the dtype's minimum for every other token."""
    vocab_size = static_or_dynamic(probs, 2)
    minimum = float(np.finfo(keras.backend.standardize_dtype(probs.dtype)).min)
    finished_row = ops.where(ops.arange(vocab_size, dtype="int32") == end_token,
                             ops.zeros((), probs.dtype), ops.full((), minimum, probs.dtype))
    return ops.where(finished[:, :, None], finished_row[None, None, :], probs)


def _alignments(state):
    alignments = state.alignments
    if isinstance(alignments, tuple):
        return ops.mean(ops.stack(alignments, axis=-1), axis=-1)
    return alignments


def attention_probs(cell_state, coverage_penalty_weight):
    """The attention `[batch_size, beam_width, memory_time]` for the coverage penalty.

    The alignments of the `AttentionWrapperState` (or the mean over the
    wrappers of a list or tuple of states, and over the mechanisms of a
    wrapper); `None` without a coverage penalty.

    Raises:
        ValueError: with a coverage penalty but no attention in the state.
    """
    if coverage_penalty_weight == 0:
        return None
    if isinstance(cell_state, AttentionWrapperState):
        probs = [_alignments(cell_state)]
    elif isinstance(cell_state, (list, tuple)):
        probs = [_alignments(s) for s in cell_state if isinstance(s, AttentionWrapperState)]
    else:
        probs = []
    if not probs:
        raise ValueError("coverage_penalty_weight must be 0.0 if no cell is attentional.")
    if len(probs) == 1:
        return probs[0]
    return ops.mean(ops.stack(probs, axis=-1), axis=-1)


def _scores(log_probs, lengths, length_penalty_weight, coverage_penalty_weight, finished,
            accumulated_attention_probs):
    scores = log_probs / ops.cast(length_penalty(lengths, length_penalty_weight),
                                  log_probs.dtype)
    if coverage_penalty_weight == 0:
        return scores
    # Positions that got no attention at all (padding) count as covered.
    probs = accumulated_attention_probs
    probs = ops.where(probs == 0.0, ops.ones_like(probs), probs)
    coverage = ops.sum(ops.log(ops.minimum(probs, 1.0)), axis=2)
    coverage = coverage * ops.cast(finished, coverage.dtype) * coverage_penalty_weight
    return scores + ops.cast(coverage, scores.dtype)[:, :, None]


def gather_beams(x, beam_ids):
    """Picks beams `beam_ids [B, W]` of `x [B, W, ...]`; other values pass through."""
    if is_tensor_array(x) or rank(x) < 2:
        return x
    index = beam_ids
    for _ in range(rank(x) - 2):
        index = index[..., None]
    return ops.take_along_axis(x, index, axis=1)


def beam_search_step(logits, next_cell_state, beam_state, end_token, length_penalty_weight,
                     coverage_penalty_weight, output_all_scores):
    """One step of TFA's beam search: scores every continuation, keeps the best `W`.

    A finished beam's only continuation is `end_token` (its other tokens get
    the dtype's minimum, not -inf), at no cost, and its length stays. The
    score of a continuation is `log_prob / lp(length)`, where the length
    does not count an `end_token` chosen at this step (it does once chosen:
    the state's lengths include the end token); the coverage penalty
    `weight * sum(log(min(acc_attention, 1)))` (0 where the attention sum is
    0) is added to the beams finished before this step only.

    Args:
        logits: `[B, W, V]`.
        next_cell_state: the cell's new state, tensors `[B, W, ...]`.
        beam_state: the `BeamSearchDecoderState` before the step.
        end_token: int32 scalar.
        length_penalty_weight, coverage_penalty_weight: Python floats.
        output_all_scores: whether the output's scores are `[B, W, V]`.

    Returns:
        `(BeamSearchDecoderOutput, BeamSearchDecoderState)`.
    """
    beam_width = static_or_dynamic(logits, 1)
    vocab_size = static_or_dynamic(logits, 2)
    previously_finished = beam_state.finished
    not_finished = ops.logical_not(previously_finished)
    step_log_probs = _mask_probs(ops.log_softmax(logits, axis=-1), end_token,
                                 previously_finished)
    total_probs = beam_state.log_probs[:, :, None] + step_log_probs

    int_dtype = lengths_dtype()
    lengths = ops.cast(beam_state.lengths, int_dtype)
    not_end = ops.cast(ops.arange(vocab_size, dtype="int32") != end_token, int_dtype)
    lengths_to_add = not_end[None, None, :] * ops.cast(not_finished, int_dtype)[:, :, None]
    new_lengths = lengths_to_add + lengths[:, :, None]

    accumulated = None
    probs = attention_probs(next_cell_state, coverage_penalty_weight)
    if probs is not None:
        probs = probs * ops.cast(not_finished, probs.dtype)[:, :, None]
        accumulated = beam_state.accumulated_attention_probs + probs

    scores = _scores(total_probs, new_lengths, length_penalty_weight, coverage_penalty_weight,
                     previously_finished, accumulated)
    flat_scores = ops.reshape(scores, (-1, beam_width * vocab_size))
    next_beam_scores, word_indices = ops.top_k(flat_scores, k=beam_width)
    word_indices = ops.cast(word_indices, "int32")
    next_beam_probs = ops.take_along_axis(
        ops.reshape(total_probs, (-1, beam_width * vocab_size)), word_indices, axis=1)
    next_word_ids = word_indices % vocab_size
    next_beam_ids = word_indices // vocab_size

    previously_finished = ops.take_along_axis(previously_finished, next_beam_ids, axis=1)
    next_finished = ops.logical_or(previously_finished, next_word_ids == end_token)
    next_lengths = (ops.take_along_axis(lengths, next_beam_ids, axis=1)
                    + ops.cast(ops.logical_not(previously_finished), int_dtype))
    next_accumulated = (() if accumulated is None
                        else gather_beams(accumulated, next_beam_ids))
    next_cell_state = keras.tree.map_structure(lambda x: gather_beams(x, next_beam_ids),
                                               next_cell_state)
    state = BeamSearchDecoderState(
        cell_state=next_cell_state, log_probs=next_beam_probs, finished=next_finished,
        lengths=next_lengths, accumulated_attention_probs=next_accumulated)
    output = BeamSearchDecoderOutput(
        scores=scores if output_all_scores else next_beam_scores,
        predicted_ids=next_word_ids, parent_ids=next_beam_ids)
    return output, state
