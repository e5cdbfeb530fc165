"""Mixed precision (`--mixed-precision`, setting `mixed_precision`): float16 with loss
scaling or bfloat16, attention and losses in float32, the process' policy untouched."""

import json

import keras
import numpy as np
import pytest

import seqzoo
from seqzoo.cli import main
from seqzoo.errors import InputError
from seqzoo.training import precision
from seqzoo.training.config import resolve
from tests.fixtures_train import SETTINGS, sort_data


@pytest.mark.backend_neutral
def test_auto_is_bfloat16_without_a_gpu_and_the_policy_is_scoped():
    assert precision.policy_name(None) is None
    assert precision.policy_name("float16") == "mixed_float16"
    assert precision.policy_name("auto") == (
        "mixed_float16" if precision.has_gpu() else "mixed_bfloat16")
    before = keras.config.dtype_policy().name
    with precision.dtype_policy("mixed_bfloat16"):
        model = seqzoo.create("seq2seq_luong_small", source_vocab_size=9, target_vocab_size=9,
                              embedding_dim=4, units=6)
    assert keras.config.dtype_policy().name == before
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    ids = np.array([[4, 5, 6], [7, 8, 0]], "int32")
    inputs = np.array([[2, 4, 5], [2, 7, 0]], "int32")
    weights = model.attention_weights(ids, inputs)
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"
    with pytest.raises(InputError, match="mixed_precision"):
        resolve([("--set", {"mixed_precision": "float8"})])


@pytest.mark.parametrize("kind, policy, scaled", [("bfloat16", "mixed_bfloat16", False),
                                                   ("float16", "mixed_float16", True)])
def test_seqzoo_train_mixed_precision_trains_saves_and_decodes(tmp_path, kind, policy, scaled):
    train = sort_data(tmp_path, 96, 0, "train")
    out = tmp_path / "run"
    assert main(["train", *SETTINGS, "--train", *train, "--epochs", "3", "--batch-size", "32",
                 "--learning-rate", "0.02", "--mixed-precision", kind, "--out", str(out),
                 "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["mixed_precision"] == policy and run["settings"]["mixed_precision"] == kind
    losses = [h["train_loss"] for h in run["history"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert keras.config.dtype_policy().name == "float32"
    model = keras.saving.load_model(out / "model.keras")
    assert model.translate(["abc"])
    # The run's own optimizer scaled the loss for float16 only.
    from seqzoo.training.checkpoints import read_checkpoint

    names = read_checkpoint(sorted((out / "checkpoints").iterdir())[-1])[0]["names"]
    assert any("loss_scale" in name or "dynamic_scale" in name for name in names) == scaled
