"""Decoding with an ensemble of encoder-decoder models.

`Seq2SeqEnsemble` runs the models side by side in one search: every step
feeds each model the same previous token, and the next-token distribution
is the (weighted) mean of the models' log-probabilities, a product of
experts (`combine="log_probs"`, as in Marian and OpenNMT), or the log of the
mean of their probabilities (`combine="probs"`, as in fairseq). Greedy,
beam search and sampling are the ones of `Seq2Seq.search`, compiled once per
setting; beam search with attention gets the models' mean attention for its
alignments and coverage penalty.

The models must share their target vocabulary (and, when they carry
tokenizers, the same tokenizers); their sizes and architectures may differ.
"""

import math
import os

from keras import ops

from seqzoo.errors import ArgumentError, InputError
from seqzoo.models.base import serialize_tokenizer
from seqzoo.models.search import SearchMixin
from seqzoo.models.seq2seq import Seq2Seq

COMBINE = ("log_probs", "probs")


class Seq2SeqEnsemble(SearchMixin):
    """Several `Seq2Seq` models that decode as one.

    Args:
        models: the `Seq2Seq` models (at least one).
        weights: optional positive weight per model (normalized to sum 1;
            default: equal weights).
        combine: `"log_probs"` (weighted mean of log-probabilities) or
            `"probs"` (log of the weighted mean of probabilities).

    Use `search` and `translate` exactly as on a `Seq2Seq`.
    """

    def __init__(self, models, weights=None, combine="log_probs"):
        models = list(models)
        if not models:
            raise ArgumentError("Expected at least one model. Received: models=[]")
        for index, model in enumerate(models):
            if not isinstance(model, Seq2Seq):
                raise TypeError(f"Expected Seq2Seq models. Received: models[{index}] of type "
                                f"{type(model).__name__}")
        if combine not in COMBINE:
            raise ArgumentError(
                f"Expected combine in {list(COMBINE)}. Received: combine={combine!r}")
        first = models[0]
        for index, model in enumerate(models[1:], 1):
            for size in ("source_vocab_size", "target_vocab_size"):
                a, b = first.hyperparameters[size], model.hyperparameters[size]
                if a != b:
                    raise ArgumentError(f"Expected models with the same vocabularies. Received: "
                                        f"{size} {a} (models[0]) and {b} (models[{index}])")
            for side in ("source_tokenizer", "target_tokenizer"):
                if serialize_tokenizer(getattr(model, side)) != serialize_tokenizer(
                        getattr(first, side)):
                    raise ArgumentError(f"Expected models with the same {side}. Received: "
                                        f"models[{index}] differs from models[0]")
        if weights is None:
            weights = [1.0] * len(models)
        weights = [float(w) for w in weights]
        if len(weights) != len(models) or not all(w > 0 and math.isfinite(w) for w in weights):
            raise ArgumentError(f"Expected one positive weight per model ({len(models)}). "
                                f"Received: weights={weights}")
        total = sum(weights)
        self.models = models
        self.weights = [w / total for w in weights]
        self.combine = combine
        self.source_tokenizer = first.source_tokenizer
        self.target_tokenizer = first.target_tokenizer
        self._attending = [i for i, m in enumerate(models)
                           if m.hyperparameters["attention"] is not None]
        # The memory entries stay one row per item in beam search only where every
        # attending member's step accepts that (`Seq2Seq.beam_shared`).
        shared = {models[i].beam_shared for i in self._attending}
        self._init_search(self.encode, self.step, bool(self._attending), self._alignment,
                          lambda states: states[self._attending[0]]["mask"],
                          shared.pop() if len(shared) == 1 else ())

    @classmethod
    def load(cls, paths, weights=None, combine="log_probs"):
        """An ensemble of saved models (`.keras` files or run folders)."""
        from seqzoo.models.registry import load

        models = []
        for path in paths:
            model = load(path, compile=False)
            if not isinstance(model, Seq2Seq):
                raise InputError(f"{os.fspath(path)}: expected a Seq2Seq model. Received: "
                                 f"{type(model).__name__}")
            models.append(model)
        return cls(models, weights=weights, combine=combine)

    @property
    def variables(self):
        return [v for model in self.models for v in model.variables]

    def encode(self, source_ids):
        """The models' initial decoder states, a tuple with one state per model."""
        return tuple(model.encode(source_ids) for model in self.models)

    def step(self, token_ids, states):
        """One step of every model: `([B] ids, states) -> ([B, V] log-probs, states)`."""
        log_probs, new_states = [], []
        for model, state in zip(self.models, states):
            logits, state = model.step(token_ids, state)
            log_probs.append(ops.log_softmax(ops.cast(logits, "float32"), axis=-1))
            new_states.append(state)
        if self.combine == "log_probs":
            combined = sum(w * lp for w, lp in zip(self.weights, log_probs))
        else:
            stacked = ops.stack([lp + math.log(w) for w, lp in zip(self.weights, log_probs)])
            combined = ops.logsumexp(stacked, axis=0)
        return combined, tuple(new_states)

    def _alignment(self, states):
        return sum(states[i]["alignment"] for i in self._attending) / len(self._attending)
