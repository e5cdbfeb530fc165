"""The zoo's presets: plain config dicts, by name.

`create(name, **overrides)` builds a preset; `list_models()` describes them.
A preset is data (the model class's name, a one-line description and the
constructor arguments), never a subclass.
"""

import inspect
import os
import zipfile
import zlib

import keras

from seqzoo.errors import ArgumentError
from seqzoo.models.classifier import SequenceClassifier
from seqzoo.models.language_model import RNNLanguageModel
from seqzoo.models.regressor import SequenceRegressor
from seqzoo.models.seq2seq import Seq2Seq
from seqzoo.models.tagger import SequenceTagger

MODEL_CLASSES = {
    cls.__name__: cls
    for cls in (SequenceClassifier, SequenceTagger, SequenceRegressor, RNNLanguageModel, Seq2Seq)
}

PRESETS = {
    "lstm_classifier": {
        "class": "SequenceClassifier",
        "description": "LSTM over tokens, final state -> label (e.g. sentiment)",
        "config": {"num_classes": 2, "vocab_size": 20000, "embedding_dim": 128, "units": 128,
                   "num_layers": 1, "cell": "lstm"},
    },
    "gru_classifier": {
        "class": "SequenceClassifier",
        "description": "GRU over tokens, final state -> label",
        "config": {"num_classes": 2, "vocab_size": 20000, "embedding_dim": 128, "units": 128,
                   "num_layers": 1, "cell": "gru"},
    },
    "bilstm_classifier": {
        "class": "SequenceClassifier",
        "description": "2-layer bidirectional LSTM, masked mean pooling -> label",
        "config": {"num_classes": 2, "vocab_size": 20000, "embedding_dim": 128, "units": 128,
                   "num_layers": 2, "cell": "lstm", "bidirectional": True, "pooling": "mean",
                   "dropout": 0.2},
    },
    "row_lstm_classifier": {
        "class": "SequenceClassifier",
        "description": "LSTM over feature vectors (e.g. MNIST image rows) -> label",
        "config": {"num_classes": 10, "input_dim": 28, "units": 128, "num_layers": 1,
                   "cell": "lstm"},
    },
    "stacked_lstm_tagger": {
        "class": "SequenceTagger",
        "description": "2-layer LSTM, one label per step (e.g. echo, POS tags)",
        "config": {"num_tags": 16, "vocab_size": 1000, "embedding_dim": 64, "units": 128,
                   "num_layers": 2, "cell": "lstm"},
    },
    "bilstm_tagger": {
        "class": "SequenceTagger",
        "description": "2-layer bidirectional LSTM tagger (labels may depend on later steps)",
        "config": {"num_tags": 16, "vocab_size": 1000, "embedding_dim": 64, "units": 128,
                   "num_layers": 2, "cell": "lstm", "bidirectional": True},
    },
    "lstm_regressor": {
        "class": "SequenceRegressor",
        "description": "LSTM sequence-to-sequence regression (e.g. sin -> cos)",
        "config": {"input_dim": 1, "output_dim": 1, "units": 64, "num_layers": 1,
                   "cell": "lstm"},
    },
    "lstm_lm": {
        "class": "RNNLanguageModel",
        "description": "2-layer LSTM language model, tied embeddings",
        "config": {"vocab_size": 10000, "embedding_dim": 256, "units": 256, "num_layers": 2,
                   "cell": "lstm", "dropout": 0.2, "tie_embeddings": True},
    },
    "gru_lm": {
        "class": "RNNLanguageModel",
        "description": "2-layer GRU language model, tied embeddings",
        "config": {"vocab_size": 10000, "embedding_dim": 256, "units": 256, "num_layers": 2,
                   "cell": "gru", "dropout": 0.2, "tie_embeddings": True},
    },
    "lstm_lm_sampled": {
        "class": "RNNLanguageModel",
        "description": "LSTM language model for large vocabularies: sampled softmax in training",
        "config": {"vocab_size": 100000, "embedding_dim": 512, "units": 512, "num_layers": 2,
                   "cell": "lstm", "dropout": 0.2, "tie_embeddings": True, "num_sampled": 1024},
    },
}

_SEQ2SEQ_SIZES = {
    "small": {"embedding_dim": 32, "units": 64, "num_layers": 1},
    "": {"embedding_dim": 64, "units": 128, "num_layers": 1},
    "large": {"embedding_dim": 256, "units": 512, "num_layers": 2, "dropout": 0.2},
}
_SEQ2SEQ_FAMILIES = {
    "basic": ("no attention: the classic fixed-vector encoder-decoder",
              {"attention": None, "bidirectional": False, "bridge": "dense"}),
    "luong": ("bidirectional encoder, Luong (general) attention, fused decoder",
              {"attention": "luong", "attention_score": "general", "input_feeding": False}),
    "luong_feed": ("bidirectional encoder, Luong attention with input feeding",
                   {"attention": "luong", "attention_score": "general", "input_feeding": True}),
    "bahdanau": ("bidirectional encoder, Bahdanau (additive) attention, input feeding",
                 {"attention": "bahdanau", "input_feeding": True}),
}
for _family, (_text, _config) in _SEQ2SEQ_FAMILIES.items():
    for _size, _dims in _SEQ2SEQ_SIZES.items():
        _name = "seq2seq_" + _family + (f"_{_size}" if _size else "")
        PRESETS[_name] = {
            "class": "Seq2Seq",
            "description": (f"{_size} {_text}" if _size else _text[0].upper() + _text[1:]),
            "config": {"source_vocab_size": 8000, "target_vocab_size": 8000, **_config, **_dims},
        }

MAIN_HYPERPARAMETERS = (
    "cell", "num_layers", "units", "bidirectional", "embedding_dim", "vocab_size",
    "input_dim", "num_classes", "num_tags", "num_sampled", "attention", "input_feeding",
)


def register_model_class(cls):
    """Makes a model class available to presets by its class name (usable as a decorator).

    The class must be a `keras.Model` whose constructor takes the preset's
    config as keyword arguments; register it with Keras too
    (`keras.saving.register_keras_serializable`) so that saved models load.
    """
    if not (isinstance(cls, type) and issubclass(cls, keras.Model)):
        raise TypeError(f"Expected a keras.Model subclass. Received: cls={cls!r}")
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def register_preset(name, class_name, description, config, overwrite=False):
    """Adds a preset to the zoo: `create(name)`, `list_models()` and `seqzoo list` see it.

    Example:

    ```python
    seqzoo.models.register_preset(
        "seq2seq_luong_big", "Seq2Seq", "Luong attention, 4 layers of 1024",
        {"attention": "luong", "units": 1024, "num_layers": 4})
    model = seqzoo.create("seq2seq_luong_big", source_vocab_size=..., target_vocab_size=...)
    ```

    Args:
        name: the preset's name.
        class_name: a registered model class (`MODEL_CLASSES`), e.g. `"Seq2Seq"`.
        description: one line for `list_models()`.
        config: constructor arguments of the class.
        overwrite: replace a preset of the same name.

    Raises:
        ValueError: an existing name without `overwrite`, an unknown class,
            or config keys the class does not take.
    """
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"Expected a preset name. Received: name={name!r}")
    if name in PRESETS and not overwrite:
        raise ValueError(f"A preset named {name!r} exists; pass overwrite=True to replace it")
    if class_name not in MODEL_CLASSES:
        raise ArgumentError(f"Unknown model class. Received: class_name={class_name!r}; expected "
                            f"one of {sorted(MODEL_CLASSES)} (see register_model_class)")
    unknown = sorted(set(config) - set(_arguments(MODEL_CLASSES[class_name])) - {"name"})
    if unknown:
        raise ValueError(f"Unknown argument(s) {unknown} for {class_name} in preset {name!r}")
    PRESETS[name] = {"class": class_name, "description": description, "config": dict(config)}


def _arguments(cls):
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "kwargs")]


def create(name, **overrides):
    """Builds the preset `name`, with any constructor argument overridden.

    Args:
        name: a preset name from `list_models()`.
        **overrides: constructor arguments of the preset's model class,
            e.g. `vocab_size=32000`, `units=512`, `tokenizer=tok`.

    Returns:
        The model (a `keras.Model`), not yet compiled: call `compile()` for
        the zoo's defaults.

    Raises:
        ValueError: unknown preset name or unknown argument; the message
            lists what is valid.
    """
    if name not in PRESETS:
        raise ArgumentError(f"Unknown model preset. Received: name={name!r}; "
                            f"expected one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    cls = MODEL_CLASSES[preset["class"]]
    valid = _arguments(cls) + ["name"]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for preset {name!r} ({cls.__name__}). "
            f"Valid arguments: {sorted(valid)}"
        )
    config = {**preset["config"], **overrides}
    config.setdefault("name", name)
    return cls(**config)


def list_models():
    """Describes every preset.

    Returns:
        A list of dicts with `name`, `class`, `description` and `config`,
        sorted by name.
    """
    return [
        {"name": name, "class": p["class"], "description": p["description"],
         "config": dict(p["config"])}
        for name, p in sorted(PRESETS.items())
    ]


def summarize(config):
    """A short `key=value` string of a config's main hyperparameters."""
    return ", ".join(f"{k}={config[k]}" for k in MAIN_HYPERPARAMETERS if k in config)


def load(path, compile=True):
    """Loads a model saved with `model.save("....keras")`, in Keras safe mode.

    `path` is a `.keras` file or a folder holding `model.keras` (a run
    folder of `seqzoo train`).

    The model comes back with its weights, its hyperparameters, its
    tokenizer (when it was saved with one) and, with `compile=True`, its
    optimizer state.

    Raises:
        FileNotFoundError: `path` does not exist.
        DataError: (a `ValueError`) the file is not a Keras archive or not a
            seqzoo model; the message names the file.
    """
    from seqzoo.errors import DataError, SeqzooError

    path = os.fspath(path)
    if os.path.isdir(path):
        # A run folder of `seqzoo train` or `seqzoo demo sort --out`.
        folder, path = path, os.path.join(path, "model.keras")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no model.keras in the folder {folder}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if not path.endswith(".keras"):
        raise DataError("expected a .keras model archive", path=path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            zip_start = f.read(4) == b"PK\x03\x04"
        raise DataError("truncated Keras archive: the zip file has no end (an interrupted "
                        "copy or save?)" if zip_start else
                        "not a Keras archive: a .keras model is a zip file, this file is not",
                        path=path)
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError, SeqzooError, zipfile.BadZipFile,
            zlib.error) as e:  # the last two: a damaged member of the archive
        raise DataError(f"cannot load the model: {e}", path=path) from e
