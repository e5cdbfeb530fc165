"""seqzoo imports and works without TensorFlow on another Keras backend, and
`import seqzoo` loads no trainer there (the TensorFlow side:
tests/test_import_graph.py)."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

SCRIPT = textwrap.dedent(
    """
    import sys

    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ImportError("TensorFlow is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTensorFlow())

    import numpy as np
    import keras
    import seqzoo

    # `import seqzoo` loads no trainer, CLI, recipe, demo or exporter.
    heavy = [m for m in sys.modules if m.startswith(
        ("seqzoo.training", "seqzoo.cli", "seqzoo.recipes", "seqzoo.demos", "seqzoo.export"))]
    assert heavy == [], heavy

    from seqzoo import data, layers, losses, metrics, text

    assert keras.backend.backend() == "jax", keras.backend.backend()
    ids = np.array([[4, 5, 0]])
    vectors = layers.TokenEmbedding(6, 2)(ids)
    assert tuple(vectors.shape) == (1, 3, 2)
    assert "tensorflow" not in sys.modules
    print("ok")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_import_seqzoo_with_jax_and_no_tensorflow():
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
