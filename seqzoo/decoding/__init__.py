"""Inference decoders: pure functions of a step function and an initial state."""

from seqzoo.decoding.compiled import CompiledFunction
from seqzoo.decoding.search import decode_loop, filter_logits, greedy_search, sample

__all__ = ["CompiledFunction", "decode_loop", "filter_logits", "greedy_search", "sample"]
