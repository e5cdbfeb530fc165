"""`seqzoo train` from the command line: a run killed with SIGKILL resumes exactly; bad input.

The `--distribute` runs are in tests/training/test_distribute.py. The runs
that tests only read or copy are one module fixture (`finished`); a killed
run needs its own process, its resume does not.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from seqzoo.cli import main
from tests.fixtures_train import SETTINGS, sort_corpus

# 2 epochs of 6 batches; checkpoints at steps 4, 6 (epoch 1's end), 8 and 12.
RUN = ["--epochs", "2", "--batch-size", "32", "--checkpoint-every", "4", "--learning-rate", "0.01"]

# `seqzoo train` that SIGKILLs itself at its KILL_AT-th event: a training step
# begins, or a finished file (checkpoint, run.json, model.keras, config,
# tokenizers) is renamed into place, just BEFORE or AFTER the rename. It prints
# the event it dies at, or the number of events when it ends first.
KILLABLE = """
import os, signal, sys
from seqzoo.cli import main
from seqzoo.training.distribute import Distribution
kill_at, after = int(sys.argv[1]), sys.argv[2] == "after"
count = [0]
def event(name):
    count[0] += 1
    if count[0] == kill_at:
        print(f"killed at event {kill_at}: {name}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
train_on_batch, replace = Distribution.train_on_batch, os.replace
def step(*args, **kwargs):
    event("a training step begins")
    return train_on_batch(*args, **kwargs)
def renaming(src, dst, *args, **kwargs):
    if not after:
        event(f"{os.path.basename(dst)} is about to be renamed into place")
    replace(src, dst, *args, **kwargs)
    if after:
        event(f"{os.path.basename(dst)} was renamed into place")
Distribution.train_on_batch, os.replace = step, renaming
code = main(sys.argv[3:])
print(f"ended after {count[0]} events", flush=True)
sys.exit(code)
"""
# A full run of `RUN` has 23 events: 12 steps and 11 renames.
RUN_EVENTS = 23


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return sort_corpus(tmp_path_factory.mktemp("data"))


def run_args(data, out):
    """The arguments of the finished run: 2 epochs with a dev set, checkpoints every 4 steps."""
    return [*SETTINGS, "--train", *data["train"], "--dev", *data["dev"], *RUN,
            "--out", str(out)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data):
    """One finished run folder; tests that change it work on a copy (`copy_of`)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *run_args(data, out), "--quiet"]) == 0
    return out


def copy_of(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def _run_killable(args, kill_at, when):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run([sys.executable, "-c", KILLABLE, str(kill_at), when, *args],
                             env=env, capture_output=True, text=True, timeout=300)
    return process.returncode, process.stdout + process.stderr


def _weights(path):
    import seqzoo

    return seqzoo.load(path).get_weights()


def test_sigkill_at_random_moments_then_resume_ends_like_an_uninterrupted_run(
        tmp_path, data, finished, capsys):
    # SIGKILL at a random event of the run, then at a random event of its resume
    # (unless the resume ends first), then a resume to the end: the final weights
    # equal the uninterrupted run's bit for bit. SEQZOO_KILL_SEED replays a failure.
    seed = int(os.environ.get("SEQZOO_KILL_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    out = tmp_path / "killed"
    log = [f"SEQZOO_KILL_SEED={seed}"]
    kill_at, when = rng.randint(1, RUN_EVENTS - 1), rng.choice(["before", "after"])
    code, output = _run_killable(["train", *run_args(data, out), "--quiet"], kill_at, when)
    log.append(output)
    assert code == -signal.SIGKILL, "\n".join(log)
    assert f"killed at event {kill_at}" in output, "\n".join(log)
    assert not (out / "model.keras").exists() or kill_at == RUN_EVENTS - 1
    if (out / "config.json").exists():
        kill_at, when = rng.randint(1, RUN_EVENTS // 2), rng.choice(["before", "after"])
        code, output = _run_killable(["train", "--resume", str(out)], kill_at, when)
        log.append(output)
        assert code in (0, -signal.SIGKILL), "\n".join(log)
    else:  # killed before config.json was written: the run never began; start it again
        assert main(["train", *run_args(data, out), "--quiet"]) == 0, "\n".join(log)
    assert not any(name.endswith(".tmp") for name in os.listdir(out / "checkpoints")), log
    newest = sorted((out / "checkpoints").glob("ckpt-*.npz"))
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0, "\n".join(log)
    printed = capsys.readouterr().out
    if "already completed" not in printed:
        start = newest[-1] if newest else "the start (no checkpoint yet)"
        assert f"resuming {out} from {start}" in printed, "\n".join([*log, printed])
    killed = json.loads((out / "run.json").read_text())
    full = json.loads((finished / "run.json").read_text())
    assert killed["status"] == full["status"] == "completed"
    assert killed["steps"] == full["steps"] == 2 * 6
    assert [h["step"] for h in killed["history"]] == [h["step"] for h in full["history"]]
    for folder in (out, out / "tokenizers", out / "checkpoints"):
        assert not [n for n in os.listdir(folder) if n.startswith(".")], "\n".join(log)
    for a, b in zip(_weights(out / "model.keras"), _weights(finished / "model.keras")):
        np.testing.assert_array_equal(a, b, err_msg="\n".join(log))


def test_resume_of_a_finished_run_does_nothing(tmp_path, data, finished, capsys):
    out = copy_of(finished, tmp_path)
    before = (out / "model.keras").stat().st_mtime_ns
    assert main(["train", "--resume", str(out)]) == 0
    assert "already completed" in capsys.readouterr().out
    assert (out / "model.keras").stat().st_mtime_ns == before
    # A run that stopped early, or spent its budget, has ended too: its model stays.
    record = json.loads((out / "run.json").read_text())
    for status in ("early stopped", "budget spent"):
        (out / "run.json").write_text(json.dumps({**record, "status": status}))
        assert main(["train", "--resume", str(out)]) == 0
        assert f"already {status}; nothing to do" in capsys.readouterr().out
        assert (out / "model.keras").stat().st_mtime_ns == before
    (out / "run.json").write_text(json.dumps(record))
    # An existing run is not overwritten without --overwrite...
    args = [*SETTINGS, "--train", *data["train"], "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(["train", *args]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.keras").stat().st_mtime_ns == before
    # ...and is with it, the earlier run's NaN mark included (a --resume of the new
    # run would otherwise set its checkpoints aside).
    mark = out / "checkpoints" / "diverged.json"
    mark.write_text(json.dumps({"step": 3, "loss": "nan", "last_sane_step": None}))
    assert main(["train", *args, "--overwrite"]) == 0
    assert (out / "model.keras").stat().st_mtime_ns != before
    assert not mark.exists()


def test_a_start_killed_before_its_config_is_started_again_without_overwrite(tmp_path):
    """What a start writes before config.json (the tokenizers, the pre-trained vectors'
    report) is no run to keep; with config.json, or with anything else, it is."""
    from seqzoo.cli.train import check_output
    from seqzoo.errors import InputError

    out = tmp_path / "run"
    (out / "tokenizers").mkdir(parents=True)
    (out / "checkpoints").mkdir()  # empty: no checkpoint yet
    (out / "embeddings.json").write_text("{}")
    check_output(str(out), overwrite=False)
    for name in ("config.json", "run.json"):
        (out / name).write_text("{}")
        with pytest.raises(InputError, match=f"already holds a run .*{name}.*--overwrite"):
            check_output(str(out), overwrite=False)
        check_output(str(out), overwrite=True)
        (out / name).unlink()


def test_a_run_keeps_the_budget_schedule_it_began_with(finished):
    from seqzoo.cli.train import stored_settings

    config = json.loads((finished / "config.json").read_text())
    assert config["settings"]["budget_schedule"] == "steps"  # written by this version
    assert stored_settings(config)["budget_schedule"] == "steps"
    # A config.json from before the setting existed: its budget followed the clock.
    older = {**config, "settings": {k: v for k, v in config["settings"].items()
                                    if k != "budget_schedule"}}
    assert stored_settings(older)["budget_schedule"] == "time"


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
    # A monitored metric the run would never compute: BLEU of characters, or a
    # decoded metric without decoding.
    dev = ["--dev", *data["train"]]
    assert main(["train", *train, *dev, "--monitor", "dev_bleu"]) == 2
    assert "monitor=dev_bleu needs a word or sentencepiece target tokenizer" in _error(capsys)
    assert main(["train", *train, *dev, "--monitor", "dev_exact_match", "--set",
                 "dev_decode=0"]) == 2
    assert "dev_decode=0 decodes none" in _error(capsys)
    assert not os.path.exists(out)  # refused before anything was written
    config = tmp_path / "config.json"
    config.write_text('{"epochs": 2,\n "batch_size": }')
    assert main(["train", *train, "--config", str(config)]) == 2
    assert f"{config}:2: not valid JSON" in _error(capsys)
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in _error(capsys)
    # A resume goes on with the run's own settings: other options are refused, not dropped.
    assert main(["train", "--resume", str(tmp_path), "--epochs", "30", "--set", "seed=2",
                 "--train", *data["train"], "--quiet"]) == 2
    error = _error(capsys)
    assert "continues a run with its own settings" in error
    assert "don't pass --train, --set, --epochs with it" in error
    assert main(["train", "--resume", str(tmp_path)]) == 2  # config.json of another kind
    assert f"{config}: not a valid run config" in _error(capsys)
    assert not os.path.exists(os.path.join(out, "model.keras"))


def test_resume_from_a_corrupt_checkpoint_names_it(tmp_path, finished, capsys):
    out = copy_of(finished, tmp_path)
    (out / "run.json").unlink()  # as if killed before the end
    checkpoint = sorted((out / "checkpoints").iterdir())[-1]
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert main(["train", "--resume", str(out)]) == 2
    assert f"{checkpoint}: corrupt or unreadable checkpoint" in _error(capsys)
    # Asked to, the resume passes over it (left on disk) and goes on from the
    # newest readable checkpoint, and says which.
    steps = sorted((out / "checkpoints").iterdir())
    assert len(steps) >= 2
    assert main(["train", "--resume", str(out), "--resume-from-latest-good"]) == 0
    printed = capsys.readouterr().out
    assert f"passed over an unreadable checkpoint: {checkpoint}: corrupt" in printed
    assert f"resuming {out} from {steps[-2]}" in printed
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    assert main(["train", "--train", str(out), "--resume-from-latest-good"]) == 2
    assert "goes with --resume" in _error(capsys)


def test_word_level_run_with_tensorboard_then_eval_reports_bleu(tmp_path, capsys):
    pytest.importorskip("tensorflow")
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
                 "--tensorboard", "--quiet"]) == 0
    history = json.loads((out / "run.json").read_text())["history"]
    assert all(0.0 <= h["dev_bleu"] <= 100.0 for h in history)
    assert os.listdir(out / "tensorboard")
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--source", str(src), "--target", str(tgt)]) == 0
    report = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert main(["predict", "--model", str(out), "--input", str(src), "--output",
                 str(tmp_path / "hyp.txt")]) == 0
    hypotheses = (tmp_path / "hyp.txt").read_text().splitlines()
    expected = sacrebleu.corpus_bleu(hypotheses, [tgt.read_text().splitlines()]).score
    assert float(report["bleu"]) == pytest.approx(expected, abs=1e-4)


def test_finetune_with_a_vocabulary_trained_on_new_data(tmp_path, finished, capsys):
    import numpy as np

    import seqzoo

    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list("abcdefjk"), size=4)) for _ in range(64)]
    src, tgt = tmp_path / "s.txt", tmp_path / "t.txt"
    src.write_text("".join(w + "\n" for w in words))
    tgt.write_text("".join("".join(sorted(w)) + "\n" for w in words))
    out = tmp_path / "ft"
    capsys.readouterr()
    assert main(["finetune", "--from", str(finished), "--train-vocab", "100",
                 "--train", str(src), str(tgt), "--out", str(out), "--epochs", "1",
                 "--freeze", "encoder", "--freeze-steps", "100", "--quiet"]) == 0
    printed = capsys.readouterr().out
    # Letters a-h were the old vocabulary; the new data has a-f, j, k.
    assert "12 -> 12 tokens: 10 kept, 2 added, 2 dropped" in printed
    record = json.loads((out / "run.json").read_text())
    assert record["finetune"]["vocabulary"]["source"] == {"kept": 10, "added": 2, "dropped": 2}
    old, new = seqzoo.load(finished / "model.keras"), seqzoo.load(out / "model.keras")
    assert new.source_tokenizer.token_to_id("k") >= 4
    # The encoder was frozen for all of the (2) steps; the decoder trained.
    for a, b in zip(old._parts["encoder"].trainable_variables,
                    new._parts["encoder"].trainable_variables):
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))
    assert not np.array_equal(np.asarray(old._parts["decoder"].variables[0].value),
                              np.asarray(new._parts["decoder"].variables[0].value))
    # Killed before its first checkpoint, the fine-tune cannot go on from random
    # weights: --resume says how to start it again.
    killed = copy_of(out, tmp_path / "killed")
    for checkpoint in (killed / "checkpoints").glob("ckpt-*.npz"):
        checkpoint.unlink()
    (killed / "run.json").write_text(json.dumps({**record, "status": "running"}))
    capsys.readouterr()
    assert main(["train", "--resume", str(killed)]) == 2
    error = _error(capsys)
    assert "stopped before its first checkpoint" in error
    assert f"seqzoo finetune --from {finished} ... --out {killed} --overwrite" in error


def test_finetune_with_a_vocabulary_file_without_specials_is_refused(tmp_path, finished,
                                                                      data, capsys):
    vocab = tmp_path / "letters.txt"
    vocab.write_text("a\nb\nc\n")
    out = tmp_path / "ft"
    assert main(["finetune", "--from", str(finished), "--vocab", str(vocab),
                 "--train", *data["train"], "--out", str(out)]) == 2
    assert str(vocab) in _error(capsys)
    assert not out.exists()
    assert main(["finetune", "--from", str(tmp_path / "nope.keras"), "--train",
                 *data["train"], "--out", str(out)]) == 2
    assert "nope.keras" in _error(capsys)
