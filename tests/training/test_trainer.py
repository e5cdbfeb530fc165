"""`seqzoo.training.Trainer`: training, checkpoints, exact resume, early stopping, NaN stop.

A fit costs seconds of tracing, so the runs are module fixtures that several
tests read (`full`, `interrupted`, `poisoned`, `no_progress`).
"""

import json
import os
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from seqzoo.errors import DataError, InputError
from seqzoo.training.checkpoints import CheckpointManager, read_checkpoint, restore_checkpoint
from seqzoo.training.config import resolve
from seqzoo.training.trainer import Trainer, TrainingError, build_optimizer
from tests.fixtures_train import sort_corpus

TINY = {"units": 16, "embedding_dim": 8}
# 3 epochs of 6 batches, a checkpoint every 4 steps (and at each epoch's end).
RUN = {"epochs": 3, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return sort_corpus(tmp_path_factory.mktemp("data"))


def settings(**values):
    base = {"epochs": 2, "batch_size": 32, "learning_rate": 0.01, "dev_decode": 20,
            "num_buckets": 1}  # 6 full batches an epoch
    return resolve([("test", {**base, **values})])[0]


def make_trainer(out, data, resume=False, callbacks=(), model=TINY, **values):
    trainer = Trainer(out, "seq2seq_luong_small", settings(**values), model, data["train"],
                      data["dev"], verbose=0, callbacks=callbacks)
    trainer.prepare(resume=resume)
    return trainer


class StopAt(keras.callbacks.Callback):
    """Raises at a step, like a kill after the step (the run's process dies)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            raise KeyboardInterrupt


class Poison(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            variable = self.model.trainable_variables[0]
            variable.assign(np.full(variable.shape, np.nan, "float32"))


class BlowUp(keras.callbacks.Callback):
    """Scales the output layer's kernel at a step: the loss stays finite but huge, like
    the weights of a run at a far too high learning rate."""

    def __init__(self, step, factor=1000.0):
        super().__init__()
        self.step, self.factor = step, factor

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            kernel = next(v for v in self.model.trainable_variables
                          if v.path == "output/kernel")
            kernel.assign(kernel.numpy() * self.factor)


@pytest.fixture(scope="module")
def full(tmp_path_factory, data):
    """A `RUN` to the end (seed 0, the default)."""
    trainer = make_trainer(tmp_path_factory.mktemp("full"), data, **RUN)
    trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, data):
    """The same `RUN` interrupted after step 10 (mid-epoch 2)."""
    trainer = make_trainer(tmp_path_factory.mktemp("cut"), data, callbacks=[StopAt(10)], **RUN)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory, data):
    """A `RUN` with seed 4 whose weights turn NaN after step 9: `(trainer, error)`."""
    trainer = make_trainer(tmp_path_factory.mktemp("poisoned"), data, seed=4,
                           callbacks=[Poison(9)], **RUN)
    with pytest.raises(TrainingError) as error:
        trainer.fit()
    return trainer, error.value


@pytest.fixture(scope="module")
def no_progress(tmp_path_factory, data):
    """A run whose dev_exact_match stays 0 (tiny learning rate): the first epoch stays
    the best. Checkpoints every 2 steps, 2 kept; early stopping and reduce-on-plateau.
    `(trainer, history)`."""
    trainer = make_trainer(tmp_path_factory.mktemp("no_progress"), data, **NO_PROGRESS)
    return trainer, trainer.fit()


NO_PROGRESS = dict(epochs=6, learning_rate=1e-7, monitor="dev_exact_match", checkpoint_every=2,
                   keep_checkpoints=2, early_stopping=True, patience=2, schedule="plateau",
                   plateau_patience=0, plateau_factor=0.5, min_learning_rate=1e-9)


def test_trains_and_writes_the_run_folder(full):
    history, folder = full.state["history"], Path(full.out)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["dev_loss"] < history[0]["dev_loss"]
    for key in ("dev_token_accuracy", "dev_perplexity", "dev_exact_match",
                "dev_character_error_rate", "train_token_accuracy"):
        assert key in history[-1]
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["steps"] == 3 * 6 and record["data"]["train"]["pairs"] == 192
    assert record["data"]["dev"]["pairs"] == 40
    assert record["settings"]["epochs"] == 3 and len(record["history"]) == 3
    import seqzoo

    model = seqzoo.load(folder / "model.keras")
    assert model.source_tokenizer.vocab_size == full.source_tokenizer.vocab_size
    assert len(model.translate(["bad"])) == 1


def test_keeps_the_last_k_checkpoints_and_the_best(no_progress):
    trainer, _ = no_progress
    assert trainer.state["best"]["step"] == 6
    # Every 2 steps until it stopped at step 18: the last 2 and the best.
    assert trainer.checkpoints.steps() == [6, 16, 18]


def test_resume_after_interruption_ends_where_an_uninterrupted_run_does(full, interrupted,
                                                                        data):
    assert interrupted.checkpoints.steps()[-1] == 8  # mid-epoch 2 (6 batches an epoch)
    resumed = make_trainer(interrupted.out, data, resume=True, **RUN)
    resumed.restore()
    assert (resumed.state["epoch"], resumed.state["batch"], resumed.state["step"]) == (1, 2, 8)
    resumed.fit()
    assert resumed.state["step"] == full.state["step"] == 18
    for a, b in zip(full.model.variables, resumed.model.variables):
        np.testing.assert_allclose(np.asarray(a.value), np.asarray(b.value), atol=1e-5)
    assert resumed.state["history"][-1]["dev_loss"] == pytest.approx(
        full.state["history"][-1]["dev_loss"], abs=1e-4)
    # The interrupted epoch's training loss counts its batches before the resume too.
    for resumed_epoch, full_epoch in zip(resumed.state["history"], full.state["history"]):
        assert resumed_epoch["train_loss"] == pytest.approx(full_epoch["train_loss"], abs=1e-4)
    # The optimizer state came back too (Adam's step count).
    assert int(resumed.model.optimizer.iterations) == 18


def test_a_resumed_run_averages_the_snapshots_taken_before_the_interruption(tmp_path, data):
    """Weight averaging from a third of the run, a snapshot every 3 steps (steps 6,
    9, ..., 18): interrupted after step 10 (checkpoint 8, after the snapshot of
    step 6), the resumed run ends on the average of the same five snapshots."""
    averaging = dict(RUN, average_from=0.3, average_every=3, restore_best=False)
    whole = make_trainer(tmp_path / "whole", data, **averaging)
    whole.fit()
    cut = make_trainer(tmp_path / "cut", data, callbacks=[StopAt(10)], **averaging)
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    assert read_checkpoint(cut.checkpoints.path(8))[0]["state"]["averaging"] == {
        "count": 1, "step": 8}
    resumed = make_trainer(tmp_path / "cut", data, resume=True, **averaging)
    resumed.restore()
    resumed.fit()
    assert resumed.averaged["snapshots"] == whole.averaged["snapshots"] == 5
    assert resumed.averaged["value"] == pytest.approx(whole.averaged["value"], abs=1e-5)
    averaged = resumed.averager.average()
    for a, b in zip(whole.averager.average(), averaged):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_budgeted_run_records_its_pace_and_resumes_its_schedule_where_it_was(
        tmp_path, data, monkeypatch):
    """`budget_minutes` with the cosine schedule: against a clock that advances 7 s a
    reading, `run.json` has the steps of every minute, and a resumed run goes on with
    the budget's share of the run, its minute marks and a learning rate that does
    not go back up."""
    from seqzoo.training import callbacks as budget_module

    readings = iter(np.arange(0.0, 1e6, 7.0))
    monkeypatch.setattr(budget_module, "time", type("Clock", (), {
        "time": staticmethod(lambda: float(next(readings)))}))
    out = tmp_path / "run"
    budgeted = dict(RUN, budget_minutes=60, schedule="cosine")
    first = make_trainer(out, data, callbacks=[StopAt(10)], **budgeted)  # checkpoint 8 kept
    assert first.settings["budget_schedule"] == "steps"
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert first.budget.by == "steps"
    saved = read_checkpoint(first.checkpoints.path(8))[0]["state"]
    assert 0 < saved["budget_share"] <= first.budget.share()
    assert saved["steps_by_minute"] and saved["steps_by_minute"][-1][1] <= 8

    resumed = make_trainer(out, data, resume=True, **budgeted)
    resumed.restore()
    assert resumed.state["budget_share"] == saved["budget_share"]
    resumed.fit()
    assert resumed.budget.share() >= saved["budget_share"]
    # The learning rate at the end of each epoch, before and after the resume: it never
    # goes back up.
    rates = [h["learning_rate"] for h in resumed.state["history"]]
    assert resumed.state["step"] == 18 and len(rates) == 3 and rates[0] > rates[1] >= rates[2]
    record = json.loads((out / "run.json").read_text())
    marks = record["steps_by_minute"]
    assert marks[: len(saved["steps_by_minute"])] == saved["steps_by_minute"]
    assert [m[1] for m in marks] == sorted(m[1] for m in marks) and marks[-1][1] <= 18
    # The schedule by the clock, as settings choose.
    timed = make_trainer(tmp_path / "timed", data, budget_schedule="time", **budgeted)
    timed._schedule_callbacks()
    assert timed.budget.by == "time"


def test_same_seed_repeats_exactly_on_cpu(full, interrupted, poisoned):
    # The first epoch of two runs with the same settings and seed, and of one with seed 4.
    a, b = full.state["history"][0], interrupted.state["history"][0]
    c = poisoned[0].state["history"][0]
    assert a["dev_loss"] == b["dev_loss"]
    assert a["train_loss"] == b["train_loss"]
    assert {**a, "seconds": 0} == {**b, "seconds": 0}  # every metric, exactly
    assert a["train_loss"] != c["train_loss"]


def test_early_stopping_and_reduce_on_plateau(no_progress):
    trainer, history = no_progress
    assert len(history) == 3  # the first epoch, then 2 without improvement
    assert json.loads((Path(trainer.out) / "run.json").read_text())["status"] == "early stopped"
    rates = [h["learning_rate"] for h in history]
    assert rates[0] == pytest.approx(1e-7)
    assert rates[1] == pytest.approx(1e-7) and rates[2] == pytest.approx(0.5e-7)
    assert trainer.model.optimizer.learning_rate.numpy() == pytest.approx(0.25e-7)


def test_a_run_killed_after_its_early_stop_resumes_to_the_same_end(no_progress, data,
                                                                   tmp_path):
    """Killed after its last checkpoint (before model.keras and the final run.json),
    a run that stopped early trains no further epoch when resumed."""
    trainer, history = no_progress
    copy = shutil.copytree(trainer.out, tmp_path / "run")
    (copy / "model.keras").unlink()
    resumed = make_trainer(copy, data, resume=True, **NO_PROGRESS)
    resumed.restore()
    assert resumed.state["stopped"] == "early stopped"
    assert len(resumed.fit()) == len(history) == 3
    assert json.loads((copy / "run.json").read_text())["status"] == "early stopped"
    assert (copy / "model.keras").is_file()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(poisoned):
    trainer, error = poisoned
    assert re.search(r"loss became nan at step 10 .*ckpt-00000008", str(error)), error
    folder = Path(trainer.out)
    assert not (folder / "model.keras").exists()
    assert json.loads((folder / "run.json").read_text())["status"].startswith("stopped")
    meta, arrays = read_checkpoint(trainer.checkpoints.latest())
    assert meta["state"]["step"] == 8
    assert all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f")


def test_after_a_divergence_the_last_sane_checkpoint_is_named_kept_and_resumed(
        tmp_path, data):
    # The loss leaves its sane range after step 5 (finite, some 300x its lowest) and
    # becomes NaN at step 10. Checkpoints 6 and 8 hold the blown-up weights; 4 is the
    # last sane one, kept although keep_checkpoints=1.
    run = dict(RUN, keep_checkpoints=1)
    trainer = make_trainer(tmp_path, data, seed=4, callbacks=[BlowUp(5), Poison(9)], **run)
    with pytest.raises(TrainingError, match=r"nan at step 10 .*good checkpoint .*"
                                            r"ckpt-00000004\.npz; --resume goes on from it"):
        trainer.fit()
    assert trainer.checkpoints.steps() == [4, 6, 8]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["last_good_checkpoint"].endswith("ckpt-00000004.npz")
    blown = {step: open(trainer.checkpoints.path(step), "rb").read() for step in (6, 8)}

    resumed = make_trainer(tmp_path, data, resume=True, **run)
    assert resumed.restore() == resumed.checkpoints.path(4)
    aside = tmp_path / "checkpoints" / "diverged-at-10"
    assert sorted(os.listdir(aside)) == ["ckpt-00000006.npz", "ckpt-00000008.npz",
                                         "diverged.json"]
    assert [open(p, "rb").read() for p in resumed.set_aside] == [blown[6], blown[8]]
    assert resumed.state["step"] == 4
    history = resumed.fit()
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(np.isfinite(h["train_loss"]) and h["train_loss"] < 5 for h in history)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "completed"


def test_a_loss_near_zero_may_wobble_without_counting_as_a_divergence():
    from seqzoo.training import divergence

    state = {}
    for loss in [2.0, 1.0] + [1e-4] * 60:
        assert divergence.observe(state, loss, factor=10.0)
    # 0.05 is 500 times the lowest loss, but under 10 times the 0.1 floor.
    assert divergence.observe(state, 0.05, factor=10.0)
    divergence.before_save(state, step=70)
    assert divergence.observe(state, 0.05, factor=10.0)
    assert state["last_sane_step"] == 70
    divergence.before_save(state, step=80)
    assert not divergence.observe(state, 200.0, factor=10.0)  # the weights of step 80
    assert state["last_sane_step"] == 70 and state["sane_pending"] is None


def test_unreadable_later_checkpoints_stay_and_take_no_kept_place(tmp_path, full):
    """After `--resume-from-latest-good` went on from step 2, the unreadable
    checkpoint of step 9 stays on disk, and the new checkpoints are kept as if it
    were not there (`keep_checkpoints=1`)."""
    trainer = full
    manager = CheckpointManager(tmp_path / "checkpoints", keep=1)
    manager.save(2, trainer.model, trainer.model.optimizer, {"step": 2})
    with open(manager.path(9), "wb") as f:
        f.write(b"not a checkpoint")
    manager.save(4, trainer.model, trainer.model.optimizer, {"step": 4})
    assert manager.steps() == [4, 9]
    manager.save(6, trainer.model, trainer.model.optimizer, {"step": 6})
    assert manager.steps() == [6, 9]
    manager.save(9, trainer.model, trainer.model.optimizer, {"step": 9})  # over it
    assert manager.steps() == [9] and read_checkpoint(manager.path(9))[0]["state"]["step"] == 9


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, full, monkeypatch):
    trainer = full  # its model and optimizer; the checkpoints go to tmp_path
    manager = CheckpointManager(tmp_path / "checkpoints",
                                keep=trainer.settings["keep_checkpoints"])
    good = manager.save(3, trainer.model, trainer.model.optimizer, {"step": 3})
    before = open(good, "rb").read()

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half of a zip")
        raise KeyboardInterrupt  # killed half way through the write

    monkeypatch.setattr(np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        manager.save(3, trainer.model, trainer.model.optimizer, {"step": 3})
    with pytest.raises(KeyboardInterrupt):
        manager.save(4, trainer.model, trainer.model.optimizer, {"step": 4})
    assert open(good, "rb").read() == before
    assert manager.steps() == [3]
    assert sorted(os.listdir(manager.directory)) == ["ckpt-00000003.npz"]


def test_corrupt_and_incompatible_checkpoints_get_clear_errors(tmp_path, full, data):
    trainer = full  # its model and optimizer; the checkpoints go to tmp_path
    manager = CheckpointManager(tmp_path / "a" / "checkpoints")
    path = manager.save(1, trainer.model, trainer.model.optimizer, {"step": 1})
    trainer.model.optimizer.build(trainer.model.trainable_variables)
    other = make_trainer(tmp_path / "b", data, model={"units": 24, "embedding_dim": 8})
    other.model.optimizer.build(other.model.trainable_variables)
    with pytest.raises(DataError, match=r"ckpt-00000001\.npz: incompatible checkpoint"):
        restore_checkpoint(path, other.model, other.model.optimizer)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(DataError, match=r"ckpt-00000001\.npz: corrupt or unreadable"):
        restore_checkpoint(path, trainer.model, trainer.model.optimizer)


def test_partial_files_of_a_killed_save_are_cleaned_up(tmp_path):
    (tmp_path / ".ckpt-00000005.npz.abc.tmp").write_bytes(b"partial")
    (tmp_path / "ckpt-00000004.npz").write_bytes(b"x")
    manager = CheckpointManager(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000004.npz"]
    assert manager.latest().endswith("ckpt-00000004.npz")


def test_schedules_and_clipping():
    s = settings(schedule="exponential", decay_steps=10, decay_rate=0.5, learning_rate=1.0)
    opt = build_optimizer(s, 100)
    assert float(opt._learning_rate(20)) == pytest.approx(0.25)
    assert opt.global_clipnorm == 5.0
    s = settings(schedule="warmup", warmup_steps=10, learning_rate=1.0)
    opt = build_optimizer(s, 110)
    values = [float(opt._learning_rate(step)) for step in (0, 5, 10, 60, 110)]
    assert values[0] == 0.0 and values[1] == pytest.approx(0.5) and values[2] == pytest.approx(1.0)
    assert values[2] > values[3] > values[4] >= 0.05 - 1e-6
    opt = build_optimizer(settings(clipvalue=0.5), 10)
    assert opt.clipvalue == 0.5 and opt.global_clipnorm is None
    with pytest.raises(InputError, match="clipnorm and clipvalue"):
        settings(clipvalue=0.5, clipnorm=1.0)


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0}, "test: epochs=0; expected an integer >= 1"),
    ({"schedule": "cyclic"}, "schedule='cyclic'; expected one of"),
    ({"learning_rate": "fast"}, "learning_rate='fast'; expected a positive number"),
    ({"bogus": 1}, "unknown setting 'bogus'"),
    ({"monitor": "dev_speed"}, "monitor='dev_speed'"),
    ({"monitor": "dev_word_error_rate", "dev_decode": 0},
     "monitor=dev_word_error_rate is measured by decoding dev sentences; dev_decode=0"),
])
def test_bad_settings_are_named(values, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        resolve([("test", values)])


def test_pairs_over_the_default_length_bound_are_skipped_and_counted(tmp_path):
    """Without a `max_length` setting, a pair of more than 1,000 tokens (a
    runaway line) is skipped and counted instead of filling memory."""
    from seqzoo.text import CharTokenizer
    from seqzoo.training import config as run_config
    from seqzoo.training import data as run_data

    src, tgt = tmp_path / "train.src", tmp_path / "train.tgt"
    src.write_text("abc\n" + "ab" * 600 + "\ncab\n", encoding="utf-8")
    tgt.write_text("abc\naabb\nabc\n", encoding="utf-8")
    corpus = run_data.read_corpus([str(src), str(tgt)], "train")
    tokenizer = CharTokenizer.build(["abc"])
    bound = run_config.DEFAULTS["max_length"]
    assert bound == 1000
    sources, targets, skipped = run_data.encode_corpus(corpus, tokenizer, tokenizer, bound)
    assert len(sources) == len(targets) == 2
    summary = run_data.describe_skipped(skipped)
    assert summary["count"] == 1
    assert "too_long" in json.dumps(summary) and "1200 source" in json.dumps(summary)


def test_a_batch_too_large_for_the_memory_is_refused_before_anything_is_written(tmp_path):
    from seqzoo.training import memory

    source = [[5] * 10] * 99 + [[5] * 20_000]  # the last pair: 20,000 x 20,001
    target = [[6] * 10] * 99 + [[6] * 20_000]
    config = {"target_vocab_size": 1000, "attention": "luong", "num_sampled": None}
    values = resolve([("test", {"batch_size": 64, "num_buckets": 4, "max_length": None})])[0]
    forward, rows, longest = memory.largest_batch_bytes(source, target, values, config)
    assert rows == 25 and longest == (20_000, 20_000)  # the longest of 4 buckets
    assert forward == 25 * 20_001 * (1000 + 20_000) * 4
    gib = 2**30
    with pytest.raises(InputError, match=r"largest batch \(25 rows .* 20000 source and "
                                         r"20000 target tokens\) .*more than this machine's "
                                         r"32\.0 GiB; lower max_length \(now null\)"):
        memory.check(source, target, values, config, memory=(32 * gib, 32 * gib))
    logged = []
    estimate = memory.check(source, target, values, config, log=logged.append,
                            memory=(256 * gib, 100 * gib))
    assert "over half of the 100.0 GiB available" in estimate["warning"] and logged
    assert "warning" not in memory.check(source[:99], target[:99], values, config,
                                         memory=(32 * gib, 32 * gib))
    # Sampled softmax: the logits cover the sampled classes only.
    sampled = dict(config, num_sampled=10)
    assert memory.largest_batch_bytes(source, target, values, sampled)[0] == \
        25 * 20_001 * (10 + 20_000) * 4


def test_train_refuses_a_run_whose_batch_cannot_fit(tmp_path, data, monkeypatch):
    from seqzoo.training import memory

    monkeypatch.setattr(memory, "physical_memory", lambda: (4096, 4096))  # 4 KiB
    with pytest.raises(InputError, match="more than this machine's 0.0 GiB"):
        make_trainer(tmp_path / "run", data)
    assert not (tmp_path / "run" / "tokenizers").exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_batches_are_padded_to_few_shapes_where_the_backend_compiles_per_shape(monkeypatch):
    from seqzoo.training import data as run_data

    rng = np.random.default_rng(0)
    source = [list(rng.integers(4, 9, rng.integers(1, 30))) for _ in range(600)]

    def shapes(backend):
        monkeypatch.setattr(keras.backend, "backend", lambda: backend)
        batches = run_data.make_batches(source, source, settings(batch_size=8, num_buckets=4))
        seen = set()
        for epoch in range(3):
            batches.set_epoch(epoch)
            for index in range(len(batches)):
                x, _ = batches[index]
                seen.add((x["source_ids"].shape[1], x["decoder_input_ids"].shape[1]))
        return seen

    jax, tensorflow = shapes("jax"), shapes("tensorflow")
    assert all(s % 8 == 0 and t % 8 == 0 for s, t in jax), jax
    assert not all(s % 8 == 0 and t % 8 == 0 for s, t in tensorflow)  # no padding there
    assert len(jax) < len(tensorflow)
