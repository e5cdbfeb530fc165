"""The decode and seq2seq benchmark suites run on tiny settings and report what they measured;
the profiles of beam search and of a recurrent training step run."""

import json

import keras
import pytest

from benchmarks import __main__ as runner
from benchmarks import plots


def _records(out):
    return json.loads((out / "results.json").read_text(encoding="utf-8"))["records"]


def test_tiny_decode_run_records_greedy_and_beam_per_batch(tmp_path):
    argv = ["decode", "--tiny", "--set", "decode_batches=1,3", "--out", str(tmp_path)]
    assert runner.main(argv) == 0
    records = _records(tmp_path)
    assert [r["settings"]["decode_batch"] for r in records] == [1, 3]
    for record in records:
        assert record["suite"] == "decode" and record["kind"] == "decode"
        assert set(record["results"]) == {"greedy", "beam4"}
        for figures in record["results"].values():
            rate = figures["sequences_per_s"]
            assert 0 < rate["min"] <= rate["median"] <= rate["max"]
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "## decode:" in md and "| greedy |" in md and "batch 3, sequences/s" in md
    assert (tmp_path / plots.DECODE_PNG).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA is TensorFlow's choice")
def test_tiny_decode_run_times_the_xla_search_beside_the_graph(tmp_path, monkeypatch):
    from benchmarks import decode

    searched = []
    xla_copy = decode._xla_copy

    def recording_copy(model, s):
        copy = xla_copy(model, s)
        search = copy.search
        copy.search = lambda *a, **k: searched.append(copy.search_jit_compile) or search(*a, **k)
        return copy

    monkeypatch.setattr(decode, "_xla_copy", recording_copy)
    argv = ["decode", "--tiny", "--set", "decoders=greedy,greedy-xla,beam2-xla",
            "--out", str(tmp_path)]
    assert runner.main(argv) == 0
    (record,) = _records(tmp_path)
    assert set(record["results"]) == {"greedy", "greedy-xla", "beam2-xla"}
    assert searched and all(searched)  # the -xla decoders ran the XLA copy
    assert "| beam2-xla |" in (tmp_path / "results.md").read_text(encoding="utf-8")


def test_tiny_seq2seq_run_records_training_and_memory(tmp_path):
    assert runner.main(["seq2seq", "--tiny", "--out", str(tmp_path)]) == 0
    (train,) = _records(tmp_path)
    assert train["suite"] == "seq2seq" and train["kind"] == "train"
    assert set(train["results"]) == {"seq2seq_luong", "seq2seq_luong_feed"}
    for figures in train["results"].values():
        assert figures["target_tokens_per_s"]["median"] > 0
        assert figures["memory"]["peak_bytes"] >= figures["memory"]["step_bytes"] >= 0
    assert train["ratio"]["fused_over_input_feeding"]["median"] > 0
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "## seq2seq:" in md and "Fused decoder / input feeding" in md
    assert "| seq2seq_luong |" in md and "Memory: peak MiB" in md
    assert (tmp_path / plots.SEQ2SEQ_PNG).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decode", "--tiny", "--set", "decoders=greedy,beam"], "'beam'"),
        (["decode", "--tiny", "--set", "decoders=greedy,beamx-xla"], "'beamx'"),
        (["decode", "--tiny", "--set", "decode_batches=0"], "decode_batches"),
        (["seq2seq", "--tiny", "--set", "train=seq2seq_nope"], "seq2seq_nope"),
    ],
)
def test_bad_settings_are_named(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        runner.main([*argv, "--out", str(tmp_path)])
    assert not (tmp_path / "results.json").exists()


def test_beam_profile_times_every_piece(capsys):
    from benchmarks import beam_profile

    beam_profile.main(["--tiny", "--batch", "2", "--beam", "3", "--rounds", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"backend {keras.backend.backend()}, batch 2, beam 3, 1 rounds")
    names = [line.split(": ")[0] for line in lines[1:]]
    assert names == ["encoder, 2 sources", "encoder + 4 steps, 2 rows",
                     "encoder + 4 steps, 6 rows, memory tiled",
                     "encoder + 4 steps, 6 rows, one memory row per item",
                     "greedy search", "beam search, beam 3"]
    assert all(float(line.split(": ")[1].split()[0]) > 0 for line in lines[1:])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_profile_times_every_piece_of_a_training_step(capsys, cell):
    from benchmarks import rnn_profile

    rnn_profile.main(["--tiny", "--cell", cell, "--rounds", "1", "--shape", "3,4,5,6"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"backend {keras.backend.backend()}, {cell}, loop projected, "
                               "batch 3, length 4, input 5, hidden 6")
    names = [line.split(": ")[0] for line in lines[1:]]
    fused = ["SGD step by a tape, Keras' LSTM layer",
             "SGD step by a tape, TensorFlow's fused BlockLSTM op"]
    assert names == ["input projection, all steps at once", "recurrent loop alone, forward",
                     "the loop's recurrent products alone", "forward pass (projection + loop)",
                     "training step (forward, backward, SGD)",
                     "reference, one [B*T, H] x [H, G] product"] + (
        fused if cell == "lstm" and keras.backend.backend() == "tensorflow" else [])
    assert all(float(line.split(": ")[1].split()[0]) > 0 for line in lines[1:])
    with pytest.raises(SystemExit):
        rnn_profile.main(["--tiny", "--shape", "3,4,5"])
    assert "--shape 3,4,5: expected four positive integers B,T,I,H" in capsys.readouterr().err
