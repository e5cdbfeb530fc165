"""The rnn suite's sweep over sequence length and batch size, and its charts."""

import json

from benchmarks import __main__ as runner
from benchmarks import plots


def test_tiny_sweep_records_each_point_once_and_draws_both_charts(tmp_path):
    argv = ["rnn", "--tiny", "--set", "configs=", "--set", "torch=off", "--out", str(tmp_path)]
    assert runner.main(argv) == 0
    records = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["records"]
    # lengths 3 and 5 at batch 4, batches 2 and 4 at length 5: (4, 5) is timed once.
    points = [(r["settings"]["batch"], r["settings"]["length"]) for r in records]
    assert points == [(4, 3), (4, 5), (2, 5)]
    for record in records:
        assert record["kind"] == "sweep" and record["name"].startswith("gru-uni-1-b")
        assert record["settings"]["repeats"] == 2
        figures = record["results"]["seqzoo"]
        assert figures["tokens_per_s"]["median"] > 0
        assert figures["memory"]["peak_bytes"] > 0
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "Sweep: throughput against sequence length" in md
    assert "| gru-uni-1 | 2 | 5 |" in md
    for name in (plots.RNN_LENGTH_PNG, plots.RNN_BATCH_PNG):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    # No configuration rows, so no bar chart of them.
    assert not (tmp_path / plots.RNN_PNG).exists()
