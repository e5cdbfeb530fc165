"""Layers shared by the zoo's models: embedding, masking, RNN stacks, bridges, attention, decoders."""

from seqzoo.layers.attention import BahdanauAttention, BaseAttention, LuongAttention
from seqzoo.layers.bridge import Bridge
from seqzoo.layers.decoder import RNNDecoder
from seqzoo.layers.embedding import TokenEmbedding
from seqzoo.layers.rnn import RNNStack
from seqzoo.layers.masking import (
    lengths_from_ids,
    mask_from_ids,
    sequence_mask,
)

__all__ = [
    "BahdanauAttention",
    "BaseAttention",
    "Bridge",
    "LuongAttention",
    "RNNDecoder",
    "RNNStack",
    "TokenEmbedding",
    "lengths_from_ids",
    "mask_from_ids",
    "sequence_mask",
]
