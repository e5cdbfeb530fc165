"""Saved model files: the mode they are written with, what a bad archive is called, the
temporary archives an interrupted save leaves, and decoding nothing."""

import os
import stat

import numpy as np
import pytest

import seqzoo
from seqzoo.errors import DataError
from seqzoo.models.base import remove_partial_saves, save_model
from seqzoo.text import CharTokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tok = CharTokenizer.build(["abc"])
    model = seqzoo.create("seq2seq_basic_small", source_vocab_size=tok.vocab_size,
                          target_vocab_size=tok.vocab_size, source_tokenizer=tok,
                          target_tokenizer=tok, units=4, embedding_dim=4)
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    save_model(model, path)
    return model, path


def test_a_saved_model_has_the_mode_of_the_other_run_files(saved):
    _, path = saved
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_bad_archives_are_named_for_what_they_are(saved, tmp_path):
    _, path = saved
    junk = tmp_path / "junk.keras"
    junk.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(DataError, match=r"junk.keras: not a Keras archive"):
        seqzoo.load(junk)
    cut = tmp_path / "cut.keras"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"cut.keras: truncated Keras archive"):
        seqzoo.load(cut)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        seqzoo.load(tmp_path / "none.keras")


def test_partial_saves_are_removed(tmp_path):
    (tmp_path / ".tmp-abc123.keras").write_bytes(b"")
    (tmp_path / "model.keras").write_bytes(b"keep")
    remove_partial_saves(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_translating_nothing_keeps_the_shape_of_the_result(saved):
    model, _ = saved
    assert model.translate([]) == []
    result = model.translate([], return_scores=True, n_best=2, beam_size=2)
    assert result["texts"] == [] and result["scores"].shape == (0, 2)
