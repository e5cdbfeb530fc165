"""`tfa.seq2seq` (tensorflow-addons 0.23) on Keras 3: attention, decoders, samplers, loss."""

from seqzoo.tfa.seq2seq.attention_mechanism import (
    AttentionMechanism,
    BahdanauAttention,
    LuongAttention,
    hardmax,
)
from seqzoo.tfa.seq2seq.attention_wrapper import AttentionWrapper
from seqzoo.tfa.seq2seq.basic_decoder import BasicDecoder, BasicDecoderOutput
from seqzoo.tfa.seq2seq.beam_search_decoder import (
    BeamSearchDecoder,
    BeamSearchDecoderOutput,
    BeamSearchDecoderState,
    FinalBeamSearchDecoderOutput,
)
from seqzoo.tfa.seq2seq.beam_search_ops import gather_tree, gather_tree_from_array, tile_batch
from seqzoo.tfa.seq2seq.decoder import BaseDecoder, Decoder, dynamic_decode
from seqzoo.tfa.seq2seq.loss import SequenceLoss, sequence_loss
from seqzoo.tfa.seq2seq.monotonic import (
    BahdanauMonotonicAttention,
    LuongMonotonicAttention,
    monotonic_attention,
    safe_cumprod,
)
from seqzoo.tfa.seq2seq.sampler import (
    CustomSampler,
    GreedyEmbeddingSampler,
    InferenceSampler,
    SampleEmbeddingSampler,
    Sampler,
    ScheduledEmbeddingTrainingSampler,
    ScheduledOutputTrainingSampler,
    TrainingSampler,
)
from seqzoo.tfa.seq2seq.wrapper_state import AttentionWrapperState

__all__ = [
    "AttentionMechanism",
    "AttentionWrapper",
    "AttentionWrapperState",
    "BahdanauAttention",
    "BahdanauMonotonicAttention",
    "BaseDecoder",
    "BasicDecoder",
    "BasicDecoderOutput",
    "BeamSearchDecoder",
    "BeamSearchDecoderOutput",
    "BeamSearchDecoderState",
    "CustomSampler",
    "Decoder",
    "FinalBeamSearchDecoderOutput",
    "GreedyEmbeddingSampler",
    "InferenceSampler",
    "LuongAttention",
    "LuongMonotonicAttention",
    "SampleEmbeddingSampler",
    "Sampler",
    "ScheduledEmbeddingTrainingSampler",
    "ScheduledOutputTrainingSampler",
    "SequenceLoss",
    "TrainingSampler",
    "dynamic_decode",
    "gather_tree",
    "gather_tree_from_array",
    "hardmax",
    "monotonic_attention",
    "safe_cumprod",
    "sequence_loss",
    "tile_batch",
]
