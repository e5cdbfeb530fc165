"""`seqzoo recipe g2p` with one model: settings, decoding, the command on a slice."""

import json
import os

import numpy as np
import pytest

from seqzoo.cli import main
from seqzoo.errors import InputError
from seqzoo.recipes.g2p import runs as g2p_runs
from seqzoo.recipes.g2p import settings as g2p_settings
from seqzoo.recipes.g2p import single as g2p_single
from tests.recipes.tiny import TINY


def test_budget_picks_bigger_models_for_more_time_and_set_overrides():
    sizes = [g2p_settings.settings_for(m)["units"] for m in (3, 10, 40, 600)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert g2p_settings.settings_for(40)["epochs"] >= 1000  # the clock stops it
    full = g2p_settings.settings_for(None)
    assert full["units"] >= sizes[-1] and full["epochs"] < 1000
    assert g2p_settings.settings_for(40, ["units=64", "dropout=0.5"])["units"] == 64
    with pytest.raises(InputError, match=r"unknown setting 'unit'; expected one of \[.*'units'"):
        g2p_settings.settings_for(40, ["unit=64"])
    # Typed: the key and the type expected are named.
    with pytest.raises(InputError, match="units='big'; expected an integer >= 1"):
        g2p_settings.settings_for(40, ["units=big"])
    with pytest.raises(InputError, match="dropout=1.5; expected a number in"):
        g2p_settings.settings_for(40, ["dropout=1.5"])
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        g2p_settings.settings_for(40, ["units"])
    assert g2p_settings.settings_for(40, ["learning_rate=1"])["learning_rate"] == 1.0
    # A salt of the split: the text as given, numbers and words alike.
    assert g2p_settings.settings_for(40)["split_salt"] == ""
    assert [g2p_settings.settings_for(40, [f"split_salt={text}"])["split_salt"]
            for text in ("1", "1.50", "true", "b")] == ["1", "1.50", "true", "b"]
    # Another salt is other data: a finished run of one split is refused for another.
    data = {"splits": {"train": {"words": 5}}, "split_salt": "1"}
    g2p_runs.check_same_data("run", {"data": data}, data)
    with pytest.raises(InputError, match=r"run: trained on other data .* salt '1'\); this run's "
                       r"splits are .* salt ''"):
        g2p_runs.check_same_data("run", {"data": data}, {"splits": data["splits"]})
    assert g2p_settings.settings_for(40)["budget_schedule"] == "steps"
    with pytest.raises(InputError, match="budget_schedule='clock'; expected one of"):
        g2p_settings.settings_for(40, ["budget_schedule=clock"])
    with pytest.raises(InputError, match="--budget > 0"):
        g2p_settings.settings_for(0)


def test_recipe_end_to_end_on_a_slice(tmp_path, capsys):
    out = tmp_path / "run"
    # Two layers (the encoder and decoder depth of the larger budgets'
    # models), where the other recipe tests train one.
    status = main(["recipe", "g2p", "--limit", "120", "--set", "epochs=3", "--out", str(out),
                   "--set", "average_from=0", "--set", "average_every=2",
                   "--set", "label_smoothing=0.1", "--set", "embedding_dropout=0.1"]
                  + TINY + ["--set", "num_layers=2"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "first 120 words of each: train 120 words" in printed
    assert "test greedy: WER" in printed and "test beam3: WER" in printed
    for name in ("results.json", "dev_wer.png", "model.keras", "test_predictions.tsv"):
        assert (out / name).stat().st_size > 0
    record = json.loads((out / "results.json").read_text())
    assert record["data"]["splits"]["test"]["words"] == 120
    assert record["settings"]["num_layers"] == 2
    assert [h["epoch"] for h in record["dev_history"]] == [1, 2, 3]
    averaged = record["averaged_dev"]
    steps = record["dev_history"][-1]["step"]
    assert averaged["step"] == steps == record["train_steps"]
    assert averaged["epoch"] == f"average of {steps // 2} snapshots"
    assert "dev WER" in printed and "average of" in printed
    assert record["best_dev"]["dev_wer"] == min(
        [h["dev_wer"] for h in record["dev_history"]] + [averaged["dev_wer"]])
    losses = [h["loss"] for h in record["dev_history"]]
    assert losses[-1] < losses[0]  # it trains
    for name in ("greedy", "beam3"):
        result = record["test"][name]
        assert result["words"] == 120 and 0 <= result["per"] and 0 <= result["wer"] <= 1
    assert len((out / "test_predictions.tsv").read_text().splitlines()) == 121
    assert record["examples"] and record["train_seconds"] > 0


def test_budget_stops_training(tmp_path):
    out = tmp_path / "run"
    assert main(["recipe", "g2p", "--limit", "400", "--budget", "0.02", "--out", str(out)]
                + TINY) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["settings"]["epochs"] >= 1000
    assert len(record["dev_history"]) < 50
    # 1.2 s of budget: the first steps compile, so allow them some seconds.
    assert record["train_seconds"] < 30


def test_bad_input_is_one_line_with_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("READ  R EH1 D\nZOO\n")
    assert main(["recipe", "g2p", "--dictionary", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert f"{bad}:2: expected a word and its phones" in capsys.readouterr().err
    assert main(["recipe", "g2p", "--model", "lstm_lm", "--limit", "20", "--out",
                 str(tmp_path / "o")] + TINY) == 2
    assert "expected a seq2seq preset" in capsys.readouterr().err
    assert main(["recipe", "g2p", "--model", "seq2seq_lstm", "--limit", "20", "--out",
                 str(tmp_path / "o")] + TINY) == 2
    assert "Received: --model seq2seq_lstm" in capsys.readouterr().err
    assert main(["recipe", "g2p", "--set", "units", "--out", str(tmp_path / "o")]) == 2
    assert not os.path.exists(tmp_path / "o" / "results.json")


JAX_WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "tensorboard"):
    sys.modules[name] = None  # as on GPU machines without TensorFlow
from seqzoo.cli import main
status = main(sys.argv[1:])
assert not [name for name in sys.modules if name.startswith("tensorflow.")]
sys.exit(status)
"""


def test_recipe_runs_on_jax_without_tensorflow(tmp_path):
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("jax") is None:
        pytest.skip("needs jax")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", JAX_WITHOUT_TENSORFLOW, "recipe", "g2p", "--limit", "150",
         "--set", "epochs=1", "--set", "num_buckets=2", "--out", str(out)] + TINY,
        # XLA's cheaper compiler passes: the run compiles far more than it computes.
        env=dict(os.environ, KERAS_BACKEND="jax",
                 XLA_FLAGS=("--xla_backend_optimization_level=0 "
                            "--xla_llvm_disable_expensive_passes=true")),
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    assert record["machine"]["backend"] == "jax"
    assert record["test"]["beam3"]["words"] == 150 and record["train_steps"] > 0
    assert (out / "model.keras").stat().st_size > 0


def test_training_batches_have_bounded_shapes_on_jax():
    rng = np.random.default_rng(0)
    sources = [list(rng.integers(4, 20, size=int(n))) for n in rng.integers(1, 19, size=400)]
    targets = [list(rng.integers(4, 20, size=int(n))) for n in rng.integers(1, 15, size=400)]
    settings = g2p_settings.settings_for(40, ["batch_size=16", "num_buckets=4"])

    def shapes(batches):
        items = (batches[i] for i in range(len(batches)))
        return {(x["source_ids"].shape, y.shape) for x, y in items}

    on_tf = g2p_single.training_batches(sources, targets, settings, "tensorflow")
    on_jax = g2p_single.training_batches(sources, targets, settings, "jax")
    assert on_tf.pad_to_multiple == 1 and not on_tf.drop_remainder
    assert on_jax.pad_to_multiple == 8 and on_jax.drop_remainder
    bounded = shapes(on_jax)
    assert all(s[0] == 16 and s[1] % 8 == 0 and y[1] % 8 == 0 for s, y in bounded)
    assert len(bounded) < len(shapes(on_tf))
    chosen = g2p_single.training_batches(sources, targets, {**settings, "pad_multiple": 4},
                                        "tensorflow")
    assert chosen.pad_to_multiple == 4
    # A slice smaller than two batches a bucket keeps its partial batches.
    small = g2p_single.training_batches(sources[:100], targets[:100], settings, "jax")
    assert not small.drop_remainder
    assert sum(len(small.batch_indices(i)) for i in range(len(small))) == 100

