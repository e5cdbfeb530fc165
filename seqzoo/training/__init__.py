"""Training helpers."""

from seqzoo.training.averaging import average_checkpoints, run_checkpoints, run_model
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
    "average_checkpoints",
    "frozen_variables",
    "load_vocabulary_source",
    "run_checkpoints",
    "run_model",
    "swap_vocabulary",
    "token_mapping",
    "train_vocabulary",
]
