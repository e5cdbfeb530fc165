"""The letter-sorting demo: data, learning, and the command end to end."""

import filecmp
import json
import os

import numpy as np
import pytest

from seqzoo.cli import main
from seqzoo.demos import letters
from seqzoo.demos.sort import SHIPPED_DATA, LetterBatches
from seqzoo.errors import DataError
from seqzoo.text import CharTokenizer


def test_generator_is_deterministic_and_made_the_shipped_data(tmp_path):
    letters.make_data(tmp_path / "a", seed=0)
    letters.make_data(tmp_path / "b", seed=0)
    letters.make_data(tmp_path / "c", seed=1)
    names = sorted(os.listdir(tmp_path / "a"))
    assert len(names) == 6
    for name in names:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False)
        # The shipped files are exactly what the defaults regenerate.
        assert filecmp.cmp(tmp_path / "a" / name, os.path.join(SHIPPED_DATA, name),
                           shallow=False)
    assert not filecmp.cmp(tmp_path / "a" / names[0], tmp_path / "c" / names[0], shallow=False)


def test_shipped_data_has_the_documented_shape():
    train_words, train_targets = letters.load_split(SHIPPED_DATA, "train")
    test_words, _ = letters.load_split(SHIPPED_DATA, "test")
    assert len(train_words) == 10000 and len(test_words) == 2000
    assert {len(w) for w in train_words} == set(range(1, 9))
    assert all(t == "".join(sorted(w)) for w, t in zip(train_words, train_targets))
    # Held-out words of 3 letters or more were never seen in training.
    seen = set(train_words)
    assert not [w for w in test_words if len(w) >= 3 and w in seen]


def test_other_length_ranges_and_sizes(tmp_path):
    counts = letters.make_data(tmp_path, min_length=15, max_length=20,
                               sizes={"train": 50, "dev": 5, "test": 7}, seed=3)
    assert counts == {"train": 50, "dev": 5, "test": 7}
    words, _ = letters.load_split(tmp_path, "train")
    assert len(words) == 50 and all(15 <= len(w) <= 20 for w in words)


def test_bad_data_files_name_file_and_line(tmp_path):
    letters.make_data(tmp_path, sizes={"train": 5, "dev": 2, "test": 2})
    target = tmp_path / "letters_target.txt"
    lines = target.read_text().splitlines()
    lines[2] = "zyx"
    target.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"letters_target\.txt:3: .*not the sorted source"):
        letters.load_split(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="--make-data"):
        letters.load_split(tmp_path / "nothing", "train")


def test_augmented_batches_shuffle_letters_but_keep_targets():
    tok = CharTokenizer.build([letters.ALPHABET])
    words = ["abcdef", "ghijkl", "mnopqr"] * 4
    batches = LetterBatches(words, ["".join(sorted(w)) for w in words], tok, 4, seed=0,
                            augment=True)
    first = [batches[i] for i in range(len(batches))]
    batches.set_epoch(1)
    second = [batches[i] for i in range(len(batches))]
    sources = lambda bs: sorted(map(tuple, np.concatenate([b[0]["source_ids"] for b in bs])))  # noqa: E731
    targets = lambda bs: sorted(map(tuple, np.concatenate([b[1] for b in bs])))  # noqa: E731
    assert targets(first) == targets(second)
    assert sources(first) != sources(second)
    # Every source is a permutation of its word.
    for batch in first:
        for src, tgt in zip(batch[0]["source_ids"], batch[1]):
            assert sorted(src[src > 0]) == sorted(tgt[tgt > 3])


def test_command_compares_trains_learns_saves_draws_and_sorts(tmp_path, capsys):
    """One run of the whole demo with both models; the saved folder then serves the
    `--model-path` checks. The attention model is the demo's: trained as `train` does
    (augmented letters, cosine decay), it learns short words quickly."""
    out = tmp_path / "run"
    data = tmp_path / "data"
    status = main(["demo", "sort", "--compare", "--min-length", "1", "--max-length", "4",
                   "--data-dir", str(data), "--train-size", "3000", "--epochs", "4",
                   "--batch-size", "64", "--learning-rate", "0.01", "--units", "32",
                   "--embedding-dim", "16", "--eval-max-length", "5", "--out", str(out)])
    assert status == 0
    text = capsys.readouterr().out
    assert "Exact match by word length" in text and "hello ->" in text
    table = text.split("Exact match by word length")[1]
    assert "seq2seq_basic" in table.splitlines()[1] and "seq2seq_luong" in table.splitlines()[1]
    # Not a terminal (captured): one line per epoch, no progress-bar frames.
    assert "\r" not in text and "\nepoch 1/4 (step " in text
    for name in ("model.keras", "accuracy_by_length.png", "attention.png", "results.json"):
        assert (out / name).stat().st_size > 0
    with open(out / "results.json") as f:
        record = json.load(f)
    luong = record["models"]["seq2seq_luong"]
    assert sorted(map(int, luong["by_length"])) == [1, 2, 3, 4, 5]
    # Held-out words (those of 3 letters or more never seen in training): chance is
    # about 0 for words of several letters; the model should be far above.
    assert luong["heldout_words"] == 2000
    assert luong["heldout_exact_match"] > 0.6

    assert main(["demo", "sort", "--model-path", str(out), "abc", "zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("abc -> ") and lines[1].startswith("zoo -> ")
    assert main(["demo", "sort", "--model-path", str(out), "hello", "Héllo", "a1"]) == 2
    err = capsys.readouterr().err
    assert "'Héllo' has 'H', 'é'" in err and "'a1' has '1'" in err
    assert main(["demo", "sort", "--model-path", str(tmp_path / "missing"), "abc"]) == 2
    assert "no saved model" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"half a file")
    assert main(["demo", "sort", "--model-path", str(corrupt), "abc"]) == 2
    assert "corrupt.keras: not a Keras archive" in capsys.readouterr().err
    assert main(["demo", "sort", "abc"]) == 2
    assert "need --model-path" in capsys.readouterr().err


def test_demo_regenerates_the_shipped_data_when_installed_without_it(tmp_path, monkeypatch):
    """A plain `pip install .` does not copy data/: the demo makes the same files."""
    import argparse

    from seqzoo.demos import sort

    monkeypatch.setattr(sort, "SHIPPED_DATA", str(tmp_path / "not-installed"))
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(min_length=1, max_length=8, train_size=10000, seed=0,
                              data_dir=None, out=str(tmp_path / "out"))
    directory, train_words, _ = sort.prepare_data(args)
    assert directory == str(tmp_path / "out" / "data-1-8")
    for name in os.listdir(directory):
        assert filecmp.cmp(os.path.join(directory, name), os.path.join(SHIPPED_DATA, name),
                           shallow=False)
    assert len(train_words) == 10000
