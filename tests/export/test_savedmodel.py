"""`seqzoo export --format savedmodel`: a fresh process decodes like the Keras model."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import seqzoo
from seqzoo.cli import main
from seqzoo.models import Seq2Seq
from seqzoo.text import WordTokenizer
from tests.helpers import needs_tensorflow
from tests.models.test_seq2seq import _batch, _model, _words

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 12
WORDS = ["abc", "hgfe", "bad", "a", "hhhhggg"]
# Mixed case, runs of spaces and a non-ASCII space: the graph must split
# and lowercase like WordTokenizer does.
SENTENCES = ["The cat sat", "a  dog\u00a0RAN on the mat", "cat", "the the"]
# `translate` refuses unknown words; the graph maps them to <unk> like `encode`.
UNKNOWN = "the zebra"

# Runs in a fresh interpreter: only TensorFlow, no seqzoo, no Keras model.
LOADER = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    jobs = json.load(open(sys.argv[1]))
    out = {}
    for name, job in jobs.items():
        loaded = tf.saved_model.load(job["path"])
        result = {"signatures": sorted(loaded.signatures.keys())}
        for sig, value in job["calls"].items():
            arg = tf.constant(value, tf.int32 if sig != "translate" else tf.string)
            key = "source_ids" if sig != "translate" else "texts"
            got = loaded.signatures[sig](**{key: arg})
            result[sig] = {k: (v.numpy().astype(str) if v.dtype == tf.string
                               else v.numpy()).tolist()
                           for k, v in got.items()}
        if "translate" in loaded.signatures:
            try:
                loaded.signatures["translate"](texts=tf.constant(["ab", ""]))
                result["empty"] = "no error"
            except tf.errors.InvalidArgumentError as e:
                result["empty"] = e.message
        out[name] = result
    json.dump(out, open(sys.argv[2], "w"))
""")


def _run(*args, backend="tensorflow"):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A briefly trained character copy model and an untrained word model, saved."""
    keras.utils.set_random_seed(7)
    folder = tmp_path_factory.mktemp("export")
    chars = _model("luong", units=16, embedding_dim=8)
    chars.compile(optimizer=keras.optimizers.Adam(0.01, global_clipnorm=5.0))
    words = _words(384, seed=0, high=6)  # 12 full batches of 32: one compiled train step
    chars.fit(*_batch(words, words), epochs=3, batch_size=32, verbose=0)
    chars.save(folder / "chars.keras")
    vocab = WordTokenizer.build(["the cat sat on the mat", "a dog ran"], lowercase=True)
    wordy = Seq2Seq(vocab.vocab_size, vocab.vocab_size, embedding_dim=8, units=8,
                    attention="bahdanau", input_feeding=True, source_tokenizer=vocab,
                    target_tokenizer=vocab)
    wordy.save(folder / "words.keras")
    bare = _model("basic", units=8, source_tokenizer=None, target_tokenizer=None)
    bare.save(folder / "bare.keras")
    return folder


@needs_tensorflow
def test_savedmodel_decodes_like_the_keras_model_in_a_fresh_process(saved, capsys):
    folder = saved
    # The character model goes to a folder that exists: refused, then replaced.
    sm_chars = folder / "replace" / "sm_chars"
    sm_chars.mkdir(parents=True)
    (sm_chars / "keep.txt").write_text("mine")
    args = ["export", "--model", str(folder / "chars.keras"), "--out", str(sm_chars),
            "--beam-size", "3", "--n-best", "2", "--max-length", str(MAX_LENGTH)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; pass --overwrite" in err and str(sm_chars) in err
    assert [p.name for p in sm_chars.iterdir()] == ["keep.txt"]
    assert main(args + ["--overwrite"]) == 0
    assert "signatures beam, greedy, serving_default, translate" in capsys.readouterr().out
    assert sorted(p.name for p in sm_chars.iterdir()) == ["assets", "fingerprint.pb",
                                                          "saved_model.pb", "variables"]
    info = json.loads((sm_chars / "assets" / "seqzoo_export.json").read_text())
    assert info["beam_size"] == 3 and info["max_length"] == MAX_LENGTH and info["text_signature"]
    assert [p.name for p in sm_chars.parent.iterdir()] == ["sm_chars"]
    assert main(["export", "--model", str(folder / "words.keras"),
                 "--out", str(folder / "sm_words"),
                 "--beam-size", "1", "--max-length", str(MAX_LENGTH)]) == 0
    # Decoding options are built into the signatures.
    assert main(["export", "--model", str(folder / "bare.keras"), "--out", str(folder / "sm_bare"),
                 "--beam-size", "2", "--max-length", str(MAX_LENGTH), "--min-length", "3",
                 "--no-repeat-ngram-size", "2", "--length-normalization", "average"]) == 0
    assert "no 'translate'" in capsys.readouterr().err
    # Exported atomically: no temporary folders are left beside the outputs.
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []

    char_ids, _ = _batch(WORDS, WORDS)
    word_ids = [[4, 5, 6], [7, 8, 0]]
    jobs = {
        "chars": {"path": str(sm_chars),
                  "calls": {"greedy": char_ids["source_ids"].tolist(),
                            "beam": char_ids["source_ids"].tolist(),
                            "serving_default": char_ids["source_ids"].tolist(),
                            "translate": WORDS}},
        "words": {"path": str(folder / "sm_words"), "calls": {"translate": SENTENCES + [UNKNOWN]}},
        "bare": {"path": str(folder / "sm_bare"), "calls": {"beam": word_ids}},
    }
    (folder / "jobs.json").write_text(json.dumps(jobs))
    (folder / "load.py").write_text(LOADER)
    result = _run(str(folder / "load.py"), str(folder / "jobs.json"), str(folder / "out.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((folder / "out.json").read_text())

    chars = seqzoo.load(folder / "chars.keras")
    src = char_ids["source_ids"]
    greedy = chars.search(src, method="greedy", max_length=MAX_LENGTH)
    beam = chars.search(src, method="beam", beam_size=3, n_best=2, max_length=MAX_LENGTH)
    got = out["chars"]
    assert got["signatures"] == ["beam", "greedy", "serving_default", "translate"]
    np.testing.assert_array_equal(got["greedy"]["ids"], greedy["ids"])
    np.testing.assert_array_equal(got["beam"]["ids"], beam["ids"])
    np.testing.assert_array_equal(got["serving_default"]["ids"], beam["ids"])
    np.testing.assert_allclose(got["greedy"]["scores"], greedy["scores"], atol=1e-5)
    np.testing.assert_allclose(got["beam"]["scores"], beam["scores"], atol=1e-5)
    assert np.asarray(got["beam"]["ids"]).shape == (len(WORDS), 2, MAX_LENGTH)
    expected = chars.translate(WORDS, beam_size=3, max_length=MAX_LENGTH, return_scores=True)
    assert got["translate"]["texts"] == expected["texts"]
    np.testing.assert_allclose(got["translate"]["scores"], expected["scores"][:, 0], atol=1e-5)
    assert "expected non-empty texts" in got["empty"]
    # The model learned something: the outputs are not all alike.
    assert len(set(expected["texts"])) > 2

    wordy = seqzoo.load(folder / "words.keras")
    expected = wordy.translate(SENTENCES, beam_size=1, max_length=MAX_LENGTH)
    assert out["words"]["signatures"] == ["greedy", "serving_default", "translate"]
    assert out["words"]["translate"]["texts"][:-1] == expected
    unk_ids = wordy.source_tokenizer.encode(UNKNOWN)
    assert unk_ids[-1] == 1  # <unk>
    unk = wordy.search(np.array([unk_ids]), method="greedy", max_length=MAX_LENGTH)["ids"]
    assert out["words"]["translate"]["texts"][-1] == wordy.target_tokenizer.decode(unk[0, 0])
    assert any(" " in text for text in expected)  # words joined as WordTokenizer does

    bare = seqzoo.load(folder / "bare.keras")
    assert out["bare"]["signatures"] == ["beam", "greedy", "serving_default"]
    options = {"min_length": 3, "no_repeat_ngram_size": 2, "length_normalization": "average"}
    np.testing.assert_array_equal(
        out["bare"]["beam"]["ids"],
        bare.search(np.array(word_ids), method="beam", beam_size=2, max_length=MAX_LENGTH,
                    **options)["ids"])
    assert (np.asarray(out["bare"]["beam"]["ids"])[:, 0, :3] != 3).all()  # no </s> before 3
    info = json.loads((folder / "sm_bare" / "assets" / "seqzoo_export.json").read_text())
    assert info["options"] == {"length_penalty": 0.0, "coverage_penalty": 0.0, **options}


@needs_tensorflow
def test_export_errors_name_what_and_where(saved, tmp_path, capsys):
    missing = tmp_path / "none.keras"
    assert main(["export", "--model", str(missing), "--out", str(tmp_path / "a")]) == 2
    assert f"model file not found: {missing}" in capsys.readouterr().err
    clf = seqzoo.create("lstm_classifier", num_classes=2, vocab_size=10, units=4,
                        embedding_dim=4)
    clf(np.ones((1, 3), "int32"))
    clf.save(tmp_path / "clf.keras")
    assert main(["export", "--model", str(tmp_path / "clf.keras"), "--out",
                 str(tmp_path / "b")]) == 2
    assert "clf.keras: expected a seq2seq model, got SequenceClassifier" in capsys.readouterr().err
    assert main(["export", "--model", str(saved / "chars.keras"), "--out", str(tmp_path / "c"),
                 "--beam-size", "2", "--n-best", "3"]) == 2
    assert "n_best <= beam_size" in capsys.readouterr().err
    # Replacing the folder that holds the model would delete the model.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_bytes((saved / "chars.keras").read_bytes())
    assert main(["export", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "run"),
                 "--overwrite"]) == 2
    assert "holds the model" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert not (tmp_path / "c").exists()


def test_export_on_another_backend_is_a_clear_error(saved, tmp_path):
    result = _run("-m", "seqzoo", "export", "--model", str(saved / "chars.keras"),
                  "--out", str(tmp_path / "sm"), backend="jax")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "seqzoo export: error: SavedModel export needs the TensorFlow backend "
        "(KERAS_BACKEND=tensorflow). Received: backend 'jax'")
    assert not (tmp_path / "sm").exists()
