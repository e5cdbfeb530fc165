"""`from seqzoo import tfa` offers the whole public API of `tensorflow_addons.seq2seq` 0.23."""

import pytest

from seqzoo import tfa

pytestmark = pytest.mark.backend_neutral

# tensorflow_addons/seq2seq/__init__.py of release 0.23.0, every public name.
TFA_SEQ2SEQ = [
    "AttentionMechanism", "AttentionWrapper", "AttentionWrapperState", "BahdanauAttention",
    "BahdanauMonotonicAttention", "LuongAttention", "LuongMonotonicAttention", "hardmax",
    "monotonic_attention", "safe_cumprod", "BasicDecoder", "BasicDecoderOutput",
    "BeamSearchDecoder", "BeamSearchDecoderOutput", "BeamSearchDecoderState",
    "FinalBeamSearchDecoderOutput", "gather_tree", "gather_tree_from_array", "tile_batch",
    "BaseDecoder", "Decoder", "dynamic_decode", "SequenceLoss", "sequence_loss",
    "CustomSampler", "GreedyEmbeddingSampler", "InferenceSampler", "SampleEmbeddingSampler",
    "Sampler", "ScheduledEmbeddingTrainingSampler", "ScheduledOutputTrainingSampler",
    "TrainingSampler",
]
# TFA's submodules that code reaches into (`tfa.seq2seq.sampler.TrainingSampler`, ...).
TFA_SUBMODULES = {
    "attention_wrapper": ["AttentionWrapper", "LuongAttention", "BahdanauAttention"],
    "basic_decoder": ["BasicDecoder", "BasicDecoderOutput"],
    "beam_search_decoder": ["BeamSearchDecoder", "tile_batch", "gather_tree_from_array"],
    "decoder": ["BaseDecoder", "Decoder", "dynamic_decode"],
    "loss": ["SequenceLoss", "sequence_loss"],
    "sampler": ["TrainingSampler", "GreedyEmbeddingSampler", "SampleEmbeddingSampler"],
}


def test_every_tfa_seq2seq_name_is_there():
    missing = [name for name in TFA_SEQ2SEQ if not hasattr(tfa.seq2seq, name)]
    assert not missing
    assert sorted(tfa.seq2seq.__all__) == sorted(TFA_SEQ2SEQ)


@pytest.mark.parametrize("module", sorted(TFA_SUBMODULES))
def test_tfa_submodule_paths_work(module):
    sub = getattr(tfa.seq2seq, module)
    for name in TFA_SUBMODULES[module]:
        assert getattr(sub, name) is getattr(tfa.seq2seq, name)
