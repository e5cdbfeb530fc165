"""Running a decoding function compiled, on every Keras backend.

Decoding loops are written once with `keras.ops.while_loop`; this module
compiles the whole function the way each backend wants it:

- TensorFlow: `tf.function` (one graph per set of static arguments and input
  shape, or per set of static arguments with `any_shape`), compiled
  by XLA when `jit_compile` says so (as Keras compiles a model's `predict`
  when `model.jit_compile` is true).
- JAX: `jax.jit` of a pure function that receives the current values of the
  model's variables as arguments (through `keras.StatelessScope`), so the
  compiled function never bakes in stale weights after more training.
- PyTorch: eager execution under `torch.no_grad()` (the loop runs in Python).

This is the only place in `seqzoo.decoding` that names a backend.
"""

import keras


class CompiledFunction:
    """Compiles `fn(*tensors, **static)` once per distinct set of static arguments.

    Args:
        fn: a function of tensors (positional) and Python values (keyword,
            e.g. `max_length`, `beam_size`) that returns a nest of tensors.
        variables: a callable returning the Keras variables `fn` reads (for
            example `lambda: model.variables`).
        jit_compile: optional callable returning whether TensorFlow compiles
            `fn` with XLA (read at every call: a change compiles anew). JAX
            always compiles with XLA; PyTorch runs eagerly.
        any_shape: TensorFlow traces `fn` once for tensors of any shape (of
            the same ranks and dtypes), every dimension unknown in the graph,
            instead of once per shape; `fn` must then read sizes it needs
            with `ops.shape`. XLA and JAX still compile once per shape.
    """

    def __init__(self, fn, variables, jit_compile=None, any_shape=False):
        self.fn = fn
        self.variables = variables
        self.jit_compile = jit_compile
        self.any_shape = any_shape
        self._cache = {}

    def __call__(self, *tensors, **static):
        backend = keras.backend.backend()
        xla = (self.jit_compile is not None and backend == "tensorflow"
               and bool(self.jit_compile()))
        key = (xla,) + tuple(sorted(static.items()))
        if self.any_shape and backend == "tensorflow":
            key += tuple((len(t.shape), keras.backend.standardize_dtype(t.dtype))
                         for t in tensors)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._cache[key] = self._compile(static, xla, tensors)
        return compiled(*tensors)

    def _compile(self, static, xla=False, tensors=()):
        backend = keras.backend.backend()

        def bound(*tensors):
            return self.fn(*tensors, **static)

        if backend == "tensorflow":
            import tensorflow as tf

            # One graph per static setting and input shape is expected here;
            # TF's retracing warning would only be noise. No shape relaxing
            # after a first trace: a while loop whose state has a static batch
            # size entering and an unknown one inside fails to build. With
            # `any_shape`, every dimension is unknown from the first trace on.
            tf.get_logger().setLevel("ERROR")
            signature = None
            if self.any_shape:
                signature = [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors]
            return tf.function(bound, autograph=False, reduce_retracing=False,
                               jit_compile=xla, input_signature=signature)
        if backend == "jax":
            import jax

            def pure(values, *tensors):
                mapping = list(zip(self.variables(), values))
                with keras.StatelessScope(state_mapping=mapping):
                    return bound(*tensors)

            jitted = jax.jit(pure)
            return lambda *tensors: jitted([v.value for v in self.variables()], *tensors)
        if backend == "torch":
            import torch

            def eager(*tensors):
                with torch.no_grad():
                    return bound(*tensors)

            return eager
        return bound
