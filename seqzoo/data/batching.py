"""Length-bucketed, deterministically shuffled batches for `Model.fit`."""

import keras
import numpy as np

from seqzoo.data.padding import decoder_io, pad_sequences
from seqzoo.errors import ArgumentError
from seqzoo.text.specials import PAD_ID


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ArgumentError(
            f"Expected `{name}` to be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _as_sequences(sequences, name):
    """Converts id sequences to int32 arrays, rejecting empty or padded ones."""
    arrays = []
    for i, seq in enumerate(sequences):
        arr = np.asarray(seq)
        if arr.ndim != 1:
            raise ArgumentError(
                f"Expected each of `{name}` to be a 1-D id sequence. "
                f"Received: {name}[{i}] with shape {arr.shape}"
                )
        if arr.size == 0:
            raise ArgumentError(
                f"Expected non-empty sequences. Received: {name}[{i}] is empty"
                )
        if arr.dtype.kind not in "iu":
            raise ArgumentError(
                f"Expected integer ids. Received: {name}[{i}] of dtype {arr.dtype}"
                )
        if np.any(arr == PAD_ID):
            pos = int(np.argmax(arr == PAD_ID))
            raise ArgumentError(
                f"Expected no PAD_ID={PAD_ID} inside a sequence. Received: "
                f"{name}[{i}] has it at position {pos}"
                )
        arrays.append(arr.astype("int32"))
    return arrays


def _quantile_boundaries(lengths, num_buckets):
    """Boundaries that split `lengths` into `num_buckets` groups of similar size."""
    qs = np.quantile(lengths, np.linspace(0.0, 1.0, num_buckets + 1)[1:-1])
    boundaries = np.unique(np.ceil(qs).astype(np.int64))
    return tuple(int(b) for b in boundaries if b > lengths.min())


def _check_boundaries(boundaries):
    values = [_check_int("boundaries[i]", b, 1) for b in boundaries]
    if not values or any(b >= c for b, c in zip(values, values[1:])):
        raise ArgumentError(
            "Expected `boundaries` to be a non-empty, strictly increasing list "
            f"of ints. Received: boundaries={list(boundaries)!r}"
            )
    return tuple(values)


def _spread_first_two(batches, keys):
    """Reorders `batches` so batches 0 and 1 differ in every varying length.

    Keras on TensorFlow fixes the dataset's tensor shapes from the first two
    batches of a `PyDataset`; a dimension equal in both is taken as static,
    and a later batch with another padded length then fails `fit`. Two
    batches that differ in every varying dimension always exist (for two
    dimensions: if none differs from batch 0 in both, a batch differing
    only in the first and one differing only in the second differ in both).
    """
    if len(batches) < 3:
        return batches
    keys = np.asarray(keys)
    varying = [d for d in range(keys.shape[1]) if np.unique(keys[:, d]).size > 1]
    if not varying:
        return batches
    differs = (keys != keys[0])[:, varying]
    both = np.flatnonzero(differs.all(axis=1))
    if both.size:
        first, second = 0, int(both[0])
    else:
        second = int(np.flatnonzero(differs[:, 0])[0])
        first = int(np.flatnonzero(differs[:, 1])[0])
    rest = [b for i, b in enumerate(batches) if i not in (first, second)]
    return [batches[first], batches[second]] + rest


class BucketedBatches(keras.utils.PyDataset):
    """Batches of similar-length sequences, padded per batch, for `Model.fit`.

    Sequences are grouped into buckets by length: the length of the source,
    or `max(len(source), len(target) + 1)` with targets (the decoder reads
    and predicts `len(target) + 1` tokens). Batches are cut within buckets
    and each batch is right padded only to its own longest sequence, which
    wastes far less compute on padding than random batches.

    With `shuffle=True`, each epoch reshuffles the members of every bucket
    and the order of the batches, from a numpy Generator seeded with
    `(seed, epoch)`: an epoch's order depends on nothing else, so training
    can resume at an exact data position with `set_epoch`.

    The epoch advances when `on_epoch_end` is called after every batch of
    the epoch was served. Keras also calls `on_epoch_end` before training,
    after peeking at a batch or two to build the model; counting that call
    would start training on epoch 1's order. So after `fit(data, epochs=E)`
    from epoch `e`, `data.epoch == e + E`. Any complete pass counts,
    `evaluate` and `predict` included.

    Each epoch's order starts with two batches whose padded lengths differ
    (where lengths vary at all), because Keras on TensorFlow infers the
    data's shapes from the first two batches.

    Args:
        source_ids: a list of non-empty 1-D id sequences (no PAD, unpadded).
        target_ids: an optional list of target id sequences, without BOS or
            EOS, aligned with `source_ids`.
        batch_size: the largest number of sequences in a batch.
        boundaries: increasing lengths that separate buckets: bucket `i`
            holds lengths in `[boundaries[i-1], boundaries[i])`.
        num_buckets: instead of `boundaries`, split the lengths at their
            quantiles into about `num_buckets` buckets of similar size
            (`num_buckets=1` gives random batches).
            Without either, the whole data set is sorted by length (ties in
            random order) and cut into consecutive batches.
        shuffle: shuffle bucket members and batch order each epoch.
        seed: a non-negative int; with the epoch, it fixes the order.
        drop_remainder: drop the last, partial batch of each bucket;
            `num_dropped` says how many examples that leaves out per epoch.
        labels: optional per-sequence labels (numpy array, one per source)
            for classification-style data; not with `target_ids`.
        pad_to_multiple: pad each batch's source (and decoder) length up
            to a multiple of this, so that a backend that compiles one
            program per input shape (JAX, XLA) sees a few shapes instead of
            one per length; with `drop_remainder=True` the batch size is
            fixed too. Default 1: each batch to its own longest sequence.
        **pydataset_kwargs: `workers` (threads) and `max_queue_size`, passed
            to `keras.utils.PyDataset`. `use_multiprocessing=True` is refused:
            batches served in other processes would not advance the epoch.

    Items:
        With targets: `({"source_ids": S, "decoder_input_ids": D_in}, D_out)`
        where `S` is `(batch, source_length)` and `D_in`, `D_out` are
        `(batch, target_length + 1)` from `decoder_io`. With labels:
        `(S, labels_batch)`. Otherwise `S`. Id arrays are int32.

    Example:

    >>> data = BucketedBatches([[5, 6, 7], [8], [9, 10]], batch_size=2, shuffle=False)
    >>> len(data)
    2
    """

    def __init__(
        self,
        source_ids,
        target_ids=None,
        batch_size=64,
        boundaries=None,
        num_buckets=None,
        shuffle=True,
        seed=0,
        drop_remainder=False,
        labels=None,
        pad_to_multiple=1,
        **pydataset_kwargs,
    ):
        if pydataset_kwargs.get("use_multiprocessing"):
            raise ArgumentError(
                "BucketedBatches tracks the epoch in this process; use threads "
                "(workers=N) instead. Received: use_multiprocessing=True"
                )
        super().__init__(**pydataset_kwargs)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        self.shuffle = bool(shuffle)
        self.drop_remainder = bool(drop_remainder)
        self.pad_to_multiple = _check_int("pad_to_multiple", pad_to_multiple, 1)
        self._sources = _as_sequences(source_ids, "source_ids")
        if not self._sources:
            raise ArgumentError("Expected at least one sequence. Received: empty source_ids")
        self._targets = None
        self._labels = None
        if target_ids is not None and labels is not None:
            raise ArgumentError("Expected `target_ids` or `labels`, not both. Received: both")
        if target_ids is not None:
            self._targets = _as_sequences(target_ids, "target_ids")
            self._check_count("target_ids", len(self._targets))
        if labels is not None:
            self._labels = np.asarray(labels)
            self._check_count("labels", len(self._labels))

        self._source_lengths = np.array([len(s) for s in self._sources], dtype=np.int64)
        lengths = self._source_lengths
        if self._targets is not None:
            self._decoder_lengths = np.array([len(t) + 1 for t in self._targets], dtype=np.int64)
            lengths = np.maximum(lengths, self._decoder_lengths)
        self._lengths = lengths
        self.boundaries = self._make_boundaries(boundaries, num_buckets)
        if self.boundaries is None:
            self._buckets = [np.arange(len(lengths))]
        else:
            bucket_of = np.searchsorted(self.boundaries, lengths, side="right")
            buckets = [np.flatnonzero(bucket_of == b) for b in range(len(self.boundaries) + 1)]
            self._buckets = [members for members in buckets if members.size]

        remainders = [len(m) % self.batch_size for m in self._buckets]
        self.num_dropped = sum(remainders) if self.drop_remainder else 0
        self._num_batches = sum(len(m) // self.batch_size for m in self._buckets)
        if not self.drop_remainder:
            self._num_batches += sum(1 for r in remainders if r)
        if self._num_batches == 0:
            raise ArgumentError(
                f"drop_remainder=True leaves no batch: every bucket has fewer than "
                f"batch_size={self.batch_size} examples. Received: {len(lengths)} examples"
                )
        self._epoch = 0
        self._cache = None
        self._served = set()

    def _check_count(self, name, count):
        if count != len(self._sources):
            raise ArgumentError(
                f"Expected as many {name} as source_ids. Received: "
                f"{len(self._sources)} source_ids and {count} {name}"
                )

    def _make_boundaries(self, boundaries, num_buckets):
        if boundaries is not None and num_buckets is not None:
            raise ArgumentError(
                "Expected `boundaries` or `num_buckets`, not both. Received: "
                f"boundaries={boundaries!r}, num_buckets={num_buckets!r}"
                )
        if boundaries is not None:
            return _check_boundaries(boundaries)
        if num_buckets is not None:
            num_buckets = _check_int("num_buckets", num_buckets, 1)
            return _quantile_boundaries(self._lengths, num_buckets)
        return None

    @property
    def epoch(self):
        """The epoch whose order the batches follow (0 at the start)."""
        return self._epoch

    def set_epoch(self, epoch):
        """Jumps to the order of batches of `epoch`, e.g. to resume training.

        Args:
            epoch: a non-negative int.
        """
        self._epoch = _check_int("epoch", epoch, 0)
        self._served = set()

    def on_epoch_end(self):
        """Advances to the next epoch's order if this epoch's batches were all served.

        Keras calls it after each epoch, and once more before training; the
        latter comes after at most a peek and leaves the epoch unchanged.
        """
        if len(self._served) == len(self):
            self.set_epoch(self._epoch + 1)

    def __len__(self):
        return self._num_batches

    def _batches(self):
        """The list of example-index arrays of the current epoch, cached."""
        if self._cache is not None and self._cache[0] == self._epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self._epoch])
        batches = []
        for members in self._buckets:
            if self.shuffle:
                members = rng.permutation(members)
            if self.boundaries is None:
                # Sort by length; the shuffle above breaks ties differently each epoch.
                members = members[np.argsort(self._lengths[members], kind="stable")]
            batches.extend(self._cut(members, rng))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        batches = _spread_first_two(batches, self._batch_keys(batches))
        self._cache = (self._epoch, batches)
        return batches

    def _cut(self, members, rng):
        """Cuts a bucket into batches; the partial one at a random place."""
        size = self.batch_size
        num_full, remainder = divmod(len(members), size)
        sizes = [size] * num_full
        if remainder:
            # A random place keeps sorted data from always cutting (or dropping)
            # the longest sequences into the partial batch.
            place = int(rng.integers(num_full + 1)) if self.shuffle else num_full
            sizes.insert(place, remainder)
        pieces = np.split(members, np.cumsum(sizes)[:-1])
        if remainder and self.drop_remainder:
            del pieces[place]
        return pieces

    def _batch_keys(self, batches):
        keys = [(int(self._source_lengths[b].max()),) for b in batches]
        if self._targets is not None:
            keys = [k + (int(self._decoder_lengths[b].max()),) for k, b in zip(keys, batches)]
        return keys

    def _padded(self, lengths):
        """The padded length of a batch with these lengths (`pad_to_multiple`)."""
        multiple = self.pad_to_multiple
        return -(-int(lengths.max()) // multiple) * multiple

    def batch_indices(self, index):
        """The indices (into `source_ids`) of the examples of batch `index`.

        Args:
            index: the batch number in the current epoch.

        Returns:
            A 1-D int numpy array, in the order of the batch's rows.
        """
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"Expected an int batch index. Received: index={index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"Expected a batch index in [0, {len(self)}). Received: index={index}"
            )
        return self._batches()[index]

    def __getitem__(self, index):
        indices = self.batch_indices(index)
        self._served.add(int(index) % len(self))
        source = pad_sequences([self._sources[i] for i in indices],
                               maxlen=self._padded(self._source_lengths[indices]))
        if self._targets is not None:
            decoder_in, decoder_out = decoder_io(
                [self._targets[i] for i in indices],
                maxlen=self._padded(self._decoder_lengths[indices]))
            return {"source_ids": source, "decoder_input_ids": decoder_in}, decoder_out
        if self._labels is not None:
            return source, self._labels[indices]
        return source
