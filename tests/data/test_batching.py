import keras
import numpy as np
import pytest

from seqzoo.data import BucketedBatches, decoder_io, lengths_from_ids
from seqzoo.data.batching import _spread_first_two

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral


def random_sequences(n, max_len=40, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 30, size=int(k)) for k in rng.integers(1, max_len + 1, size=n)]


def epoch_batches(data):
    return [data.batch_indices(i).tolist() for i in range(len(data))]


def run_epoch(data):
    """Serves every batch, as `fit` does, then ends the epoch."""
    order = epoch_batches(data)
    for i in range(len(data)):
        data[i]
    data.on_epoch_end()
    return order


def pad_fraction(data):
    padded = [data[i] for i in range(len(data))]
    total = sum(batch.size for batch in padded)
    return 1.0 - sum(int(lengths_from_ids(b).sum()) for b in padded) / total


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_buckets": 4}, {"boundaries": [5, 10, 20]}, {"num_buckets": 1}],
)
def test_every_example_once_per_epoch(kwargs):
    sources = random_sequences(103)
    data = BucketedBatches(sources, batch_size=8, **kwargs)
    for _ in range(3):
        batches = run_epoch(data)
        assert sorted(i for batch in batches for i in batch) == list(range(103))
        assert all(1 <= len(b) <= 8 for b in batches)
    assert data.epoch == 3


def test_items_are_padded_to_their_own_maximum():
    sources = random_sequences(50)
    data = BucketedBatches(sources, batch_size=7, num_buckets=3)
    for i in range(len(data)):
        batch = data[i]
        rows = data.batch_indices(i)
        assert batch.dtype == np.int32
        assert batch.shape == (len(rows), max(len(sources[r]) for r in rows))
        for row, r in zip(batch, rows):
            np.testing.assert_array_equal(row[: len(sources[r])], sources[r])
            assert not row[len(sources[r]) :].any()


def test_items_with_targets_come_from_decoder_io():
    sources = random_sequences(30, seed=1)
    targets = random_sequences(30, seed=2)
    data = BucketedBatches(sources, targets, batch_size=4)
    inputs, outputs = data[2]
    rows = data.batch_indices(2)
    assert set(inputs) == {"source_ids", "decoder_input_ids"}
    expected_in, expected_out = decoder_io([targets[r] for r in rows])
    np.testing.assert_array_equal(inputs["decoder_input_ids"], expected_in)
    np.testing.assert_array_equal(outputs, expected_out)
    assert inputs["source_ids"].shape[0] == len(rows)


def test_targets_count_toward_bucket_length():
    # Examples 0 and 1 have short sources but long targets: they belong with
    # the long examples 4-7, not with the short examples 2 and 3.
    sources = [[5]] * 4 + [[5] * 9] * 4
    targets = [[6] * 8] * 2 + [[6]] * 6
    data = BucketedBatches(sources, targets, batch_size=8, boundaries=[5], shuffle=False)
    assert sorted(sorted(b) for b in epoch_batches(data)) == [[0, 1, 4, 5, 6, 7], [2, 3]]
    by_source = BucketedBatches(sources, batch_size=8, boundaries=[5], shuffle=False)
    assert sorted(sorted(b) for b in epoch_batches(by_source)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_bucketing_pads_less_than_random_batches():
    sources = random_sequences(600, max_len=60)
    random_batches = pad_fraction(BucketedBatches(sources, batch_size=32, num_buckets=1))
    sorted_batches = pad_fraction(BucketedBatches(sources, batch_size=32))
    bucketed = pad_fraction(BucketedBatches(sources, batch_size=32, num_buckets=8))
    assert random_batches > 0.3
    assert sorted_batches < 0.05
    assert bucketed < random_batches / 3


def test_order_is_deterministic_in_seed_and_epoch():
    sources = random_sequences(200)
    first = epoch_batches(BucketedBatches(sources, batch_size=16, num_buckets=4, seed=3))
    again = epoch_batches(BucketedBatches(sources, batch_size=16, num_buckets=4, seed=3))
    other = epoch_batches(BucketedBatches(sources, batch_size=16, num_buckets=4, seed=4))
    assert first == again
    assert first != other
    data = BucketedBatches(sources, batch_size=16, num_buckets=4, seed=3)
    run_epoch(data)
    assert epoch_batches(data) != first


def test_set_epoch_reproduces_that_epochs_order():
    sources = random_sequences(120)
    data = BucketedBatches(sources, batch_size=8, seed=7)
    orders = [run_epoch(data) for _ in range(4)]
    resumed = BucketedBatches(sources, batch_size=8, seed=7)
    resumed.set_epoch(2)
    assert resumed.epoch == 2
    assert epoch_batches(resumed) == orders[2]
    resumed.set_epoch(0)
    assert epoch_batches(resumed) == orders[0]


def test_shuffle_false_is_sorted_and_epoch_independent():
    sources = random_sequences(64)
    data = BucketedBatches(sources, batch_size=8, shuffle=False)
    first = run_epoch(data)
    assert data.epoch == 1
    assert epoch_batches(data) == first
    maxima = sorted(max(len(sources[i]) for i in b) for b in first)
    assert maxima == sorted(maxima) and len(set(maxima)) > 1


def test_first_two_batches_differ_in_padded_length():
    # Mostly equal lengths: without care, batches 0 and 1 often share a shape,
    # and Keras on TensorFlow would then take that length as static.
    sources = [[5] * 3] * 60 + [[5] * 9] * 4
    for seed in range(5):
        data = BucketedBatches(sources, batch_size=4, seed=seed)
        for _ in range(3):
            assert data[0].shape[1] != data[1].shape[1]
            run_epoch(data)


def test_first_two_batches_differ_in_source_and_target_lengths():
    sources = [[5] * 3] * 40 + [[5] * 8] * 4 + [[5] * 3] * 4
    targets = [[6] * 2] * 40 + [[6] * 2] * 4 + [[6] * 7] * 4
    data = BucketedBatches(sources, targets, batch_size=4, seed=0)
    for _ in range(4):
        (a, _), (b, _) = data[0], data[1]
        assert a["source_ids"].shape[1] != b["source_ids"].shape[1]
        assert a["decoder_input_ids"].shape[1] != b["decoder_input_ids"].shape[1]
        run_epoch(data)


def test_spread_first_two_pairs_batches_differing_in_both_lengths():
    # No batch differs from batch 0 in both lengths, but batches 1 and 2 do.
    keys = [(3, 3), (3, 8), (8, 3), (3, 3)]
    assert _spread_first_two(["a", "b", "c", "d"], keys) == ["b", "c", "a", "d"]
    assert _spread_first_two(["a", "b", "c"], [(3,), (3,), (5,)]) == ["a", "c", "b"]
    assert _spread_first_two(["a", "b", "c"], [(3,), (3,), (3,)]) == ["a", "b", "c"]


def test_drop_remainder_drops_and_counts_partial_batches():
    sources = [[5] * 2] * 10 + [[5] * 8] * 7
    data = BucketedBatches(sources, batch_size=4, boundaries=[5], drop_remainder=True)
    assert data.num_dropped == 2 + 3
    assert len(data) == 2 + 1
    for _ in range(3):
        batches = run_epoch(data)
        assert all(len(b) == 4 for b in batches)
        kept = [i for b in batches for i in b]
        assert len(kept) == len(set(kept)) == 17 - data.num_dropped
    keep_all = BucketedBatches(sources, batch_size=4, boundaries=[5])
    assert keep_all.num_dropped == 0 and len(keep_all) == 3 + 2


def test_drop_remainder_varies_what_sorted_batching_drops():
    sources = random_sequences(37)
    data = BucketedBatches(sources, batch_size=8, drop_remainder=True)
    dropped = set()
    for _ in range(6):
        kept = {i for b in run_epoch(data) for i in b}
        dropped.add(frozenset(set(range(37)) - kept))
    assert data.num_dropped == 5
    assert len(dropped) > 1


def test_pad_to_multiple_bounds_the_shapes_and_keeps_the_ids():
    rng = np.random.default_rng(3)
    sources = random_sequences(50, max_len=21, seed=3)
    targets = [rng.integers(4, 30, size=int(k)) for k in rng.integers(1, 14, size=50)]
    padded = BucketedBatches(sources, targets, batch_size=8, num_buckets=3, seed=1,
                             pad_to_multiple=8)
    plain = BucketedBatches(sources, targets, batch_size=8, num_buckets=3, seed=1)
    shapes = set()
    for i in range(len(padded)):
        (x, y), (x0, y0) = padded[i], plain[i]
        assert x["source_ids"].shape[1] % 8 == 0 and y.shape[1] % 8 == 0
        assert x["source_ids"].shape[1] - x0["source_ids"].shape[1] < 8
        shapes.add((x["source_ids"].shape[1], y.shape[1]))
        # The same ids, with only PAD after them.
        for a, b in ((x["source_ids"], x0["source_ids"]),
                     (x["decoder_input_ids"], x0["decoder_input_ids"]), (y, y0)):
            np.testing.assert_array_equal(a[:, :b.shape[1]], b)
            assert not a[:, b.shape[1]:].any()
    assert shapes <= {(s, t) for s in (8, 16, 24) for t in (8, 16)}
    with pytest.raises(ValueError, match="Received: pad_to_multiple=0"):
        BucketedBatches(sources, batch_size=8, pad_to_multiple=0)


def test_epoch_advances_only_after_a_complete_pass():
    # Keras peeks at a batch or two, then calls on_epoch_end before training.
    data = BucketedBatches(random_sequences(40), batch_size=8, seed=2)
    first = epoch_batches(data)
    data[0], data[1]
    data.on_epoch_end()
    assert data.epoch == 0 and epoch_batches(data) == first
    assert run_epoch(data) == first
    assert data.epoch == 1 and epoch_batches(data) != first


def test_labels_are_batched_with_their_sequences():
    sources = random_sequences(20)
    labels = np.arange(20) * 10
    data = BucketedBatches(sources, batch_size=6, labels=labels)
    x, y = data[1]
    np.testing.assert_array_equal(y, labels[data.batch_indices(1)])
    assert x.shape[0] == y.shape[0]


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (([[5]],), {"batch_size": 0}, ValueError, "Received: batch_size=0"),
        (([[5], [6]], [[7]]), {}, ValueError, "2 source_ids and 1 target_ids"),
        (([[5], [6]],), {"labels": [1, 2, 3]}, ValueError, "2 source_ids and 3 labels"),
        (([[5], [], [6]],), {}, ValueError, "source_ids\\[1\\] is empty"),
        (([[5]], [[]]), {}, ValueError, "target_ids\\[0\\] is empty"),
        (([[5, 0, 6]],), {}, ValueError, "source_ids\\[0\\] has it at position 1"),
        (([[5.5]],), {}, ValueError, "integer ids"),
        (([],), {}, ValueError, "empty source_ids"),
        (([[5]],), {"boundaries": [3], "num_buckets": 2}, ValueError, "not both"),
        (([[5]],), {"boundaries": [4, 4]}, ValueError, "strictly increasing"),
        (([[5]],), {"num_buckets": 0}, ValueError, "Received: num_buckets=0"),
        (([[5]],), {"seed": -1}, ValueError, "Received: seed=-1"),
        (([[5]], [[6]]), {"labels": [1]}, ValueError, "not both"),
        (([[5]],), {"batch_size": 2, "drop_remainder": True}, ValueError, "leaves no batch"),
        (([[5]],), {"use_multiprocessing": True}, ValueError, "use_multiprocessing=True"),
    ],
)
def test_bad_arguments_raise(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        BucketedBatches(*args, **kwargs)


def test_bad_index_and_epoch_raise():
    data = BucketedBatches([[5], [6], [7]], batch_size=2)
    with pytest.raises(IndexError, match="Received: index=2"):
        data[2]
    with pytest.raises(ValueError, match="Received: epoch=-1"):
        data.set_epoch(-1)


def test_model_fit_runs_on_labelled_batches_and_counts_epochs():
    rng = np.random.default_rng(0)
    # Mostly short sequences and a few long ones: padded lengths vary by batch.
    lengths = np.concatenate([np.full(48, 3), rng.integers(4, 20, size=16)])
    sources = [rng.integers(4, 20, size=int(n)) for n in lengths]
    labels = (lengths > 3).astype("float32")
    data = BucketedBatches(sources, batch_size=8, labels=labels, seed=1)
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(20, 8, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    data.set_epoch(3)
    history = model.fit(data, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))
    assert data.epoch == 5


def test_model_fit_runs_one_epoch_on_seq2seq_batches():
    # Two lengths only: JAX compiles the model once per batch shape.
    rng = np.random.default_rng(3)
    sources = [rng.integers(4, 30, size=n) for n in [3] * 24 + [7] * 16]
    targets = [np.sort(s) for s in sources]
    data = BucketedBatches(sources, targets, batch_size=8, boundaries=[5])
    source = keras.Input(shape=(None,), dtype="int32", name="source_ids")
    decoder_in = keras.Input(shape=(None,), dtype="int32", name="decoder_input_ids")
    source_vectors = keras.layers.Embedding(30, 8, mask_zero=True)(source)
    decoder_vectors = keras.layers.Embedding(30, 8, mask_zero=True)(decoder_in)
    # A pooled source summary instead of an RNN keeps JAX's per-shape
    # compilation fast.
    summary = keras.layers.GlobalAveragePooling1D()(source_vectors)
    joined = keras.layers.Add()([decoder_vectors, keras.layers.RepeatVector(1)(summary)])
    logits = keras.layers.Dense(30)(joined)
    model = keras.Model({"source_ids": source, "decoder_input_ids": decoder_in}, logits)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert data.epoch == 1
