"""Sequence losses: masked cross-entropy and sampled softmax.

- `sequence_loss` / `SequenceLoss`: weighted cross-entropy over `[B, T, V]`
  logits with the semantics of `tfa.seq2seq.sequence_loss`, label smoothing,
  and (for the Keras loss) padding masked from the targets.
- `sampled_softmax_loss` / `SampledSoftmax`: the sampled softmax of
  `tf.nn.sampled_softmax_loss` on `keras.ops`, and an output layer that
  trains with it and evaluates with the full softmax.
- `log_uniform_candidate_sampler` / `uniform_candidate_sampler`: fixed-shape
  candidate samplers on `keras.random`.
"""

from seqzoo.losses.sampled_softmax import SampledSoftmax, sampled_softmax_loss
from seqzoo.losses.samplers import (
    effective_num_tries,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from seqzoo.losses.sequence_loss import (
    SequenceLoss,
    safe_divide,
    sequence_loss,
    token_crossentropy,
)

__all__ = [
    "SampledSoftmax",
    "SequenceLoss",
    "effective_num_tries",
    "log_uniform_candidate_sampler",
    "safe_divide",
    "sampled_softmax_loss",
    "sequence_loss",
    "token_crossentropy",
    "uniform_candidate_sampler",
]
