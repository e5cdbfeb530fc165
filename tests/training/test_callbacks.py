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
    budget = WallClockBudget(600, reserve=lambda: 10.0, clock=lambda: now[0], by="time")
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


def _run_budget(paces, by="steps", seconds=600, window=60, every=1, pause=None, budget=None,
                now=None, compile_seconds=0.0):
    """Trains against a fake clock at `paces[i]` steps/s in the i-th equal part of a
    budget of `seconds`, with an epoch end (and `pause` seconds of evaluation) every 100
    steps. Returns the learning rate at each step, as `(time, rate)`, and the budget."""
    now = now or [0.0]
    budget = budget or WallClockBudget(seconds, clock=lambda: now[0], window=window, by=by)
    schedule = CosineSchedule(1.0, 0.0, budget=budget, every=every)
    model = _Model()
    for callback in (budget, schedule):
        callback.set_model(model)
        callback.on_train_begin()
    rates, part = [], budget.seconds / len(paces)
    first = True
    while not model.stop_training:
        schedule.on_train_batch_begin(0)
        model.optimizer.iterations += 1
        rates.append((now[0], model.optimizer.learning_rate))
        now[0] += 1.0 / paces[min(int(budget.used() // part), len(paces) - 1)]
        if first:
            now[0] += compile_seconds
            first = False
        budget.on_train_batch_end(0)
        if pause and model.optimizer.iterations % 100 == 0:
            budget.on_epoch_end(0)
            now[0] += pause
    return rates, budget


def test_the_budget_measures_its_pace_and_the_schedule_follows_the_steps_it_will_give():
    # A steady machine: the share of the steps is the share of the time.
    rates, budget = _run_budget([10.0], "steps")
    assert budget.pace() == pytest.approx(10.0)
    timed, _ = _run_budget([10.0], "time")
    assert len(rates) == len(timed) == budget.steps
    np.testing.assert_allclose([r for _, r in rates], [r for _, r in timed], atol=0.02)
    assert rates[-1][1] < 1e-3  # the bottom of the schedule, at the stop
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
    half = len(by_steps) // 2
    assert by_time[half][1] < 0.3 and by_steps[half][1] > 0.45
    assert by_steps[-1][1] < 1e-3 and by_time[-1][1] < 1e-3  # both end at the bottom
    with pytest.raises(ValueError, match="by='steps' or 'time'"):
        WallClockBudget(600, by="clock")
    with pytest.raises(ValueError, match="window > 0"):
        WallClockBudget(600, window=0)


def test_evaluations_and_compiling_are_not_taken_for_slow_training():
    # Evaluations as long as the window, after every 100 steps (10 s of training):
    # the pace is that of training, and the time they take counts against the
    # steps left. The schedule then stays with the share of the time.
    rates, budget = _run_budget([10.0], window=60, pause=60.0, every=10)
    assert budget.pace() == pytest.approx(10.0)
    assert budget.training_share() == pytest.approx(10 / 70, rel=0.05)
    for moment in (150, 300, 450):
        at, rate = next((t, r) for t, r in rates if t >= moment)  # the first step after it
        assert rate == pytest.approx(0.5 * (1 + np.cos(np.pi * at / 600)), abs=0.03)
    # A first step that compiles for 100 s is no sign of a slow machine.
    rates, budget = _run_budget([10.0], compile_seconds=100.0)
    assert budget.pace() == pytest.approx(10.0)
    at = next(i for i, (t, _) in enumerate(rates) if t >= 350)  # half of the rest
    assert rates[at][1] == pytest.approx(0.5, abs=0.06)


def test_a_resumed_budget_goes_on_from_its_share_steps_and_minutes():
    # Stopped at 400 s of 600 after a slow start (2, then from 300 s 6 steps/s).
    now = [0.0]
    first = WallClockBudget(600, clock=lambda: now[0], window=60)
    first.set_model(_Model())
    first.on_train_begin()
    while now[0] < 400:
        now[0] += 1 / (2.0 if now[0] < 300 else 6.0)
        first.on_train_batch_end(0)
        first.share()  # as a schedule asks every step
    share, steps = first.share(), first.steps
    assert 0.45 < share < first.progress() - 0.1  # behind the clock: the steps were slow
    # The resumed run starts where the share was, not at the share of the time,
    # and keeps the steps and minute marks.
    now = [1000.0]
    resumed = WallClockBudget(600, clock=lambda: now[0], window=60, elapsed=400.0,
                              steps=steps, share=share, marks=list(first.marks))
    resumed.set_model(_Model())
    resumed.on_train_begin()
    assert resumed.share() == share and resumed.pace() is None
    for _ in range(70):
        now[0] += 1.0
        resumed.on_train_batch_end(0)
    assert resumed.steps == steps + 70
    assert resumed.marks[: len(first.marks)] == first.marks
    assert [int(m[0]) for m in resumed.marks[len(first.marks):]] == [7]
    assert resumed.share() >= share


def test_cosine_schedule_over_the_steps_reads_the_optimizer_iterations():
    model = _Model()
    steps = CosineSchedule(1.0, 0.0, total_steps=4)
    steps.set_model(model)
    rates = []
    for model.optimizer.iterations in range(5):
        rates.append(steps.rate())
    assert rates == pytest.approx(
        [1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5, 0.5 - 0.5 * np.cos(np.pi / 4), 0.0])
    # With gradient accumulation Keras counts updates, one every N batches; the
    # schedule counts batches (the trainer's total_steps): 8 batches are 4 updates.
    model.optimizer.gradient_accumulation_steps = 2
    batches = CosineSchedule(1.0, 0.0, total_steps=8)
    batches.set_model(model)
    accumulated = []
    for model.optimizer.iterations in range(5):
        accumulated.append(batches.rate())
    assert accumulated == pytest.approx(rates)
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
