"""`tfa.seq2seq.gather_tree`, `gather_tree_from_array` and `tile_batch` on `keras.ops`.

`gather_tree` follows TFA's custom op (`Addons>GatherTree`): the inputs are
time-major `[max_time, batch_size, beam_width]`, a length above `max_time` is
clamped to it, a length of 0 gives a column of `end_token`, every step at or
past a batch item's length is `end_token`, and so is every step after a
beam's first `end_token`. Unlike the op, out-of-range parent ids are not
checked (a backend's gather decides: TensorFlow fails on CPU, JAX clamps).
"""

import keras
from keras import ops

from seqzoo.tfa.seq2seq._common import is_tensor_array, rank, static_or_dynamic


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
        ValueError: if the ranks or the batch sizes do not agree.
    """
    step_ids = _int32(step_ids)
    parent_ids = _int32(parent_ids)
    max_sequence_lengths = _int32(max_sequence_lengths)
    end_token = _int32(end_token)
    _check_gather_tree_args(step_ids, parent_ids, max_sequence_lengths, end_token)
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
