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
from seqzoo.training.scheduled_sampling import SCHEDULES, sampling_probability
from seqzoo.training.trainer import Trainer, TrainingError

__all__ = [
    "SCHEDULES",
    "Trainer",
    "TrainingError",
    "FreezeFor",
    "VocabularyChange",
    "VocabularySwapReport",
    "frozen_variables",
    "load_vocabulary_source",
    "sampling_probability",
    "swap_vocabulary",
    "token_mapping",
    "train_vocabulary",
]
