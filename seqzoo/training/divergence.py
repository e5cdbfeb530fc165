"""Which checkpoints are sane, and setting aside the ones written after a divergence.

A run's loss is *sane* while its smoothed value (an exponential moving
average of the batch losses, the newest weighing `EMA_WEIGHT`) stays within
`sane_loss_factor` times the lowest smoothed value so far; a lowest value
under `LOSS_FLOOR` counts as `LOSS_FLOOR`, so that a loss near zero does not
make every small bump look like a divergence.

A checkpoint holds the weights that compute the *next* batch's loss, so it is
confirmed sane only when the loss is sane both when it is written and after
the batch that follows it. The trainer keeps the newest confirmed step in its
state (`last_sane_step`), never prunes that checkpoint, and names it when the
loss becomes NaN. It also writes `DIVERGED` into the checkpoint folder; a
resume then starts from the last sane checkpoint and moves the newer ones,
untouched, into `checkpoints/diverged-at-<step>/`.
"""

import json
import math
import os

from seqzoo.errors import DataError
from seqzoo.io import atomic_write

EMA_WEIGHT = 0.1
LOSS_FLOOR = 0.1
DIVERGED = "diverged.json"


def observe(state, loss, factor):
    """Updates the smoothed loss in `state` with a finite batch `loss`; settles the
    pending checkpoint (the one written before this batch). Returns whether the loss
    is sane."""
    ema = state.get("loss_ema")
    ema = loss if ema is None else (1 - EMA_WEIGHT) * ema + EMA_WEIGHT * loss
    lowest = min(state.get("lowest_loss_ema") or math.inf, ema)
    sane = ema <= factor * max(lowest, LOSS_FLOOR)
    state.update(loss_ema=ema, lowest_loss_ema=lowest, loss_sane=sane)
    pending = state.get("sane_pending")
    if pending is not None:
        if sane:
            state["last_sane_step"] = pending
        state["sane_pending"] = None
    return sane


def before_save(state, step):
    """Marks the checkpoint of `step` as pending when the loss is sane now."""
    state["sane_pending"] = step if state.get("loss_sane", True) else None


def mark_diverged(directory, state, loss):
    """Records in the checkpoint folder that the loss became `loss` (NaN, inf)."""
    with atomic_write(os.path.join(directory, DIVERGED)) as f:
        json.dump({"step": state["step"] + 1, "loss": str(loss),
                   "last_sane_step": state.get("last_sane_step")}, f)


def read_mark(directory):
    """The NaN mark of a checkpoint folder (`{"step", "loss", "last_sane_step"}`), or
    `None` when the run did not stop on a NaN loss."""
    mark = os.path.join(directory, DIVERGED)
    if not os.path.isfile(mark):
        return None
    try:
        with open(mark, encoding="utf-8") as f:
            marked = json.load(f)
        marked.get("last_sane_step")
    except (OSError, ValueError, AttributeError) as e:
        raise DataError(f"not a readable NaN mark ({e})", path=mark) from None
    return marked


def set_aside(manager):
    """After a divergence: moves the checkpoints newer than the last sane one (and the
    mark) into `diverged-at-<step>/`; returns their new paths ([] without a divergence)."""
    marked = read_mark(manager.directory)
    if marked is None:
        return []
    mark = os.path.join(manager.directory, DIVERGED)
    last_sane = marked.get("last_sane_step")
    aside = os.path.join(manager.directory, f"diverged-at-{marked['step']}")
    os.makedirs(aside, exist_ok=True)
    moved = []
    for step in manager.steps():
        if last_sane is None or step > last_sane:
            target = os.path.join(aside, os.path.basename(manager.path(step)))
            os.replace(manager.path(step), target)
            moved.append(target)
    os.replace(mark, os.path.join(aside, DIVERGED))
    return moved
