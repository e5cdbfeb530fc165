"""`seqzoo average`: the mean of a run's last checkpoints as a new model."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.cli import main
from seqzoo.training.checkpoints import read_checkpoint
from tests.fixtures_train import SETTINGS, sort_data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run of 9 steps, checkpoints every 4 steps and at each epoch's end."""
    directory = tmp_path_factory.mktemp("average")
    train = sort_data(directory, 96, 0, "train")
    out = directory / "run"
    assert main(["train", *SETTINGS, "--train", *train, "--epochs", "3", "--batch-size", "32",
                 "--checkpoint-every", "4", "--learning-rate", "0.05", "--out", str(out),
                 "--quiet"]) == 0
    return out


def test_the_average_of_the_last_two_checkpoints(run, tmp_path, capsys):
    steps = sorted(os.listdir(run / "checkpoints"))[-2:]
    out = tmp_path / "avg.keras"
    assert main(["average", "--run", str(run), "--last", "2", "--out", str(out)]) == 0
    assert f"the mean of 2 checkpoints of {run}" in capsys.readouterr().out
    averaged = keras.saving.load_model(out)
    (meta_a, a), (meta_b, b) = (read_checkpoint(run / "checkpoints" / s) for s in steps)
    assert len(averaged.variables) == meta_a["num_model"] == meta_b["num_model"]
    floating = [(v, x, y) for v, x, y in zip(averaged.variables, a, b)
                if np.issubdtype(x.dtype, np.floating)]
    assert len(floating) >= 10  # the weights; the others are dropout seed states
    for variable, x, y in floating:
        assert np.abs(x - y).max() > 0
        np.testing.assert_allclose(ops.convert_to_numpy(variable),
                                   (x.astype(np.float64) + y) / 2, atol=1e-6)
    # It decodes like any saved model, with the run's tokenizers.
    assert averaged.translate(["dcba"], max_length=8)[0]
    source, target = sort_data(tmp_path, 8, 5, "t")
    assert main(["eval", "--model", str(out), "--source", source, "--target", target]) == 0


def test_average_refuses_what_it_cannot_do(run, tmp_path, capsys):
    out = tmp_path / "avg.keras"
    assert main(["average", "--run", str(run), "--last", "9", "--out", str(out)]) == 2
    assert "3 checkpoint(s) (steps [" in capsys.readouterr().err and not out.exists()
    out.write_text("mine")
    assert main(["average", "--run", str(run), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "mine"
    assert main(["average", "--run", str(tmp_path), "--out", str(tmp_path / "x.keras")]) == 2
    assert "no checkpoints folder" in capsys.readouterr().err
    assert main(["average", "--run", str(run), "--out", str(tmp_path / "x.h5")]) == 2
    assert "expected a .keras file name" in capsys.readouterr().err


def test_a_corrupt_checkpoint_is_named(run, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(run, tmp_path / "run")
    newest = sorted((copy / "checkpoints").iterdir())[-1]
    newest.write_bytes(b"not a checkpoint")
    assert main(["average", "--run", str(copy), "--out", str(tmp_path / "a.keras")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqzoo average: error: ") and newest.name in err
    assert json.loads((copy / "config.json").read_text())["preset"] == "seq2seq_luong_small"


def test_checkpoints_after_a_nan_are_left_out_and_a_save_under_way_is_left_alone(
        run, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(run, tmp_path / "run")
    folder = copy / "checkpoints"
    names = sorted(p.name for p in folder.glob("ckpt-*.npz"))
    steps = [int(n[5:-4]) for n in names]
    # A save of the run under way: `seqzoo average` must not remove its file.
    pending = folder / ".ckpt-00000099.npz.tmp"
    pending.write_bytes(b"half")
    # The run stopped on a NaN loss; its last sane checkpoint is the second.
    (folder / "diverged.json").write_text(json.dumps(
        {"step": steps[-1] + 1, "loss": "nan", "last_sane_step": steps[1]}))
    out = tmp_path / "avg.keras"
    assert main(["average", "--run", str(copy), "--last", "2", "--out", str(out)]) == 0
    (_, a), (_, b) = (read_checkpoint(folder / n) for n in names[:2])
    averaged = keras.saving.load_model(out)
    variable, x, y = next((v, x, y) for v, x, y in zip(averaged.variables, a, b)
                          if np.issubdtype(x.dtype, np.floating))
    np.testing.assert_allclose(ops.convert_to_numpy(variable),
                               (x.astype(np.float64) + y) / 2, atol=1e-6)
    assert pending.read_bytes() == b"half"
    capsys.readouterr()
    assert main(["average", "--run", str(copy), "--last", "3",
                 "--out", str(tmp_path / "b.keras")]) == 2
    assert f"2 checkpoint(s) up to the last sane one ({steps[1]})" in capsys.readouterr().err
    (folder / "diverged.json").write_text(json.dumps({"step": 2, "last_sane_step": None}))
    assert main(["average", "--run", str(copy), "--out", str(tmp_path / "c.keras")]) == 2
    assert "0 checkpoint(s) before a run's NaN loss" in capsys.readouterr().err
