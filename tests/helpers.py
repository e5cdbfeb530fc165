"""Helpers shared by the tests."""

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()

needs_tensorflow = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="needs the TensorFlow backend"
)


def gradient(fn, *args):
    """Gradient of the scalar `fn(*args)` with respect to every arg, as numpy."""
    args = [np.asarray(a, dtype="float32") for a in args]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        vs = [tf.Variable(a) for a in args]
        with tf.GradientTape() as tape:
            y = fn(*vs)
        return [g.numpy() for g in tape.gradient(y, vs)]
    if BACKEND == "jax":
        import jax

        grads = jax.grad(lambda *a: fn(*a), argnums=tuple(range(len(args))))(*args)
        return [np.asarray(g) for g in grads]
    if BACKEND == "torch":
        import torch

        ts = [torch.tensor(a, requires_grad=True) for a in args]
        fn(*ts).backward()
        return [t.grad.numpy() for t in ts]
    raise NotImplementedError(BACKEND)
