"""The rnn suite's torch reference runs in a worker process: the benchmark process
never imports torch, and a worker that crashes costs the comparison, not the run."""

import json
import pathlib
import subprocess
import sys

import pytest

from benchmarks import __main__ as runner
from benchmarks import torch_worker

ROOT = pathlib.Path(__file__).resolve().parents[2]
needs_torch = pytest.mark.skipif(not torch_worker.available(), reason="torch is not installed")

# A worker that answers like the real one until asked to build a step, then dies
# by SIGSEGV, as torch's CUDA wheels did next to TensorFlow at the optimizer.
CRASH_AT_BUILD = """
import json, os, signal, sys
for line in sys.stdin:
    op = json.loads(line)["op"]
    if op == "build":
        os.kill(os.getpid(), signal.SIGSEGV)
    answer = {"info": {"cuda": False}, "threads": {"threads": 1}}.get(op, {})
    print(json.dumps({"ok": True, **answer}), flush=True)
"""


def _tiny(tmp_path, *settings):
    argv = ["rnn", "--tiny", "--set", "sweep_configs=", "--out", str(tmp_path)]
    for item in settings:
        argv += ["--set", item]
    assert runner.main(argv) == 0
    return json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["records"]


@needs_torch
def test_worker_builds_times_and_measures_a_step():
    settings = {"seed": 1, "input": 3, "hidden": 4, "batch": 2, "length": 3,
                "learning_rate": 0.1}
    with torch_worker.Worker() as worker:
        assert worker.call("info")["version"]
        assert worker.call("threads", threads=1)["threads"] == 1
        step_id = worker.call("build", cell="gru", bidirectional=True, layers=2,
                              settings=settings, device="cpu")["step"]
        step = torch_worker.RemoteStep(worker, step_id)
        losses = [step() for _ in range(3)]
        # SGD on MSE against zeros: the loss falls step by step.
        assert losses[0] > losses[1] > losses[2] > 0
        assert step.seconds_per_call(2) > 0
        figures = step.memory("cpu", 1)
        assert figures["peak_bytes"] > 0 and "RSS" in figures["source"]
        assert worker.cpu_seconds() > 0
        step.free()
        with pytest.raises(torch_worker.WorkerError, match="KeyError"):
            step()
        with pytest.raises(torch_worker.WorkerError, match="unknown request 'nap'"):
            worker.call("nap")
        assert worker.alive()
    assert not worker.alive()


def test_a_dying_worker_is_reported_with_its_signal():
    command = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    with torch_worker.Worker(command) as worker:
        with pytest.raises(torch_worker.WorkerError, match="was killed by SIGSEGV"):
            worker.call("info")
        assert not worker.alive()


def test_a_crash_in_the_worker_keeps_the_zoo_figures(tmp_path, monkeypatch):
    command = [sys.executable, "-c", CRASH_AT_BUILD]
    monkeypatch.setattr(torch_worker, "available", lambda: True)
    monkeypatch.setattr(torch_worker, "Worker", lambda: torch_worker_class(command))
    records = _tiny(tmp_path, "configs=gru-uni-1,lstm-uni-1")
    first, second = records
    assert "killed by SIGSEGV" in first["torch_error"]
    for record in records:
        assert "error" not in record and "torch" not in record["results"]
        assert record["results"]["seqzoo"]["tokens_per_s"]["median"] > 0
        assert record["ratio"] is None
    # The worker is gone, so the second configuration does not try again.
    assert "torch_error" not in second and "killed by SIGSEGV" in second["torch_skipped"]
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "torch failed on gru-uni-1 (the torch worker" in md


torch_worker_class = torch_worker.Worker


@needs_torch
def test_the_benchmark_process_never_imports_torch(tmp_path):
    """`-X importtime` lists every module the benchmark process imports (the
    worker, started without the option, lists none)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "benchmarks", "rnn", "--tiny",
         "--set", "configs=lstm-uni-1", "--set", "sweep_configs=", "--set", "memory_steps=0",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "keras" in imported and "benchmarks.torch_worker" in imported
    assert not [name for name in imported if name == "torch" or name.startswith("torch.")]
    (record,) = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["records"]
    assert record["results"]["torch"]["tokens_per_s"]["median"] > 0
    assert record["settings"]["torch_process"] == "worker"
