"""Training helpers."""

from seqzoo.training.finetune import (
    VocabularyChange,
    VocabularySwapReport,
    load_vocabulary_source,
    swap_vocabulary,
    token_mapping,
    train_vocabulary,
)
from seqzoo.training.freezing import FreezeFor, frozen_variables
from seqzoo.training.trainer import Trainer, TrainingError

__all__ = [
    "Trainer",
    "TrainingError",
    "FreezeFor",
    "VocabularyChange",
    "VocabularySwapReport",
    "frozen_variables",
    "load_vocabulary_source",
    "swap_vocabulary",
    "token_mapping",
    "train_vocabulary",
]
