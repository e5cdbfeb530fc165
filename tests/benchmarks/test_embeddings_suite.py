"""The embeddings benchmark suite (seqzoo's vectors loader, beside gensim's) on tiny settings."""

import importlib.util
import json

import pytest

from benchmarks import __main__ as runner


def test_tiny_run_times_the_loaders_and_checks_they_agree(tmp_path):
    assert runner.main(["embeddings", "--tiny", "--out", str(tmp_path)]) == 0
    (record,) = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["records"]
    assert record["suite"] == "embeddings" and record["file"]["bytes"] > 0
    has_gensim = importlib.util.find_spec("gensim") is not None
    assert set(record["results"]) == ({"seqzoo", "gensim"} if has_gensim else {"seqzoo"})
    assert record["unavailable"] == ([] if has_gensim else ["gensim"])
    for figures in record["results"].values():
        assert figures["found"] == 180  # 90% of 200 words, 18 of them through lowercasing
        assert 0 < figures["seconds"]["median"] and figures["peak_mib"] >= 0
    assert ("ratio" in record) == has_gensim
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| seqzoo |" in md and "2,000 vectors x 20 values" in md


@pytest.mark.parametrize("argv, message", [
    (["--set", "loaders=seqzoo,fasttext"], "loaders"),
    (["--set", "found=0"], "found"),
    (["--set", "vocab=5000"], "must fit in the file"),
])
def test_bad_settings_are_named(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        runner.main(["embeddings", "--tiny", *argv, "--out", str(tmp_path)])
    assert not (tmp_path / "results.json").exists()
