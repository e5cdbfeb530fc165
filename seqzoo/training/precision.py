"""Mixed precision for a training run (setting `mixed_precision`, `--mixed-precision`).

`"float16"` computes in float16 with loss scaling (Keras wraps the optimizer
in a `LossScaleOptimizer` when it compiles a model of the `mixed_float16`
policy); `"bfloat16"` computes in bfloat16, which needs no loss scaling;
`"auto"` picks float16 on a GPU and bfloat16 elsewhere. The variables stay
float32, and the zoo's attention (scores, softmax, context) and losses
compute in float32 whatever the policy. The policy is set only while the
model is built: the rest of the process keeps its own.
"""

import contextlib

import keras

CHOICES = ("auto", "float16", "bfloat16")
_POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def has_gpu():
    """Whether the Keras backend sees a GPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def policy_name(setting):
    """The Keras dtype policy of a `mixed_precision` setting, or `None` for float32."""
    if not setting:
        return None
    if setting == "auto":
        setting = "float16" if has_gpu() else "bfloat16"
    return _POLICIES[setting]


@contextlib.contextmanager
def dtype_policy(name):
    """Builds layers under the policy `name` (`None`: unchanged), then restores the old one."""
    previous = keras.config.dtype_policy()
    if name:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
