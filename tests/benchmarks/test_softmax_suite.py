"""The softmax benchmark suite runs on tiny settings, records rates and draws its chart."""

import json

import keras

from benchmarks import plots
from seqzoo import cli


def _check_run(out):
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    records = data["records"]
    assert [r["vocab"] for r in records] == [200, 500]
    for record in records:
        assert record["suite"] == "softmax" and not record.get("error")
        assert record["context"]["backend"] == keras.backend.backend()
        assert record["settings"]["num_sampled"] == 16
        assert set(record["results"]) == {"full", "sampled"}
        for figures in record["results"].values():
            rate = figures["tokens_per_s"]
            assert 0 < rate["min"] <= rate["median"] <= rate["max"]
        ratio = record["ratio"]
        assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"]
        assert ratio["of_medians"] > 0
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "## softmax:" in md and "| 200 |" in md
    png = out / plots.SOFTMAX_PNG
    assert png.is_file() and png.stat().st_size > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seqzoo_bench_forwards_to_the_runner_which_records_full_and_sampled(tmp_path):
    # `seqzoo bench` hands its arguments to the runner of `python -m benchmarks`.
    assert cli.main(["bench", "softmax", "--tiny", "--out", str(tmp_path)]) == 0
    _check_run(tmp_path)


def test_seqzoo_bench_reports_a_bad_suite(tmp_path, capsys):
    assert cli.main(["bench", "nosuch", "--tiny", "--out", str(tmp_path)]) == 2
    assert "Unknown suite" in capsys.readouterr().err


def test_plots_skip_what_is_absent(tmp_path):
    assert plots.write_plots(tmp_path, []) == []
    assert plots.write_plots(tmp_path, [{"suite": "softmax", "error": "x", "results": {}}]) == []
    assert not list(tmp_path.iterdir())
