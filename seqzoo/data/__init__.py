"""Parallel corpora, padding, the decoder shift and length-bucketed batches.

Read and validate text pairs with `read_parallel`, turn them into ids with
`encode_parallel`, and feed them to `Model.fit` with `BucketedBatches`, which
pads each batch (right, with PAD_ID=0) to its own longest sequence. The
padding helpers (`pad_sequences`, `decoder_io`, `lengths_from_ids`,
`mask_from_ids`, `check_right_padded`) are numpy only. Nothing here imports
TensorFlow.
"""

from seqzoo.data.batching import BucketedBatches
from seqzoo.data.corpus import (
    ParallelCorpus,
    SkippedPair,
    encode_parallel,
    read_parallel,
)
from seqzoo.data.padding import (
    check_right_padded,
    decoder_io,
    lengths_from_ids,
    mask_from_ids,
    pad_sequences,
)

__all__ = [
    "BucketedBatches",
    "ParallelCorpus",
    "SkippedPair",
    "check_right_padded",
    "decoder_io",
    "encode_parallel",
    "lengths_from_ids",
    "mask_from_ids",
    "pad_sequences",
    "read_parallel",
]
