"""`seqzoo train` from the command line: a run killed with SIGKILL resumes exactly; bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from seqzoo.cli import main
from tests.training.test_trainer import sort_data

SETTINGS = ["--model", "seq2seq_luong_small", "--set", "model.units=16",
            "--set", "model.embedding_dim=8", "--set", "num_buckets=1", "--set", "dev_decode=20"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    return {"train": sort_data(directory, 192, 0, "train"),
            "dev": sort_data(directory, 40, 1, "dev")}


def run_cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "seqzoo", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_then_resume_ends_like_an_uninterrupted_run(tmp_path, data):
    args = [*SETTINGS, "--train", *data["train"], "--dev", *data["dev"], "--epochs", "4",
            "--batch-size", "8", "--checkpoint-every", "5", "--learning-rate", "0.01"]
    out = tmp_path / "killed"
    process = run_cli("train", *args, "--out", str(out))
    checkpoints = out / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if checkpoints.is_dir() and any(n.startswith("ckpt-") for n in os.listdir(checkpoints)):
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed:\n" + \
        process.stdout.read()
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "model.keras").exists()
    steps_at_kill = max(int(n[5:13]) for n in os.listdir(checkpoints) if n.endswith(".npz"))
    assert steps_at_kill < 96

    resumed = run_cli("train", "--resume", str(out))
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert "resuming" in log
    killed = json.loads((out / "run.json").read_text())

    full_out = tmp_path / "full"
    assert main(["train", *args, "--out", str(full_out), "--quiet"]) == 0
    full = json.loads((full_out / "run.json").read_text())
    assert killed["status"] == full["status"] == "completed"
    assert killed["steps"] == full["steps"] == 4 * 24
    assert len(killed["history"]) == 4
    for a, b in zip(killed["history"], full["history"]):
        assert a["step"] == b["step"]
        assert a["dev_loss"] == pytest.approx(b["dev_loss"], abs=2e-3)


def test_resume_of_a_finished_run_does_nothing(tmp_path, data, capsys):
    out = tmp_path / "run"
    args = [*SETTINGS, "--train", *data["train"], "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(["train", *args]) == 0
    before = (out / "model.keras").stat().st_mtime_ns
    assert main(["train", "--resume", str(out)]) == 0
    assert "already completed" in capsys.readouterr().out
    assert (out / "model.keras").stat().st_mtime_ns == before
    # An existing run is not overwritten without --overwrite...
    assert main(["train", *args]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.keras").stat().st_mtime_ns == before
    # ...and is with it.
    assert main(["train", *args, "--overwrite"]) == 0
    assert (out / "model.keras").stat().st_mtime_ns != before


def _error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, data, capsys):
    out = str(tmp_path / "out")
    train = ["--train", *data["train"], "--out", out]
    assert main(["train", "--train", str(tmp_path / "missing.txt"), data["train"][1],
                 "--out", out]) == 2
    assert "missing.txt" in _error(capsys)
    short = tmp_path / "short.tgt"
    short.write_text("a\n")
    assert main(["train", "--train", data["train"][0], str(short), "--out", out]) == 2
    assert "short.tgt" in _error(capsys)
    assert main(["train", *train, "--model", "lstm_tagger_nope"]) == 2
    assert "unknown preset" in _error(capsys)
    assert main(["train", *train, "--model", "lstm_lm"]) == 2
    assert "seq2seq presets" in _error(capsys)
    assert main(["train", *train, "--set", "epoch=3"]) == 2
    assert "unknown setting 'epoch'" in _error(capsys)
    assert main(["train", *train, "--set", "model.unit=3"]) == 2
    assert "unknown model argument 'unit'" in _error(capsys)
    assert main(["train", *train, "--set", "max_length=1"]) == 2
    assert "no pairs left" in _error(capsys)
    assert main(["train", *train, "--early-stopping"]) == 2
    assert "need a dev set" in _error(capsys)
    config = tmp_path / "config.json"
    config.write_text('{"epochs": 2,\n "batch_size": }')
    assert main(["train", *train, "--config", str(config)]) == 2
    assert f"{config}:2: not valid JSON" in _error(capsys)
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in _error(capsys)
    assert main(["train", "--resume", str(tmp_path)]) == 2  # config.json of another kind
    assert f"{config}: not a valid run config" in _error(capsys)
    assert not os.path.exists(os.path.join(out, "model.keras"))


def test_resume_from_a_corrupt_checkpoint_names_it(tmp_path, data, capsys):
    out = tmp_path / "run"
    args = [*SETTINGS, "--train", *data["train"], "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(["train", *args]) == 0
    (out / "run.json").unlink()  # as if killed before the end
    checkpoint = sorted((out / "checkpoints").iterdir())[-1]
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert main(["train", "--resume", str(out)]) == 2
    assert f"{checkpoint}: corrupt or unreadable checkpoint" in _error(capsys)


def test_word_level_run_then_eval_reports_bleu(tmp_path, capsys):
    import numpy as np
    import sacrebleu

    rng = np.random.default_rng(0)
    words = [" ".join(rng.choice(["red", "green", "blue", "big", "old"], size=3))
             for _ in range(96)]
    src, tgt = tmp_path / "s.txt", tmp_path / "t.txt"
    src.write_text("".join(w + "\n" for w in words))
    tgt.write_text("".join(" ".join(reversed(w.split())) + "\n" for w in words))
    out = tmp_path / "run"
    assert main(["train", *SETTINGS, "--tokenizer", "word", "--train", str(src), str(tgt),
                 "--dev", str(src), str(tgt), "--epochs", "2", "--out", str(out),
                 "--quiet"]) == 0
    history = json.loads((out / "run.json").read_text())["history"]
    assert "dev_bleu" in history[-1]
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--source", str(src), "--target", str(tgt)]) == 0
    report = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert main(["predict", "--model", str(out), "--input", str(src), "--output",
                 str(tmp_path / "hyp.txt")]) == 0
    hypotheses = (tmp_path / "hyp.txt").read_text().splitlines()
    expected = sacrebleu.corpus_bleu(hypotheses, [tgt.read_text().splitlines()]).score
    assert float(report["bleu"]) == pytest.approx(expected, abs=1e-4)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("pretrained") / "run"
    assert main(["train", *SETTINGS, "--train", *data["train"], "--epochs", "2",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_finetune_with_a_vocabulary_trained_on_new_data(tmp_path, pretrained, capsys):
    import numpy as np

    import seqzoo

    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list("abcdefjk"), size=4)) for _ in range(64)]
    src, tgt = tmp_path / "s.txt", tmp_path / "t.txt"
    src.write_text("".join(w + "\n" for w in words))
    tgt.write_text("".join("".join(sorted(w)) + "\n" for w in words))
    out = tmp_path / "ft"
    capsys.readouterr()
    assert main(["finetune", "--from", str(pretrained), "--train-vocab", "100",
                 "--train", str(src), str(tgt), "--out", str(out), "--epochs", "1",
                 "--freeze", "encoder", "--freeze-steps", "100", "--quiet"]) == 0
    printed = capsys.readouterr().out
    # Letters a-h were the old vocabulary; the new data has a-f, j, k.
    assert "12 -> 12 tokens: 10 kept, 2 added, 2 dropped" in printed
    record = json.loads((out / "run.json").read_text())
    assert record["finetune"]["vocabulary"]["source"] == {"kept": 10, "added": 2, "dropped": 2}
    old, new = seqzoo.load(pretrained / "model.keras"), seqzoo.load(out / "model.keras")
    assert new.source_tokenizer.token_to_id("k") >= 4
    # The encoder was frozen for all of the (2) steps; the decoder trained.
    for a, b in zip(old._parts["encoder"].trainable_variables,
                    new._parts["encoder"].trainable_variables):
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))
    assert not np.array_equal(np.asarray(old._parts["decoder"].variables[0].value),
                              np.asarray(new._parts["decoder"].variables[0].value))


def test_finetune_with_a_vocabulary_file_without_specials_is_refused(tmp_path, pretrained,
                                                                      data, capsys):
    vocab = tmp_path / "letters.txt"
    vocab.write_text("a\nb\nc\n")
    out = tmp_path / "ft"
    assert main(["finetune", "--from", str(pretrained), "--vocab", str(vocab),
                 "--train", *data["train"], "--out", str(out)]) == 2
    assert str(vocab) in _error(capsys)
    assert not out.exists()
    assert main(["finetune", "--from", str(tmp_path / "nope.keras"), "--train",
                 *data["train"], "--out", str(out)]) == 2
    assert "nope.keras" in _error(capsys)


TWO_DEVICES = """
import os, sys
if os.environ["KERAS_BACKEND"] == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from seqzoo.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distribute_mirrored_on_two_devices_matches_one(tmp_path, data, backend):
    pytest.importorskip(backend)
    # Norm clipping that never binds: TensorFlow clips each replica's share.
    args = [*SETTINGS, "--train", *data["train"], "--dev", *data["dev"], "--epochs", "2",
            "--batch-size", "32", "--clipnorm", "1000", "--quiet"]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    processes = {}
    for kind in ("none", "mirrored"):  # side by side: each is mostly one core's work
        command = [sys.executable, "-c", TWO_DEVICES, "train", *args, "--out", str(tmp_path / kind)]
        if kind == "mirrored":
            command += ["--distribute", "mirrored"]
        processes[kind] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True)
    runs = {}
    for kind, process in processes.items():
        try:
            log, _ = process.communicate(timeout=300)
        finally:
            process.kill()
        assert process.returncode == 0, log
        runs[kind] = json.loads((tmp_path / kind / "run.json").read_text())
    one, two = runs["none"], runs["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["steps"] == two["steps"] == 12
    for a, b in zip(one["history"], two["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["dev_loss"] == pytest.approx(a["dev_loss"], rel=1e-3)
    assert two["history"][-1]["dev_loss"] < two["history"][0]["dev_loss"]


def test_distribute_multiworker_with_two_local_workers(tmp_path, data):
    pytest.importorskip("tensorflow")
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    workers = [f"localhost:{port}" for port in ports]
    args = [*SETTINGS, "--train", *data["train"], "--dev", *data["dev"], "--epochs", "2",
            "--batch-size", "32", "--distribute", "multiworker", "--quiet"]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps(config)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "seqzoo", "train", *args, "--out", str(tmp_path / f"w{index}")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for process in processes:
        log, _ = process.communicate(timeout=300)
        assert process.returncode == 0, log
    runs = [json.loads((tmp_path / f"w{i}" / "run.json").read_text()) for i in range(2)]
    assert [r["replicas"] for r in runs] == [2, 2]
    assert runs[0]["steps"] == runs[1]["steps"] == 12
    # Both workers hold the same model.
    assert runs[0]["history"] == [{**h, "seconds": runs[0]["history"][i]["seconds"]}
                                  for i, h in enumerate(runs[1]["history"])]
    assert runs[0]["history"][-1]["dev_loss"] < runs[0]["history"][0]["dev_loss"]
