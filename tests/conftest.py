import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# On JAX nearly every test program is compiled, run a few times and dropped:
# XLA's cheaper CPU passes compile it in about half the time. Set before
# JAX loads (it reads XLA_FLAGS once); flags given by the user win.
if os.environ.get("KERAS_BACKEND") == "jax" and "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = ("--xla_backend_optimization_level=0 "
                               "--xla_llvm_disable_expensive_passes=true")

# JAX compiles each program of a test again in every process, though most
# tests build the same few tiny models: its persistent compilation cache
# (keyed by the program, the compiler flags and the JAX version, so a changed
# program compiles anew) lets later tests, the other worker, the processes the
# tests start and later runs of the suite load them instead (the JAX run of
# `.ci/run`: 124 s with an empty cache, 51 s with the cache of a run before,
# 149 s without). It lives beside pip's cache; `pytest_sessionstart` keeps it
# under JAX_CACHE_LIMIT. JAX's own size bound is left off: it takes a file
# lock for every entry, and the two workers waiting on it made the run slower.
_cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
JAX_CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                                  os.path.join(_cache_home, "seqzoo", "jax-tests"))
JAX_CACHE_LIMIT = 512 << 20
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

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


def pytest_sessionstart(session):
    """Once per run (in the main process): the oldest entries of JAX's
    compilation cache go until it holds half of `JAX_CACHE_LIMIT`."""
    if hasattr(session.config, "workerinput") or not os.path.isdir(JAX_CACHE):
        return
    entries = []
    for entry in os.scandir(JAX_CACHE):
        if entry.is_file(follow_symlinks=False):
            stat = entry.stat()
            entries.append((stat.st_mtime, stat.st_size, entry.path))
    size = sum(e[1] for e in entries)
    if size <= JAX_CACHE_LIMIT:
        return
    for _, entry_size, path in sorted(entries):
        if size <= JAX_CACHE_LIMIT // 2:
            break
        with contextlib.suppress(OSError):
            os.remove(path)
        size -= entry_size


# The files that take longest (seconds of one TensorFlow run on 2 cores,
# measured with --durations), longest first. `pytest -n 2 --dist loadfile`
# hands out files in the order of the collection: these go first, so that
# the run does not end with one worker busy on a long file while the other
# waits.
LONGEST_FILES = [
    "tests/training/test_distribute.py",  # 82
    "tests/recipes/test_g2p_ensemble.py",  # 74
    "tests/models/test_seq2seq.py",  # 72
    "tests/benchmarks/test_runner.py",  # 45
    "tests/cli/test_train.py",  # 36
    "tests/training/test_trainer.py",  # 32
    "tests/recipes/test_g2p_single.py",  # 24
    "tests/cli/test_embeddings_flags.py",  # 20
    "tests/export/test_savedmodel.py",  # 20
    "tests/models/test_ensemble.py",  # 18
    "tests/benchmarks/test_onmt_suite.py",  # 17
    "tests/cli/test_predict_eval.py",  # 16
    "tests/training/test_accumulate.py",  # 15
    "tests/models/test_smoke.py",  # 0 (skipped); 60 of the JAX run
]


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    root = str(config.rootpath)

    def file_rank(item):
        path = os.path.relpath(str(item.path), root).replace(os.sep, "/")
        return rank.get(path, len(rank))

    items.sort(key=file_rank)  # stable: the other files keep their order
