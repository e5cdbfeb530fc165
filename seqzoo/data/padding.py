"""Right padding, the decoder shift, and lengths and masks from padded ids.

Everything here is numpy only, so it runs the same under every Keras backend
and inside data pipelines. seqzoo's one masking rule: PAD is 0 and sequences
are right padded.
"""

import numpy as np

from seqzoo.errors import ArgumentError
from seqzoo.text.specials import BOS_ID, EOS_ID, PAD_ID


def _check_maxlen(maxlen):
    if maxlen is None:
        return
    if isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)):
        raise ArgumentError(
            f"Expected `maxlen` to be an int or None. Received: maxlen={maxlen!r}"
        )
    if maxlen < 1:
        raise ArgumentError(f"Expected `maxlen` >= 1. Received: maxlen={maxlen}")


def _as_rows(sequences):
    """Converts a ragged batch to a list of 1-D numpy arrays."""
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
        rows = list(sequences)
    else:
        rows = []
        for i, seq in enumerate(sequences):
            row = np.asarray(seq)
            if row.ndim != 1:
                raise ArgumentError(
                    f"Expected every sequence to be 1-D. Received: sequence {i} "
                    f"with shape {row.shape}"
                )
            rows.append(row)
    if not rows:
        raise ArgumentError("Expected at least one sequence. Received: an empty batch")
    return rows


def pad_sequences(sequences, maxlen=None, pad_id=PAD_ID, dtype="int32", truncate=False):
    """Right pads a batch of sequences into one 2-D array.

    Args:
        sequences: a non-empty list of 1-D sequences of ids (lists or numpy
            arrays), possibly of different lengths.
        maxlen: the length of the output rows. `None` pads to the longest
            sequence of the batch.
        pad_id: the value written after the end of each sequence.
        dtype: the dtype of the result.
        truncate: what to do with a sequence longer than `maxlen`: `False`
            raises, `True` keeps its first `maxlen` ids.

    Returns:
        A numpy array of shape `(len(sequences), length)`, where `length` is
        `maxlen` or the longest sequence.

    Raises:
        ValueError: the batch is empty, a sequence is not 1-D, or a sequence
            is longer than `maxlen` and `truncate` is `False`.

    Example:

    >>> pad_sequences([[5, 6, 7], [8]])
    array([[5, 6, 7],
           [8, 0, 0]], dtype=int32)
    """
    _check_maxlen(maxlen)
    rows = _as_rows(sequences)
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    if maxlen is None:
        width = int(lengths.max())
    else:
        width = int(maxlen)
        too_long = np.flatnonzero(lengths > width)
        if too_long.size and not truncate:
            i = int(too_long[0])
            raise ValueError(
                f"Sequence {i} has length {lengths[i]}, longer than maxlen={width}; "
                "expected every sequence to fit, or pass truncate=True. "
                f"({too_long.size} sequences are too long.)"
            )
        if too_long.size:
            rows = [row[:width] for row in rows]
            lengths = np.minimum(lengths, width)
    out = np.full((len(rows), width), pad_id, dtype=dtype)
    if width and lengths.any():
        # One vectorised write of every real id instead of a Python loop per row.
        mask = np.arange(width)[None, :] < lengths[:, None]
        out[mask] = np.concatenate([row for row in rows if len(row)]).astype(dtype)
    return out


def decoder_io(target_sequences, maxlen=None):
    """Builds the teacher-forcing decoder inputs and targets from target ids.

    For a target `t` the decoder reads `[BOS] + t` and must predict
    `t + [EOS]`, so both have length `len(t) + 1` and are shifted copies of
    the same ids: on real positions `inputs[:, 1:] == targets[:, :-1]`.

    Args:
        target_sequences: a non-empty list of 1-D target id sequences,
            without BOS or EOS.
        maxlen: the padded length of both outputs; each target needs
            `len(t) + 1 <= maxlen`. `None` pads to the longest.

    Returns:
        A tuple `(decoder_inputs, decoder_targets)` of int32 arrays of shape
        `(batch, length)`, right padded with `PAD_ID`.

    Raises:
        ValueError: the batch is empty or a target does not fit `maxlen`.

    Example:

    >>> inputs, targets = decoder_io([[7, 8], [9]])
    >>> inputs
    array([[2, 7, 8],
           [2, 9, 0]], dtype=int32)
    >>> targets
    array([[7, 8, 3],
           [9, 3, 0]], dtype=int32)
    """
    rows = _as_rows(target_sequences)
    bos = np.array([BOS_ID], dtype=np.int64)
    eos = np.array([EOS_ID], dtype=np.int64)
    try:
        inputs = pad_sequences([np.concatenate([bos, row]) for row in rows], maxlen)
        targets = pad_sequences([np.concatenate([row, eos]) for row in rows], maxlen)
    except ValueError as e:
        raise ValueError(f"{e} (the decoder sequences are len(target) + 1 long)") from None
    return inputs, targets


def mask_from_ids(ids, pad_id=PAD_ID):
    """Returns the boolean mask of the non-pad positions of `ids`.

    Args:
        ids: an array of ids, usually `(batch, length)`.
        pad_id: the padding id.

    Returns:
        A bool numpy array of the shape of `ids`, `True` on real tokens.
    """
    return np.asarray(ids) != pad_id


def lengths_from_ids(ids, pad_id=PAD_ID):
    """Returns the number of non-pad ids of each row of right-padded `ids`.

    Args:
        ids: an array of right-padded ids of shape `(..., length)`.
        pad_id: the padding id.

    Returns:
        An int32 numpy array of shape `ids.shape[:-1]`.
    """
    ids = np.asarray(ids)
    if ids.ndim < 1:
        raise ArgumentError(f"Expected ids of rank >= 1. Received: ids.shape={ids.shape}")
    return np.sum(ids != pad_id, axis=-1).astype("int32")


def check_right_padded(ids, pad_id=PAD_ID):
    """Raises unless every row of `ids` is right padded.

    A row is right padded when no real id follows a pad id.

    Args:
        ids: a 2-D array of ids, `(batch, length)`.
        pad_id: the padding id.

    Raises:
        ValueError: `ids` is not 2-D, or a row has a real id after a pad
            (the message names the first such row and positions).
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ArgumentError(f"Expected 2-D ids (batch, length). Received: ids.shape={ids.shape}")
    real = ids != pad_id
    pad_seen = np.logical_or.accumulate(~real, axis=1)
    bad = real & pad_seen
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size:
        row = int(rows[0])
        pos = int(np.argmax(bad[row]))
        first_pad = int(np.argmax(~real[row]))
        raise ArgumentError(
            f"Expected right-padded ids. Received: row {row} has id {ids[row, pos]} "
            f"at position {pos} after pad_id={pad_id} at position {first_pad} "
            f"({rows.size} rows are not right padded)"
        )
