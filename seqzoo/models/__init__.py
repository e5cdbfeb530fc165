"""The zoo's models and their registry of presets."""

from seqzoo.models.base import ZooModel, default_optimizer
from seqzoo.models.classifier import MaskedPooling, SequenceClassifier
from seqzoo.models.ensemble import Seq2SeqEnsemble
from seqzoo.models.language_model import RNNLanguageModel
from seqzoo.models.registry import (
    MODEL_CLASSES,
    PRESETS,
    create,
    list_models,
    load,
    register_model_class,
    register_preset,
)
from seqzoo.models.regressor import SequenceRegressor
from seqzoo.models.seq2seq import Seq2Seq
from seqzoo.models.tagger import SequenceTagger

__all__ = [
    "MODEL_CLASSES",
    "PRESETS",
    "MaskedPooling",
    "RNNLanguageModel",
    "Seq2Seq",
    "Seq2SeqEnsemble",
    "SequenceClassifier",
    "SequenceRegressor",
    "SequenceTagger",
    "ZooModel",
    "create",
    "default_optimizer",
    "list_models",
    "load",
    "register_model_class",
    "register_preset",
]
