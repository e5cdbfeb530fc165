"""Layers shared by the zoo's models: embedding and masking."""

from seqzoo.layers.embedding import TokenEmbedding
from seqzoo.layers.masking import (
    lengths_from_ids,
    mask_from_ids,
    sequence_mask,
)

__all__ = [
    "TokenEmbedding",
    "lengths_from_ids",
    "mask_from_ids",
    "sequence_mask",
]
