"""Inference decoders: pure functions of a step function and an initial state."""

from seqzoo.decoding.beam_search import beam_search
from seqzoo.decoding.compiled import CompiledFunction
from seqzoo.decoding.search import decode_loop, filter_logits, greedy_search, sample

__all__ = ["CompiledFunction", "beam_search", "decode_loop", "filter_logits", "greedy_search",
           "sample"]
