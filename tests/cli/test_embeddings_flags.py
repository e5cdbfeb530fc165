"""`seqzoo train` / `seqzoo finetune` with pre-trained vectors: --source-embeddings,
--target-embeddings, --freeze-embeddings, --unfreeze-embeddings-after; bad files."""

import gzip
import json
import re

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.cli import main
from tests.fixtures_train import SETTINGS, sort_data

DIM = 8  # SETTINGS' model.embedding_dim
LETTERS = "abcdef"  # the data has a-h: g and h are missing from the files


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    vectors = {c: rng.normal(0, 0.5, DIM).astype(np.float32) for c in LETTERS}
    glove = directory / "letters.txt"
    glove.write_text("".join(c + " " + " ".join(f"{x:.6f}" for x in v) + "\n"
                             for c, v in vectors.items()), encoding="utf-8")
    word2vec = directory / "letters.vec.gz"
    word2vec.write_bytes(gzip.compress(glove.read_bytes().replace(
        b"a ", f"{len(LETTERS)} {DIM}\na ".encode(), 1)))
    # 96 pairs: 3 batches of 32 an epoch.
    return {"train": sort_data(directory, 96, 0, "train"), "glove": str(glove),
            "word2vec": str(word2vec), "vectors": vectors}


def _embeddings(out, side):
    model = keras.saving.load_model(out / "model.keras")
    tokenizer = getattr(model, f"{side}_tokenizer")
    matrix = ops.convert_to_numpy(model.embedding_layer(side).embeddings)
    return {c: matrix[tokenizer.token_to_id(c)] for c in LETTERS}, model


def _train(data, out, *extra):
    return main(["train", *SETTINGS, "--train", *data["train"], "--epochs", "2",
                 "--batch-size", "32", "--learning-rate", "0.05", "--out", str(out), *extra])


def test_frozen_vectors_stay_and_the_coverage_report_is_printed_and_kept(tmp_path, data,
                                                                          capsys):
    out = tmp_path / "run"
    assert _train(data, out, "--source-embeddings", data["word2vec"], "--target-embeddings",
                  data["glove"], "--freeze-embeddings") == 0
    printed = capsys.readouterr().out
    assert "source embeddings " in printed and "target embeddings " in printed
    assert "6 of 8 words found, 0 by case, 2 missing (75.0% coverage)" in printed
    assert "most frequent missing: " in printed

    reports = json.loads((out / "embeddings.json").read_text())
    assert reports["source"]["format"] == "word2vec" and reports["target"]["format"] == "glove"
    assert {w for w, _ in reports["source"]["missing_words"]} == {"g", "h"}
    assert all(count > 0 for _, count in reports["source"]["missing_words"])
    assert json.loads((out / "run.json").read_text())["embeddings"] == reports
    config = json.loads((out / "config.json").read_text())
    assert config["embeddings"]["freeze"] is True
    assert config["freeze"] == {"parts": ["source_embedding", "target_embedding"], "steps": 6}

    for side in ("source", "target"):
        rows, model = _embeddings(out, side)
        for c, vector in data["vectors"].items():
            np.testing.assert_allclose(rows[c], vector, atol=1e-6)
    assert model.hyperparameters["embedding_dim"] == DIM


def test_unfrozen_after_one_epoch_they_train(tmp_path, data):
    out = tmp_path / "run"
    assert _train(data, out, "--source-embeddings", data["glove"], "--freeze-embeddings",
                  "--unfreeze-embeddings-after", "1", "--quiet") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["freeze"] == {"parts": ["source_embedding"], "steps": 3}
    rows, _ = _embeddings(out, "source")
    assert max(np.abs(rows[c] - v).max() for c, v in data["vectors"].items()) > 1e-3
    # A new run over it without vectors leaves no report of the old one's.
    assert _train(data, out, "--overwrite", "--quiet", "--epochs", "1") == 0
    assert not (out / "embeddings.json").exists()
    assert "embeddings" not in json.loads((out / "config.json").read_text())


def test_finetune_starts_the_new_vocabulary_from_vectors(tmp_path, data, capsys):
    base = tmp_path / "base"
    assert _train(data, base, "--quiet") == 0
    out = tmp_path / "tuned"
    assert main(["finetune", "--from", str(base), "--train", *data["train"], "--epochs", "1",
                 "--batch-size", "32", "--out", str(out), "--target-embeddings", data["glove"],
                 "--freeze-embeddings"]) == 0
    assert "target embeddings " in capsys.readouterr().out
    rows, _ = _embeddings(out, "target")
    for c, vector in data["vectors"].items():
        np.testing.assert_allclose(rows[c], vector, atol=1e-6)
    assert main(["finetune", "--from", str(base), "--train", *data["train"],
                 "--out", str(tmp_path / "both"), "--source-embeddings", data["glove"],
                 "--freeze", "embeddings", "--freeze-steps", "2", "--freeze-embeddings"]) == 2
    assert "one of --freeze and --freeze-embeddings" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("a 1 2 3 4 5 6 7 8\nb 1 2\n", r"bad.txt:2: a vector of 2 values; expected 8"),
    ("a 1 2 3 4 5 6 7\n", r"shape \(12, 8\) for source_embedding.*shape \(12, 7\); build the "
     "model with embedding_dim=7"),
    ("", "bad.txt: the file is empty"),
    ("zz 1 2 3 4 5 6 7 8\n", "none of the vocabulary's 8 words"),
])
def test_bad_vectors_files_are_one_line_and_leave_no_run(tmp_path, data, capsys, content,
                                                         message):
    bad = tmp_path / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    assert _train(data, out, "--source-embeddings", str(bad), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqzoo train: error: ") and "\n" not in err
    assert re.search(message, err), err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--freeze-embeddings"], "--freeze-embeddings needs --source-embeddings"),
    (["--source-embeddings", "x.txt", "--unfreeze-embeddings-after", "1"],
     "--unfreeze-embeddings-after needs --freeze-embeddings"),
    (["--source-embeddings", "missing.txt"], "embeddings file not found: .*missing.txt"),
])
def test_bad_flags_are_one_line(tmp_path, data, capsys, flags, message):
    assert _train(data, tmp_path / "run", *flags, "--quiet") == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


def test_a_non_positive_unfreeze_epoch_count_is_refused_by_the_parser(tmp_path, data, capsys):
    with pytest.raises(SystemExit) as exit_:
        _train(data, tmp_path / "run", "--source-embeddings", data["glove"],
               "--freeze-embeddings", "--unfreeze-embeddings-after", "0")
    assert exit_.value.code == 2
    assert "--unfreeze-embeddings-after: expected a positive integer, got '0'" in (
        capsys.readouterr().err)
