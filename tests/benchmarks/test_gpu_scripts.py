"""The GPU scripts (machines without TensorFlow): arguments, wheels, the command they run."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("gpu.sh", "g2p_gpu.sh", "gpu_env.sh")


@pytest.fixture
def checkout(tmp_path):
    """A folder laid out like the repository root, with the scripts and a fake python."""
    (tmp_path / "benchmarks").mkdir()
    for name in SCRIPTS:
        shutil.copy(ROOT / "benchmarks" / name, tmp_path / "benchmarks" / name)
    python = tmp_path / "fake-python"
    # Records each call's arguments and environment instead of running anything.
    python.write_text('#!/usr/bin/env bash\n'
                      'echo "call: $* | KERAS_BACKEND=$KERAS_BACKEND '
                      'PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-unset} '
                      'PYTHONPATH=$PYTHONPATH"\n')
    python.chmod(0o755)
    return tmp_path


def _run(checkout, script, *args):
    env = dict(os.environ, PYTHON=str(checkout / "fake-python"), PATH="/usr/bin:/bin")
    env.pop("OUT", None)
    return subprocess.run(["bash", str(checkout / "benchmarks" / script), *args], env=env,
                          capture_output=True, text=True, cwd=checkout)


def _calls(done):
    """The fake python's calls (nvidia-smi, where there is one, prints too)."""
    return [line for line in done.stdout.splitlines() if line.startswith("call: ")]


@pytest.mark.parametrize("script", ["gpu.sh", "g2p_gpu.sh"])
def test_a_bad_backend_and_missing_wheels_are_named(checkout, script):
    bad = _run(checkout, script, "tensorflow")
    assert bad.returncode == 2
    assert "expected the backend jax or torch first. Received: 'tensorflow'" in bad.stderr
    assert f"usage: bash benchmarks/{script}" in bad.stderr
    missing = _run(checkout, script, "jax")
    assert missing.returncode == 2 and "no wheels in .whl/" in missing.stderr
    assert "call:" not in missing.stdout


def test_g2p_script_installs_the_wheels_and_runs_the_recipe(checkout):
    (checkout / ".whl").mkdir()
    (checkout / ".whl" / "keras-3-py3-none-any.whl").write_text("")
    done = _run(checkout, "g2p_gpu.sh", "jax", "--budget", "6")
    assert done.returncode == 0, done.stderr
    install, recipe = _calls(done)
    assert install.startswith("call: -m pip install -q --no-index --no-deps --upgrade "
                              "--target /tmp/site .whl/keras-3-py3-none-any.whl")
    assert recipe.startswith("call: -m seqzoo recipe g2p --quiet --out runs/g2p-gpu-jax "
                             "--budget 6 | KERAS_BACKEND=jax PREALLOCATE=false")
    assert f"PYTHONPATH=/tmp/site:{checkout}" in recipe
    # An --out of the user's replaces the default.
    done = _run(checkout, "g2p_gpu.sh", "torch", "--out", "elsewhere")
    recipe = _calls(done)[-1]
    assert "recipe g2p --quiet --out elsewhere |" in recipe and "KERAS_BACKEND=torch" in recipe
    recipe = _calls(_run(checkout, "g2p_gpu.sh", "jax", "--out=there"))[-1]
    assert "recipe g2p --quiet --out=there |" in recipe


def test_benchmark_script_runs_the_suites_into_out(checkout):
    (checkout / ".whl").mkdir()
    (checkout / ".whl" / "keras-3-py3-none-any.whl").write_text("")
    done = _run(checkout, "gpu.sh", "torch", "rnn")
    assert done.returncode == 0, done.stderr
    recipe = _calls(done)[-1]
    assert recipe.startswith("call: -m benchmarks --backend torch --out "
                             "benchmarks/results/gpu-torch rnn | KERAS_BACKEND=torch")
    assert (checkout / "benchmarks" / "results" / "gpu-torch").is_dir()
