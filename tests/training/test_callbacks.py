"""The trainer's callbacks (budget, cosine schedule, weight averaging, dev monitor) and
`Trainer.for_model`, the loop on data in memory."""

import keras
import numpy as np
import pytest

from seqzoo.data import BucketedBatches
from seqzoo.training.callbacks import CosineSchedule, DevMonitor, WallClockBudget, WeightAveraging
from seqzoo.training.config import resolve
from seqzoo.training.trainer import Trainer

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral


class _Optimizer:
    learning_rate = None
    iterations = 0


class _Model:
    stop_training = False

    def __init__(self):
        self.optimizer = _Optimizer()


def test_budget_stops_in_time_and_the_cosine_schedule_follows_it():
    now = [100.0]
    budget = WallClockBudget(600, reserve=lambda: 10.0, clock=lambda: now[0])
    schedule = CosineSchedule(1e-2, 0.1, budget=budget, every=1)
    model = _Model()
    for callback in (budget, schedule):
        callback.set_model(model)
        callback.on_train_begin()
    rates, stops = [], []
    for elapsed in (0, 150, 300, 450, 590):
        now[0] = 100.0 + elapsed
        schedule.on_train_batch_begin(0)
        rates.append(model.optimizer.learning_rate)
        budget.on_train_batch_end(0)
        stops.append(model.stop_training)
    assert rates[0] == pytest.approx(1e-2) and rates[2] == pytest.approx(0.55e-2)
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] > 1e-3
    # 590 s + 1.2 * 10 s (one more dev evaluation) + 1 s passes the 600 s budget.
    assert stops == [False, False, False, False, True]
    # A resumed run counts the time it had already spent.
    resumed = WallClockBudget(600, elapsed=300, clock=lambda: now[0])
    resumed.on_train_begin()
    assert resumed.progress() == pytest.approx(0.5)
    # Its marks go on from the minute it had reached.
    resumed.set_model(_Model())
    for _ in range(2):
        now[0] += 40.0
        resumed.on_train_batch_end(0)
    assert resumed.marks == [[pytest.approx(380 / 60, abs=0.01), 2]]


def _run_budget(paces, by, seconds=600, window=60):
    """A budget of `seconds` trained at `paces[i]` steps/s in the i-th equal part of it;
    the learning rates at each step and the budget."""
    now = [0.0]
    budget = WallClockBudget(seconds, clock=lambda: now[0], window=window)
    schedule = CosineSchedule(1.0, 0.0, budget=budget, every=1, by=by)
    model = _Model()
    for callback in (budget, schedule):
        callback.set_model(model)
        callback.on_train_begin()
    rates, part = [], seconds / len(paces)
    while not model.stop_training:
        schedule.on_train_batch_begin(0)
        rates.append((now[0], model.optimizer.learning_rate))
        now[0] += 1.0 / paces[min(int(now[0] // part), len(paces) - 1)]
        budget.on_train_batch_end(0)
    return rates, budget


def test_the_budget_measures_its_pace_and_the_schedule_follows_the_steps_it_will_give():
    # A steady machine: the share of the steps is the share of the time.
    rates, budget = _run_budget([10.0], "steps")
    assert budget.pace() == pytest.approx(10.0)
    timed, _ = _run_budget([10.0], "time")
    assert len(rates) == len(timed) == budget.steps
    np.testing.assert_allclose([r for _, r in rates], [r for _, r in timed], atol=0.02)
    # Minutes and steps for the record: one mark a minute.
    assert [m[1] for m in budget.marks] == pytest.approx([600 * k for k in range(1, 10)], abs=1)
    # Before half a window of training there is no pace: the time share stands in.
    fresh = WallClockBudget(600, window=60, clock=lambda: 10.0)
    fresh.on_train_begin()
    assert fresh.pace() is None and fresh.step_progress() == fresh.progress()

    # Other work slows the first half to a third: on the clock, half of the
    # schedule is spent on a fifth of the steps; by the steps, the rate holds
    # when the machine speeds up, until the steps catch up.
    by_steps, budget = _run_budget([2.0, 6.0], "steps")
    by_time, _ = _run_budget([2.0, 6.0], "time")
    # 600 slow steps and 1,800 fast ones, less the last second (kept in hand).
    assert budget.steps == len(by_steps) == len(by_time) == 2394
    assert all(a[1] >= b[1] - 1e-9 for a, b in zip(by_steps, by_steps[1:]))  # never goes up
    half = len(by_steps) // 2
    assert by_time[half][1] < 0.3 and by_steps[half][1] > 0.45
    # Both end at the bottom of the schedule, in time.
    assert by_steps[-1][1] < 0.01 and by_time[-1][1] < 0.01
    with pytest.raises(ValueError, match="by='steps' or 'time'"):
        CosineSchedule(1.0, budget=budget, by="clock")
    with pytest.raises(ValueError, match="window > 0"):
        WallClockBudget(600, window=0)


def test_cosine_schedule_over_the_steps_reads_the_optimizer_iterations():
    model = _Model()
    steps = CosineSchedule(1.0, 0.0, total_steps=4)
    steps.set_model(model)
    rates = []
    for model.optimizer.iterations in range(5):
        rates.append(steps.rate())
    assert rates == pytest.approx(
        [1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5, 0.5 - 0.5 * np.cos(np.pi / 4), 0.0])
    with pytest.raises(ValueError, match="one of total_steps and budget"):
        CosineSchedule(1.0)


class _WeightsModel:
    def __init__(self):
        self.weights = [np.zeros((2, 2), "float32"), np.zeros(3, "float32")]

    def get_weights(self):
        return [w.copy() for w in self.weights]


def test_weight_average_is_the_mean_of_the_snapshots_after_the_start():
    done = [0.0]
    model = _WeightsModel()
    averager = WeightAveraging(lambda: done[0], start=0.5, every=2)
    averager.set_model(model)
    assert averager.average() is None
    snapshots = []
    for step in range(1, 13):
        done[0] = step / 12
        model.weights = [w + step for w in model.weights]
        averager.on_train_batch_end(step)
        if step % 2 == 0 and step / 12 >= 0.5:
            snapshots.append(model.get_weights())
    assert averager.count == len(snapshots) == 4  # steps 6, 8, 10 and 12
    for got, *taken in zip(averager.average(), *snapshots):
        np.testing.assert_allclose(got, np.mean(taken, axis=0))
        assert got.dtype == np.float32
    with pytest.raises(ValueError, match="start=1"):
        WeightAveraging(lambda: 0.0, start=1)


def _copy_task(seed=0):
    """A compiled tiny seq2seq model and batches of a copy task, all padded to one
    shape (one compiled train step on JAX)."""
    import seqzoo

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    source = [list(rng.integers(4, 12, size=rng.integers(2, 6))) for _ in range(96)]
    target = [list(row) for row in source]
    model = seqzoo.create("seq2seq_luong", source_vocab_size=12, target_vocab_size=12,
                          units=16, embedding_dim=8, num_layers=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model, BucketedBatches(source, target, batch_size=16, num_buckets=2, seed=seed,
                                  pad_to_multiple=8)


def test_for_model_trains_in_memory_with_monitor_budget_and_averaging():
    model, batches = _copy_task()
    settings, _ = resolve([("test", {"epochs": 4, "schedule": "cosine", "average_from": 0.5,
                                     "average_every": 2})])
    calls = []

    def error(model):  # falls with each evaluation: 1, 1/2, 1/3, 1/4
        calls.append(model)
        return {"error": 1.0 / len(calls)}

    monitor = DevMonitor(error, key="error", log=None)
    trainer = Trainer.for_model(model, batches, settings, callbacks=[monitor], verbose=0)
    history = trainer.fit()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert [h["epoch"] for h in monitor.history] == [1, 2, 3, 4]
    assert monitor.best["epoch"] == 4 and monitor.best["error"] == pytest.approx(0.25)
    # Cosine over the steps from the optimizer's rate (1e-2): near the end of
    # the decay (set every 10 steps) it is below a tenth of the start.
    assert history[-1]["learning_rate"] < 0.1 * 1e-2
    # No dev set: the average of the snapshots of the second half is kept.
    assert trainer.averaged == {"snapshots": trainer.averager.count}
    total = 4 * len(batches)  # a snapshot every 2 steps from half of them on
    assert trainer.averager.count == len(range(2, total + 1, 2)) - len(range(2, total // 2, 2))
    np.testing.assert_allclose(model.get_weights()[0], trainer.averager.average()[0])


def test_for_model_stops_when_the_budget_is_spent():
    model, batches = _copy_task(1)
    settings, _ = resolve([("test", {"epochs": 50, "budget_minutes": 1e-6})])
    trainer = Trainer.for_model(model, batches, settings, verbose=0)
    history = trainer.fit()
    assert len(history) == 1 and history[0]["step"] == 1
