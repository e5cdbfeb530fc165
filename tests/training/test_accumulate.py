"""Gradient accumulation (`accumulate`, `seqzoo train --accumulate N`): the update of an
N times larger batch."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import seqzoo
from seqzoo.errors import InputError
from seqzoo.training.config import resolve
from seqzoo.training.trainer import build_optimizer


def _model():
    keras.utils.set_random_seed(3)
    return seqzoo.create("seq2seq_luong_small", source_vocab_size=12, target_vocab_size=12,
                         embedding_dim=6, units=8)


def _batch(rng, n):
    """`n` pairs without padding: every batch has the same number of target tokens."""
    source = rng.integers(4, 12, (n, 5)).astype("int32")
    target = rng.integers(4, 12, (n, 6)).astype("int32")
    target[:, 0] = 2  # <s>
    return {"source_ids": source, "decoder_input_ids": target[:, :-1]}, target[:, 1:]


@pytest.mark.backend_neutral
@pytest.mark.parametrize("accumulate", [2, 3])
def test_n_batches_accumulated_make_the_update_of_one_n_times_larger_batch(accumulate):
    rng = np.random.default_rng(0)
    x, y = _batch(rng, 4 * accumulate)
    settings = resolve([("test", {"accumulate": accumulate, "learning_rate": 0.01})])[0]

    large = _model()
    large.compile(optimizer=build_optimizer(dict(settings, accumulate=1), 10))
    large.train_on_batch(x, y)

    small = _model()
    small.compile(optimizer=build_optimizer(settings, 10))
    start = [ops.convert_to_numpy(v) for v in small.trainable_variables]
    for i in range(accumulate):
        part = slice(4 * i, 4 * (i + 1))
        small.train_on_batch({k: v[part] for k, v in x.items()}, y[part])
        if i < accumulate - 1:  # no update before the N-th batch
            for v, s in zip(small.trainable_variables, start):
                np.testing.assert_array_equal(ops.convert_to_numpy(v), s)
    assert int(ops.convert_to_numpy(small.optimizer.iterations)) == 1
    for a, b in zip(small.trainable_variables, large.trainable_variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b),
                                   atol=2e-6)


def test_accumulate_is_a_positive_integer_setting():
    assert resolve([])[0]["accumulate"] == 1
    with pytest.raises(InputError, match="accumulate"):
        resolve([("--set", {"accumulate": 0})])
    with pytest.raises(InputError, match="accumulate.*distribute"):
        resolve([("--set", {"accumulate": 2, "distribute": "mirrored"})])


def test_seqzoo_train_accumulates(tmp_path):
    from seqzoo.cli import main
    from tests.fixtures_train import SETTINGS, sort_data

    train = sort_data(tmp_path, 64, 0, "train")
    out = tmp_path / "run"
    assert main(["train", *SETTINGS, "--train", *train, "--epochs", "2", "--batch-size", "16",
                 "--accumulate", "2", "--out", str(out), "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["accumulate"] == 2 and run["steps"] == 8  # batches; 4 updates
