"""Layers shared by the zoo's models: embedding, masking, RNN stacks, bridges, attention,
decoders (with the schedules of scheduled sampling)."""

from seqzoo.layers.attention import BahdanauAttention, BaseAttention, LuongAttention
from seqzoo.layers.bridge import Bridge
from seqzoo.layers.decoder import RNNDecoder
from seqzoo.layers.embedding import TokenEmbedding
from seqzoo.layers.masking import (
    lengths_from_ids,
    mask_from_ids,
    sequence_mask,
)
from seqzoo.layers.rnn import RNNStack
from seqzoo.layers.scheduled_sampling import SCHEDULES, sampling_probability

__all__ = [
    "SCHEDULES",
    "BahdanauAttention",
    "BaseAttention",
    "Bridge",
    "LuongAttention",
    "RNNDecoder",
    "RNNStack",
    "TokenEmbedding",
    "lengths_from_ids",
    "mask_from_ids",
    "sampling_probability",
    "sequence_mask",
]
