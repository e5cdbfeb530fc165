import keras
import numpy as np
import pytest
from keras import ops

import seqzoo
from seqzoo.cli import main
from seqzoo.models import PRESETS
from seqzoo.text import CharTokenizer

# Small overrides keep every preset fast to build and run in tests.
TINY = {
    "SequenceClassifier": {"units": 8, "embedding_dim": 8},
    "SequenceTagger": {"units": 8, "embedding_dim": 8},
    "SequenceRegressor": {"units": 8},
    "RNNLanguageModel": {"units": 8, "embedding_dim": 8, "vocab_size": 50},
    "Seq2Seq": {"units": 8, "embedding_dim": 8, "source_vocab_size": 20,
                "target_vocab_size": 20, "num_layers": 1},
}
REQUIRED = {"lstm_classifier", "gru_classifier", "bilstm_classifier", "stacked_lstm_tagger",
            "lstm_regressor", "lstm_lm", "gru_lm", "seq2seq_basic", "seq2seq_luong",
            "seq2seq_bahdanau"}


def _tiny(name):
    overrides = dict(TINY[PRESETS[name]["class"]])
    config = PRESETS[name]["config"]
    if "vocab_size" in config and "vocab_size" not in overrides:
        overrides["vocab_size"] = 20
    if config.get("num_sampled"):
        overrides["num_sampled"] = 5
    return seqzoo.create(name, **overrides)


def _inputs(model):
    spec = model.inputs[0]
    rng = np.random.default_rng(0)
    if len(model.inputs) == 2:  # seq2seq: source ids and decoder input ids
        source = rng.integers(4, 20, size=(3, 6))
        source[1, 4:] = 0
        target = rng.integers(4, 20, size=(3, 5))
        target[2, 3:] = 0
        return {"source_ids": source, "decoder_input_ids": target}
    if spec.dtype.startswith("int"):
        ids = rng.integers(4, 20, size=(3, 6))
        ids[1, 4:] = 0
        return ids
    return rng.normal(size=(3, 6, spec.shape[-1])).astype("float32")


def test_the_issue_presets_exist():
    assert REQUIRED <= set(PRESETS)
    listed = seqzoo.list_models()
    assert [m["name"] for m in listed] == sorted(PRESETS)
    assert all(m["description"] and m["config"] for m in listed)


# The seq2seq families' `_small` and `_large` presets differ from the family's
# own only in sizes, which `TINY` overrides: their configs are checked below
# (`test_seq2seq_sizes_differ_from_their_family_in_sizes_only`), the family's
# preset builds, runs and round-trips for them.
SIZED = [name for name in sorted(PRESETS) if PRESETS[name]["class"] == "Seq2Seq"
         and name.endswith(("_small", "_large"))]


def test_seq2seq_sizes_differ_from_their_family_in_sizes_only():
    assert len(SIZED) == 8
    sizes = {"embedding_dim", "units", "num_layers", "dropout"}
    for name in SIZED:
        family = PRESETS[name.rsplit("_", 1)[0]]["config"]
        config = PRESETS[name]["config"]
        assert {k: v for k, v in config.items() if k not in sizes} == \
            {k: v for k, v in family.items() if k not in sizes}, name
        assert config["units"] != family["units"], name
    model = _tiny("seq2seq_luong_large")
    assert model.get_config()["dropout"] == 0.2


@pytest.mark.parametrize("name", [name for name in sorted(PRESETS) if name not in SIZED])
def test_preset_builds_runs_and_round_trips_through_save(name, tmp_path):
    model = _tiny(name)
    x = _inputs(model)
    out = ops.convert_to_numpy(model(x))
    assert out.shape[0] == 3 and np.all(np.isfinite(out))
    model.compile()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = seqzoo.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), out, rtol=1e-5, atol=1e-6)
    # The plain Keras loader gives the same model, in safe mode.
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(ops.convert_to_numpy(again(x)), out, rtol=1e-5, atol=1e-6)


def test_overrides_apply_and_unknown_ones_list_the_valid_arguments():
    model = seqzoo.create("gru_classifier", num_classes=5, vocab_size=30, units=4)
    assert model.output_shape[-1] == 5
    assert model.get_config()["cell"] == "gru" and model.get_config()["units"] == 4
    with pytest.raises(ValueError, match=r"Unknown argument\(s\) \['unitz'\].*'units'"):
        seqzoo.create("lstm_classifier", unitz=3)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match=r"name='lstm_clasifier'.*'lstm_classifier'"):
        seqzoo.create("lstm_clasifier")


def test_bad_values_name_the_argument():
    with pytest.raises(ValueError, match="num_classes=0"):
        seqzoo.create("lstm_classifier", num_classes=0)
    with pytest.raises(ValueError, match="cell='rnn'"):
        seqzoo.create("lstm_lm", cell="rnn")


def test_tokenizer_travels_inside_the_saved_model(tmp_path):
    tok = CharTokenizer.build(["good", "bad", "fine"])
    model = seqzoo.create("lstm_classifier", vocab_size=tok.vocab_size, units=4,
                          embedding_dim=4, tokenizer=tok)
    before = model.predict_texts(["good", "bad"])
    path = tmp_path / "with_tokenizer.keras"
    model.save(path)
    loaded = seqzoo.load(path)
    assert loaded.tokenizer.vocabulary == tok.vocabulary
    np.testing.assert_allclose(loaded.predict_texts(["good", "bad"]), before, rtol=1e-5)


def test_text_without_tokenizer_is_a_clear_error():
    model = seqzoo.create("lstm_classifier", vocab_size=10, units=4, embedding_dim=4)
    with pytest.raises(ValueError, match="has no tokenizer"):
        model.predict_texts(["abc"])


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        seqzoo.load(tmp_path / "nope.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="bad.keras: not a Keras archive"):
        seqzoo.load(bad)


def test_cli_list_shows_presets_and_hyperparameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
    assert "cell=gru" in out and "bidirectional=True" in out


def test_load_takes_a_run_folder(tmp_path):
    model = seqzoo.create("lstm_classifier", vocab_size=50, units=4, embedding_dim=4)
    model.save(tmp_path / "model.keras")
    assert type(seqzoo.load(tmp_path)).__name__ == "SequenceClassifier"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no model.keras in the folder"):
        seqzoo.load(tmp_path / "empty")


def test_users_register_their_own_presets_and_model_classes():
    import keras

    from seqzoo.models import (
        MODEL_CLASSES,
        PRESETS,
        SequenceClassifier,
        list_models,
        register_model_class,
        register_preset,
    )

    @keras.saving.register_keras_serializable(package="seqzoo_tests")
    class WideClassifier(SequenceClassifier):
        pass

    try:
        assert register_model_class(WideClassifier) is WideClassifier
        register_preset("wide_classifier", "WideClassifier", "a user's classifier",
                        {"num_classes": 3, "vocab_size": 50, "embedding_dim": 8, "units": 4})
        model = seqzoo.create("wide_classifier", units=6)
        assert isinstance(model, WideClassifier) and model.hyperparameters["units"] == 6
        assert "wide_classifier" in [m["name"] for m in list_models()]
        with pytest.raises(ValueError, match="exists; pass overwrite=True"):
            register_preset("wide_classifier", "WideClassifier", "again", {})
        register_preset("wide_classifier", "WideClassifier", "again", {}, overwrite=True)
        assert PRESETS["wide_classifier"]["description"] == "again"
        with pytest.raises(ValueError, match="Unknown model class.*'Nope'"):
            register_preset("x", "Nope", "", {})
        with pytest.raises(ValueError, match=r"Unknown argument\(s\) \['unitz'\]"):
            register_preset("x", "WideClassifier", "", {"unitz": 3})
        with pytest.raises(TypeError, match="keras.Model subclass"):
            register_model_class(int)
        assert "x" not in PRESETS
    finally:
        PRESETS.pop("wide_classifier", None)
        MODEL_CLASSES.pop("WideClassifier", None)
