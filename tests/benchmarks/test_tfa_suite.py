"""The tfa benchmark suite (seqzoo.tfa against the native Seq2Seq) runs on tiny settings."""

import json

import keras
import pytest

from benchmarks import __main__ as runner

BACKEND = keras.backend.backend()


def test_tiny_tfa_run_records_training_and_beam_search_of_both_models(tmp_path):
    assert runner.main(["tfa", "--tiny", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["records"]
    train, decode = records
    assert [r["suite"] for r in records] == ["tfa", "tfa"]
    assert (train["kind"], decode["kind"]) == ("train", "decode")
    # Same sizes: the two models hold the same number of trainable weights.
    for record in records:
        assert record["parameters"]["compat"] == record["parameters"]["native"] > 0
        assert record["settings"]["beam_width"] == 2

    timed = {"compat", "native"} if BACKEND == "tensorflow" else {"native"}
    assert timed <= set(train["results"]) <= {"compat", "native"}
    assert set(train["results"]) | set(train.get("unsupported", {})) == {"compat", "native"}
    for figures in train["results"].values():
        assert figures["target_tokens_per_s"]["median"] > 0
    if "compat" in train["results"]:
        assert train["ratio"]["compat_over_native"]["median"] > 0

    decoders = {"compat", "native"} | ({"compat_eager"} if BACKEND == "tensorflow" else set())
    assert decode["settings"]["decode_batch"] == 2
    assert set(decode["results"]) == decoders
    for figures in decode["results"].values():
        rate = figures["sequences_per_s"]
        assert 0 < rate["min"] <= rate["median"] <= rate["max"]
    assert set(decode["ratio"]) == {f"{name}_over_native" for name in decoders - {"native"}}

    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "## tfa:" in md and "2,036 trainable parameters each" in md
    assert "| training step | target tokens/s | compat / native |" in md
    assert "| compat | 2 |" in md and "| native | 2 |" in md


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "decode_models=compat,beam"], "'beam'"),
        (["--set", "train_models=compat,torch"], "'torch'"),
        (["--set", "decode_batches=0"], "decode_batches"),
        (["--set", "beam_width=0"], "beam_width"),
    ],
)
def test_bad_settings_are_named(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        runner.main(["tfa", "--tiny", *argv, "--out", str(tmp_path)])
    assert not (tmp_path / "results.json").exists()


def test_a_compat_side_the_backend_cannot_run_is_shown_as_not_supported():
    from benchmarks import tfa

    rate = {"median": 100.0, "min": 90.0, "max": 110.0}
    train = {"kind": "train", "results": {"native": {"target_tokens_per_s": rate}},
             "unsupported": {"compat": "ValueError: no | loop"}, "ratio": None}
    decode = {"kind": "decode", "settings": {"decode_batch": 1, "beam_width": 4},
              "results": {"native": {"sequences_per_s": rate}},
              "unsupported": {"compat": "TypeError: nope"}, "ratio": None}
    md = tfa.table([train, decode])
    assert "| compat | not supported: ValueError: no / loop | - |" in md
    assert "| compat | 1 | not supported: TypeError: nope | - |" in md
    assert "| native | 100 (90.0-110) | - |" in md
