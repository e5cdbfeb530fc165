"""Sequence metrics: masked token accuracy, exact match, perplexity, error rates."""

from seqzoo.metrics.error_rates import (
    character_error_rate,
    edit_distance,
    error_rate,
    word_error_rate,
)
from seqzoo.metrics.sequence_metrics import (
    MaskedTokenAccuracy,
    Perplexity,
    SequenceExactMatch,
    masked_token_accuracy,
    perplexity,
    sequence_exact_match,
    sequence_matches,
)

__all__ = [
    "MaskedTokenAccuracy",
    "Perplexity",
    "SequenceExactMatch",
    "character_error_rate",
    "edit_distance",
    "error_rate",
    "masked_token_accuracy",
    "perplexity",
    "sequence_exact_match",
    "sequence_matches",
    "word_error_rate",
]
