"""docs/examples/tfa_nmt.py: TensorFlow Addons' NMT tutorial on `seqzoo.tfa`, end to end.

One run of the example's `main` on the first 320 pairs (two epochs of
eight teacher-forced steps of a small model, a checkpoint, then greedy and
beam-search translation of one sentence) serves the checks of the run.
"""

import importlib.util
import pathlib
import re

import numpy as np
import pytest

from seqzoo import tfa
from tests.helpers import needs_tensorflow

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "tfa_nmt.py"
GENERATOR = ROOT / "data" / "tfa-nmt" / "make_data.py"
NUM_EXAMPLES = 320
BEAM_WIDTH = 3


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spanish(line):
    return line.split("\t")[1]


@pytest.fixture(scope="module")
def example():
    return _load(EXAMPLE, "tfa_nmt_example")


@pytest.fixture(scope="module")
def sentences(example):
    lines = example.DATA.read_text(encoding="utf-8").splitlines()
    return [_spanish(lines[0])]


@pytest.fixture(scope="module")
def run(example, sentences, tmp_path_factory):
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    argv = ["--num-examples", str(NUM_EXAMPLES), "--batch-size", "32", "--units", "32",
            "--embedding-dim", "16", "--epochs", "2", "--learning-rate", "0.01",
            "--beam-width", str(BEAM_WIDTH),
            "--checkpoint-dir", str(checkpoints), "--seed", "0"]
    for sentence in sentences:
        argv += ["--translate", sentence]
    result = example.main(argv)
    result["checkpoints"] = checkpoints
    return result


def test_the_data_is_what_its_generator_writes():
    generator = _load(GENERATOR, "tfa_nmt_make_data")
    assert generator.OUT.read_text(encoding="utf-8") == generator.text()
    assert generator.OUT.stat().st_size < 200_000


def test_the_tutorial_sentences_are_in_the_vocabulary(example):
    dataset = example.NMTDataset()
    _, inp_lang = dataset.create_dataset(example.DATA, None)
    words = {word for sentence in inp_lang for word in sentence.split(" ")}
    for sentence in example.SENTENCES:
        assert set(dataset.preprocess_sentence(sentence).split(" ")) <= words, sentence


@needs_tensorflow
def test_training_lowers_the_loss(run):
    losses = run["batch_losses"]
    steps_per_epoch = (NUM_EXAMPLES - NUM_EXAMPLES // 5) // 32
    assert len(losses) == 2 * steps_per_epoch
    assert all(np.isfinite(losses))
    first, last = np.mean(losses[:2]), np.mean(losses[-2:])
    assert last < 0.9 * first, losses
    assert run["epoch_losses"][1] < run["epoch_losses"][0]
    assert list(run["checkpoints"].glob("ckpt-1.index")), "no checkpoint after epoch 2"


@needs_tensorflow
def test_greedy_translation_gives_target_ids(run, sentences):
    assert list(run["greedy"]) == sentences
    for ids, text in run["greedy"].values():
        assert ids.ndim == 2 and ids.shape[0] == 1
        assert 1 <= ids.shape[1] <= run["max_length_output"]
        assert np.issubdtype(ids.dtype, np.integer)
        assert ((ids >= 0) & (ids < run["vocab_tar_size"])).all()
        assert isinstance(text, list) and len(text) == 1 and isinstance(text[0], str)


@needs_tensorflow
def test_beam_search_gives_beam_width_hypotheses(run, sentences):
    assert list(run["beam"]) == sentences
    for ids, scores, texts in run["beam"].values():
        assert ids.shape[:2] == (1, BEAM_WIDTH)
        assert 1 <= ids.shape[2] <= run["max_length_output"]
        assert scores.shape == ids.shape
        assert np.isfinite(scores).all()
        assert ((ids >= 0) & (ids < run["vocab_tar_size"])).all()
        assert len(texts) == 1 and len(texts[0]) == BEAM_WIDTH
        assert all(isinstance(text, str) and "<end>" not in text for text in texts[0])


def test_the_migration_table_names_every_export():
    """docs/migrating-from-tfa.md has one row per `tfa.seq2seq` name, under its own name."""
    page = (ROOT / "docs" / "migrating-from-tfa.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `seqzoo\.tfa\.seq2seq\.(\w+)`", page, flags=re.M)
    assert all(old == new for old, new in rows), rows
    names = [old for old, _ in rows]
    assert len(names) == len(set(names)) == 32
    assert set(names) == set(tfa.seq2seq.__all__)
