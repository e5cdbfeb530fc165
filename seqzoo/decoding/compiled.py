"""Running a decoding function compiled, on every Keras backend.

Decoding loops are written once with `keras.ops.while_loop`; this module
compiles the whole function the way each backend wants it:

- TensorFlow: `tf.function` (one graph per set of static arguments), compiled
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
    """

    def __init__(self, fn, variables, jit_compile=None):
        self.fn = fn
        self.variables = variables
        self.jit_compile = jit_compile
        self._cache = {}

    def __call__(self, *tensors, **static):
        xla = (self.jit_compile is not None and keras.backend.backend() == "tensorflow"
               and bool(self.jit_compile()))
        key = (xla,) + tuple(sorted(static.items()))
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._cache[key] = self._compile(static, xla)
        return compiled(*tensors)

    def _compile(self, static, xla=False):
        backend = keras.backend.backend()

        def bound(*tensors):
            return self.fn(*tensors, **static)

        if backend == "tensorflow":
            import tensorflow as tf

            # One graph per static setting and input shape is expected here;
            # TF's retracing warning would only be noise. No shape relaxing:
            # a while loop whose state has a static batch size entering and
            # an unknown one inside (after relaxing) fails to build.
            tf.get_logger().setLevel("ERROR")
            return tf.function(bound, autograph=False, reduce_retracing=False,
                               jit_compile=xla)
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
