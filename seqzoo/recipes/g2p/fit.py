"""The model size fitted to the steps a budget really gives (`--set min_steps=N`).

`--budget` picks a size before training (`settings.BUDGET_SIZES`): over 10
minutes, two members side by side, which need steps to pay off (on the
2-core CPU of docs/results/g2p.md they drew level with the one small model
at about 5,900 steps each and led by 2.7 points at 10,400). A slower or
busier machine gives fewer steps in the same minutes. So each member
measures its pace as it trains (`WallClockBudget`), and as soon as the pace
is measured (after half the budget's pace window of training: a sixteenth
of the budget, at least 30 seconds) projects the steps it will get in all.
Below `min_steps`, it stops (`TooFewSteps`; a member process exits with
`TOO_FEW_STEPS`), and the recipe trains the budgets' smallest model for the
time left instead. The check is made once: a machine that slows down later
keeps the size (the schedule still follows its pace).
"""

import json
import os

import keras

from seqzoo.errors import InputError
from seqzoo.io import atomic_write

# The exit status of a member process that stopped for too few steps.
TOO_FEW_STEPS = 3

PROJECTION_FILE = "too_few_steps.json"


class TooFewSteps(Exception):
    """A budgeted run projected fewer steps than `min_steps` and stopped.

    `projections`: one dict per run that stopped (`StepFloor.projection`).
    """

    def __init__(self, projections):
        self.projections = list(projections)
        worst = min(p["projected_steps"] for p in self.projections)
        super().__init__(f"projected {worst} steps, fewer than the "
                         f"{self.projections[0]['min_steps']} asked for")


class StepFloor(keras.callbacks.Callback):
    """Stops training (raising `TooFewSteps`) when the budget's first measured pace
    projects fewer than `min_steps` steps in all.

    Args:
        budget: a function giving the run's `WallClockBudget` (or `None`
            before training has begun).
        min_steps: the fewest steps the run must be projected to get.
        log: a function printing one line.
    """

    def __init__(self, budget, min_steps, log=print):
        super().__init__()
        self.budget, self.min_steps, self.log = budget, int(min_steps), log
        self.projection = None

    def on_train_batch_end(self, batch, logs=None):
        if self.projection is not None:
            return
        budget = self.budget()
        left = budget.steps_left() if budget is not None else None
        if left is None:
            return
        projected, pace = int(budget.steps + left), budget.pace()
        self.projection = {"minutes": round(budget.used() / 60, 2), "steps": budget.steps,
                           "steps_per_second": round(pace, 2),
                           "projected_steps": projected, "min_steps": self.min_steps}
        enough = projected >= self.min_steps
        self.log(f"pace {pace:.2f} steps/s after {budget.steps} steps: about "
                 f"{projected} steps in the budget, "
                 + (f"at least min_steps={self.min_steps}; the size stays" if enough
                    else f"fewer than min_steps={self.min_steps}; stopping"))
        if not enough:
            raise TooFewSteps([self.projection])


def write_projection(out, short):
    """Writes a stopped member's projection to `out` for the ensemble to read."""
    with atomic_write(os.path.join(out, PROJECTION_FILE)) as f:
        json.dump(short.projections[0], f, indent=2)


def read_projections(folders):
    """The projections the stopped members of `folders` wrote, as `TooFewSteps`."""
    projections = []
    for folder in folders:  # member-N/
        path = os.path.join(folder, PROJECTION_FILE)
        if os.path.exists(path):
            with open(path) as f:
                projections.append({"member": int(folder.rsplit("-", 1)[-1]), **json.load(f)})
    if not projections:
        raise InputError(f"a member exited with status {TOO_FEW_STEPS} (too few steps) but "
                         f"none of {', '.join(folders)} holds its {PROJECTION_FILE}")
    return TooFewSteps(projections)


def clear_projection(out):
    """Removes a projection an earlier run left in `out`."""
    path = os.path.join(out, PROJECTION_FILE)
    if os.path.exists(path):
        os.remove(path)
