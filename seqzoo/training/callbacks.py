"""Callbacks of the trainer: wall-clock budget, cosine schedule, weight averaging, dev monitor.

They follow `keras.callbacks.Callback`, so they also work in `model.fit`.
`Trainer` calls `on_train_begin`, `on_epoch_begin`, `on_train_batch_begin`,
`on_train_batch_end`, `on_epoch_end` (with the epoch's mean training loss)
and `on_train_end`, and stops when a callback sets `model.stop_training`.
"""

import collections
import math
import time

import keras
import numpy as np

from seqzoo.errors import ArgumentError


def learning_rate_of(optimizer):
    """The optimizer's current learning rate as a float (schedules included)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class WallClockBudget(keras.callbacks.Callback):
    """Stops training in time for a budget of `seconds`, evaluations included.

    Training stops after the first batch at which the time left would not
    fit `reserve()` seconds more (e.g. the last dev evaluation's time, so the
    one that follows the stop still ends within the budget).

    The budget also measures its pace as it goes: the steps per second of
    the last `window` seconds (evaluations included), from which
    `step_progress` projects the share of the steps the budget will really
    give that are done. On a machine whose speed changes during the run
    (other work starting or ending) that share is what a schedule over the
    steps needs; `marks` keeps the steps done at every minute for the record.

    Args:
        seconds: the budget, `> 0`.
        reserve: a function giving the seconds to keep in hand.
        elapsed: seconds already spent (a resumed run).
        clock: the time function (tests pass a fake one).
        steps: steps already done (a resumed run).
        window: seconds of recent training the pace is measured over;
            by default an eighth of the budget, at least a minute.
    """

    def __init__(self, seconds, reserve=lambda: 0.0, elapsed=0.0, clock=time.time, steps=0,
                 window=None):
        super().__init__()
        if not seconds > 0:
            raise ArgumentError(f"Expected a budget > 0 seconds. Received: seconds={seconds!r}")
        self.seconds, self.reserve, self.elapsed, self.clock = seconds, reserve, elapsed, clock
        self.window = max(60.0, seconds / 8) if window is None else float(window)
        if not self.window > 0:
            raise ArgumentError(f"Expected a window > 0 seconds. Received: window={window!r}")
        self.start = None
        self.steps = int(steps)
        self.marks = []  # [minutes used, steps done] at each whole minute
        self._next_mark = 1  # the minute of the next mark
        self._samples = collections.deque()  # (time, steps) within the window

    def on_train_begin(self, logs=None):
        self.start = self.clock() - self.elapsed
        self._next_mark = int(self.elapsed // 60) + 1
        self._samples.clear()
        self._samples.append((self.clock(), self.steps))

    def used(self):
        """Seconds spent since training began (with `elapsed`)."""
        return self.elapsed if self.start is None else self.clock() - self.start

    def progress(self):
        """The share of the budget spent, in `[0, 1]`."""
        return min(1.0, self.used() / self.seconds)

    def pace(self):
        """Steps per second over the last `window` seconds, or `None` before half a window."""
        if len(self._samples) < 2:
            return None
        (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
        if t1 - t0 < self.window / 2:
            return None
        return (s1 - s0) / (t1 - t0)

    def step_progress(self):
        """The share of the budget's steps done, in `[0, 1]`.

        The steps done over those plus the steps the recent pace gives in
        the time left; on a machine of steady speed this is the share of
        the time spent. Before a pace is measured, the share of the time.
        """
        rate = self.pace()
        if not rate or not self.steps:
            return self.progress()
        left = max(0.0, self.seconds - self.used())
        return min(1.0, self.steps / (self.steps + rate * left))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        now = self.clock()
        self._samples.append((now, self.steps))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        used = self.used()
        if used >= 60 * self._next_mark:
            self.marks.append([round(used / 60, 2), self.steps])
            self._next_mark = int(used // 60) + 1
        if used + 1.2 * self.reserve() + 1.0 >= self.seconds:
            self.model.stop_training = True


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay of the learning rate from `learning_rate` to `final_ratio` of it.

    The decay follows the training steps (`total_steps`, counted by the
    optimizer's iterations, so a resumed run goes on where it was) or, with
    `budget`, a `WallClockBudget`: then the schedule ends when the budget
    does, on any machine. `by="steps"` (the default) follows the budget's
    `step_progress`, the share of the steps it will really give, which
    never goes back: when the machine gets faster during a run, the rate
    holds until the steps catch up, instead of having decayed over time in
    which few steps were done. `by="time"` follows the share of the time
    spent. The optimizer's learning rate must be a plain value (not a Keras
    schedule); it is set every `every` steps.
    """

    def __init__(self, learning_rate, final_ratio=0.02, total_steps=None, budget=None, every=10,
                 by="steps"):
        super().__init__()
        if (total_steps is None) == (budget is None):
            raise ArgumentError("Expected one of total_steps and budget. Received: "
                                f"total_steps={total_steps!r}, budget={budget!r}")
        if by not in ("steps", "time"):
            raise ArgumentError(f"Expected by='steps' or 'time'. Received: by={by!r}")
        self.base, self.final = float(learning_rate), float(learning_rate) * final_ratio
        self.total_steps, self.budget, self.every, self.by = total_steps, budget, every, by
        self._done = 0.0

    def step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def progress(self):
        """The share of the schedule done, in `[0, 1]`."""
        if self.budget is None:
            return min(1.0, self.step() / max(self.total_steps, 1))
        if self.by == "time":
            return self.budget.progress()
        self._done = max(self._done, self.budget.step_progress())
        return self._done

    def rate(self):
        """The cosine-decayed learning rate at the current progress."""
        cosine = 1 + math.cos(math.pi * self.progress())
        return self.final + 0.5 * (self.base - self.final) * cosine

    def on_train_batch_begin(self, batch, logs=None):
        if self.step() % self.every == 0:
            self.model.optimizer.learning_rate = self.rate()


class WeightAveraging(keras.callbacks.Callback):
    """The mean of the weights taken every `every` steps once `progress()` reaches `start`.

    Averaging the snapshots of the decaying end of training (as in
    stochastic weight averaging and checkpoint averaging) gives weights that
    generalize better than any single snapshot.

    Args:
        progress: a function giving the share of training done, in `[0, 1]`
            (e.g. `CosineSchedule.progress` or `WallClockBudget.progress`).
        start: the share from which snapshots are taken, in `[0, 1)`.
        every: steps between snapshots.
    """

    def __init__(self, progress, start, every=200):
        super().__init__()
        if not 0 <= start < 1:
            raise ArgumentError(f"Expected 0 <= start < 1. Received: start={start!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ArgumentError(f"Expected a positive integer. Received: every={every!r}")
        self.progress, self.start, self.every = progress, start, every
        self.total, self.count, self._step = None, 0, 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every or self.progress() < self.start:
            return
        weights = self.model.get_weights()
        if self.total is None:
            self.total = [np.array(w, dtype="float64") for w in weights]
        else:
            for t, w in zip(self.total, weights):
                t += w
        self.count += 1

    def average(self):
        """The mean of the snapshots (each in its weight's dtype), or `None` before the first."""
        if not self.count:
            return None
        return [(t / self.count).astype(w.dtype)
                for t, w in zip(self.total, self.model.get_weights())]


class DevMonitor(keras.callbacks.Callback):
    """Scores the model on dev after each epoch and keeps the best weights.

    Args:
        evaluate: `evaluate(model) -> {metric: value}`, e.g. the error
            rates of decoding dev inputs.
        key: the metric that decides the best, lower is better.
        score_start: also score the starting weights, as epoch 0 (a model
            that goes on from trained weights): they compete for the best,
            so going on never hands back a model worse on dev than it
            started with.
        log: a function that prints one line per evaluation, or `None`.
        describe: `describe(entry) -> str`, the text of that line.
    """

    def __init__(self, evaluate, key, score_start=False, log=print, describe=None):
        super().__init__()
        self.evaluate_fn, self.key, self.score_start = evaluate, key, score_start
        self.log, self.describe = log, describe or (lambda e: f"{key} {e[key]:.4f}")
        self.history, self.best, self.best_weights = [], None, None
        self.last_eval_seconds, self.steps, self._evaluated_at = 0.0, 0, -1

    def on_train_begin(self, logs=None):
        self.start = time.time()
        if self.score_start:
            self.evaluate(0, None)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        self.evaluate(epoch + 1, (logs or {}).get("loss"))

    def evaluate(self, epoch, loss, force=False, record=True):
        """Scores the current weights; returns the entry (`None` if already done at this step).

        `record=False` keeps the entry out of the per-epoch history (e.g.
        averaged weights), though it still competes for the best.
        """
        if self._evaluated_at == self.steps and not force:
            return None
        began = time.time()
        metrics = self.evaluate_fn(self.model)
        self.last_eval_seconds = time.time() - began
        self._evaluated_at = self.steps
        entry = {"epoch": epoch, "step": self.steps,
                 "minutes": round((time.time() - self.start) / 60, 3),
                 "loss": None if loss is None else float(loss), **metrics,
                 "learning_rate": learning_rate_of(self.model.optimizer)}
        if record:
            self.history.append(entry)
        if self.best is None or entry[self.key] < self.best[self.key]:
            self.best, self.best_weights = entry, self.model.get_weights()
        if self.log is not None:
            self.log(f"epoch {epoch} ({entry['minutes']:.1f} min, step {self.steps}): "
                     f"{self.describe(entry)} (evaluated in {self.last_eval_seconds:.1f} s)")
        return entry
