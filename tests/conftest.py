import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# On JAX nearly every test program is compiled, run a few times and dropped:
# XLA's cheaper CPU passes compile it in about half the time. Set before
# JAX loads (it reads XLA_FLAGS once); flags given by the user win.
if os.environ.get("KERAS_BACKEND") == "jax" and "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = ("--xla_backend_optimization_level=0 "
                               "--xla_llvm_disable_expensive_passes=true")

# Under `pytest -n N` every worker is one of N test processes sharing the
# cores: one TensorFlow thread each keeps them from spinning against each
# other (the TensorFlow run of `.ci/run` took 7% less time this way).
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
