"""Helpers shared by the `seqzoo.tfa.seq2seq` modules: backend checks and layout."""

import keras
from keras import ops


def on_tensorflow():
    return keras.backend.backend() == "tensorflow"


def tensorflow():
    """The `tensorflow` module; only called on the TensorFlow backend."""
    import tensorflow as tf

    return tf


def require_tensorflow(feature, alternative):
    """Raises a one-line `ValueError` when `feature` is used off TensorFlow."""
    if not on_tensorflow():
        raise ValueError(
            f"{feature} needs the TensorFlow backend (KERAS_BACKEND=tensorflow); "
            f"the backend is {keras.backend.backend()!r}. {alternative}"
        )


def is_tensor_array(x):
    return on_tensorflow() and isinstance(x, tensorflow().TensorArray)


def rank(x):
    return len(x.shape)


def static_or_dynamic(x, axis):
    """`x.shape[axis]` when static, else the dynamic size."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def transpose_batch_time(x):
    """Swaps the first two axes of a tensor of rank >= 2 (`[B, T, ...]` <-> `[T, B, ...]`)."""
    if rank(x) < 2:
        return x
    return ops.transpose(x, (1, 0) + tuple(range(2, rank(x))))


def as_list_shape(shape):
    """A `state_size`/`output_size` entry as a list of ints (`[]` for a scalar)."""
    if shape is None:
        return []
    if isinstance(shape, int):
        return [shape]
    return [int(d) for d in shape]


def check_rank(name, x, expected):
    if rank(x) not in expected:
        wanted = " or ".join(str(r) for r in expected)
        raise ValueError(
            f"Expected `{name}` of rank {wanted}. Received: {name}.shape={tuple(x.shape)}"
        )
