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

    The budget also measures its pace as it goes, for a schedule over the
    steps it will really give (`share`). The pace is the steps per second of
    training over the last `window` seconds of training: the time between
    epochs (dev evaluations, checkpoints) and the first step of a run (which
    compiles) are left out of it, and counted instead as the share of the
    run's time that went to training. The steps the budget will still give
    are that pace, times that share, times the time left for training; on a
    machine whose speed changes during the run (other work starting or
    ending) they follow the recent pace. `marks` keeps the steps done at
    every minute, for the record.

    Args:
        seconds: the budget, `> 0`.
        reserve: a function giving the seconds to keep in hand.
        elapsed: seconds already spent (a resumed run).
        clock: the time function (default `time.time`; tests pass a fake one).
        steps: steps already done (a resumed run).
        window: seconds of training the pace is measured over; by default
            an eighth of the budget, at least a minute.
        by: what `share` follows: `"steps"`, the share of the steps the
            budget will give, which never goes back (when the machine speeds
            up, it holds until the steps catch up); or `"time"`, the share of
            the time spent.
        share: the share a resumed run had reached (`"steps"`).
        marks: the list to append the minute marks to (a resumed run's).
    """

    def __init__(self, seconds, reserve=lambda: 0.0, elapsed=0.0, clock=None, steps=0,
                 window=None, by="steps", share=0.0, marks=None):
        super().__init__()
        if not seconds > 0:
            raise ArgumentError(f"Expected a budget > 0 seconds. Received: seconds={seconds!r}")
        if by not in ("steps", "time"):
            raise ArgumentError(f"Expected by='steps' or 'time'. Received: by={by!r}")
        self.seconds, self.reserve, self.elapsed = seconds, reserve, elapsed
        self.clock = clock or time.time
        self.window = max(60.0, seconds / 8) if window is None else float(window)
        if not self.window > 0:
            raise ArgumentError(f"Expected a window > 0 seconds. Received: window={window!r}")
        self.by, self._share, self._resumed = by, float(share), share > 0
        self.start = None
        self.steps = int(steps)
        self.marks = [] if marks is None else marks  # [minutes used, steps done]
        self._next_mark = 1  # the minute of the next mark
        self._last = None  # the end of the last batch, None after a pause
        self._trained = 0.0  # seconds of training counted (this process)
        self._began = None  # the end of this process's first step (which compiles)
        self._samples = collections.deque()  # (seconds trained, steps counted) in the window
        self._counted = 0

    def on_train_begin(self, logs=None):
        self.start = self.clock() - self.elapsed
        self._began = None
        self._next_mark = int(self.elapsed // 60) + 1
        self._last, self._trained, self._counted = None, 0.0, 0
        self._samples.clear()
        self._samples.append((0.0, 0))

    def on_epoch_end(self, epoch, logs=None):
        self._last = None  # what follows until the next batch is not training

    def used(self):
        """Seconds spent since training began (with `elapsed`)."""
        return self.elapsed if self.start is None else self.clock() - self.start

    def progress(self):
        """The share of the budget spent, in `[0, 1]`."""
        return min(1.0, self.used() / self.seconds)

    def pace(self):
        """Steps per second of training over the last `window` seconds of training, or
        `None` before half a window."""
        (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
        if t1 - t0 < self.window / 2:
            return None
        return (s1 - s0) / (t1 - t0)

    def training_share(self):
        """The share of this process's time since its first step that went to training."""
        wall = self.clock() - self._began if self._began is not None else 0.0
        return min(1.0, self._trained / wall) if wall > 0 else 1.0

    def steps_left(self):
        """The steps the budget will still give at the recent pace, or `None` before a pace."""
        rate = self.pace()
        if rate is None:
            return None
        left = self.seconds - self.used() - 1.2 * self.reserve() - 1.0
        return rate * self.training_share() * max(0.0, left)

    def step_progress(self):
        """The share of the budget's steps done, in `[0, 1]`: the steps done over those
        plus `steps_left()`; before a pace is measured, the share of the time."""
        return self._step_share(self.steps_left())

    def _step_share(self, left):
        if left is None or not self.steps:
            return self.progress()
        return min(1.0, self.steps / (self.steps + left))

    def share(self):
        """The share of the run done, for schedules: `step_progress`, never going back,
        with `by="steps"` (a resumed run holds the share it had reached until its pace
        is measured again); `progress` with `by="time"`."""
        if self.by == "time":
            return self.progress()
        left = self.steps_left()
        if left is not None or not self._resumed:
            self._share = max(self._share, self._step_share(left))
        return self._share

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        now = self.clock()
        if self._last is not None:
            self._trained += now - self._last
            self._counted += 1
            self._samples.append((self._trained, self._counted))
            while len(self._samples) > 2 and self._samples[1][0] <= self._trained - self.window:
                self._samples.popleft()
        self._last = now
        if self._began is None:
            self._began = now
        used = self.used()
        if used >= 60 * self._next_mark:
            self.marks.append([round(used / 60, 2), self.steps])
            self._next_mark = int(used // 60) + 1
        if used + 1.2 * self.reserve() + 1.0 >= self.seconds:
            self.model.stop_training = True


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay of the learning rate from `learning_rate` to `final_ratio` of it.

    The decay follows the training steps (`total_steps` batches, counted by
    the optimizer's iterations, so a resumed run goes on where it was; with
    `gradient_accumulation_steps` N, each of its updates counts N batches) or, with
    `budget`, the budget's `share` of the run done (by default the share of
    the steps it will really give; see `WallClockBudget`): then the schedule
    ends when the budget does, on any machine. The optimizer's learning rate
    must be a plain value (not a Keras schedule); it is set every `every`
    steps.
    """

    def __init__(self, learning_rate, final_ratio=0.02, total_steps=None, budget=None, every=10):
        super().__init__()
        if (total_steps is None) == (budget is None):
            raise ArgumentError("Expected one of total_steps and budget. Received: "
                                f"total_steps={total_steps!r}, budget={budget!r}")
        self.base, self.final = float(learning_rate), float(learning_rate) * final_ratio
        self.total_steps, self.budget, self.every = total_steps, budget, every

    def step(self):
        """The batches trained: Keras counts an optimizer's iterations in updates,
        one every `gradient_accumulation_steps` batches."""
        optimizer = self.model.optimizer
        updates = int(keras.ops.convert_to_numpy(optimizer.iterations))
        return updates * (getattr(optimizer, "gradient_accumulation_steps", None) or 1)

    def progress(self):
        """The share of the schedule done, in `[0, 1]`."""
        if self.budget is not None:
            return self.budget.share()
        return min(1.0, self.step() / max(self.total_steps, 1))

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

    def get_state(self):
        """`(info, sums)`: the counts as a JSON-able dict and the running sums, which a
        checkpoint keeps so that a resumed run averages the same snapshots."""
        return {"count": self.count, "step": self._step}, list(self.total or [])

    def set_state(self, info, sums):
        """Goes on from `get_state()`'s `(info, sums)`."""
        self.count, self._step = int(info["count"]), int(info["step"])
        self.total = [np.array(s, dtype="float64") for s in sums] if self.count else None

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
