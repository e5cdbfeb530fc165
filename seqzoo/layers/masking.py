"""Padding and masking helpers on `keras.ops`.

One rule across seqzoo: `PAD_ID` (0) pads, sequences are right padded, and a
mask is `True` on real positions.
"""

from keras import ops

from seqzoo.text.specials import PAD_ID


def sequence_mask(lengths, maxlen=None, dtype="bool"):
    """Mask of the first `lengths[i]` positions of each row.

    Args:
        lengths: integer tensor of shape `[B]` (or any shape `S`).
        maxlen: the number of positions; defaults to `max(lengths)`. Pass it
            for fixed shapes inside compiled functions.
        dtype: the dtype of the result.

    Returns:
        A tensor of shape `S + [maxlen]`: `mask[..., t] = t < lengths[...]`.
    """
    lengths = ops.convert_to_tensor(lengths)
    if maxlen is None:
        maxlen = ops.max(lengths)
    positions = ops.arange(maxlen, dtype=lengths.dtype)
    mask = ops.less(positions, ops.expand_dims(lengths, -1))
    return mask if dtype == "bool" else ops.cast(mask, dtype)


def mask_from_ids(ids, pad_id=PAD_ID):
    """Boolean mask of the non-padding positions of `ids` (`[B, T]` -> `[B, T]`)."""
    return ops.not_equal(ids, pad_id)


def lengths_from_ids(ids, pad_id=PAD_ID):
    """Lengths of right-padded id sequences: `[B, T]` -> `[B]` int32."""
    return ops.sum(ops.cast(mask_from_ids(ids, pad_id), "int32"), axis=-1)

