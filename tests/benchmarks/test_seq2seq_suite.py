"""The seq2seq benchmark suite runs on tiny settings and reports what it measured."""

import json

from benchmarks import __main__ as runner


def test_tiny_seq2seq_run_records_decoding_and_training(tmp_path):
    assert runner.main(["seq2seq", "--tiny", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    decode, train = data["records"]
    assert decode["kind"] == "decode" and set(decode["results"]) == {"greedy", "beam4"}
    for figures in decode["results"].values():
        rate = figures["sequences_per_s"]
        assert 0 < rate["min"] <= rate["median"] <= rate["max"]
    assert train["kind"] == "train"
    assert set(train["results"]) == {"seq2seq_luong", "seq2seq_luong_feed"}
    assert train["ratio"]["fused_over_input_feeding"]["median"] > 0
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "Decoding, batch 2" in md and "Fused decoder / input feeding" in md
