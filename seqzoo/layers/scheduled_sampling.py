"""Schedules for scheduled sampling (Bengio et al. 2015).

With probability `p(step)` the decoder reads its own previous prediction
instead of the true previous token. `p` grows with the training step from 0
to `max_probability`; `k` sets how many steps that takes.
"""

from keras import ops

from seqzoo.errors import ArgumentError

SCHEDULES = ("linear", "exponential", "inverse_sigmoid")


def check_schedule(schedule, k, max_probability):
    if schedule not in SCHEDULES:
        raise ArgumentError(f"Expected a schedule in {list(SCHEDULES)}. Received: "
                            f"scheduled_sampling={schedule!r}")
    if not k > 0:
        raise ArgumentError(f"Expected sampling_steps > 0. Received: sampling_steps={k!r}")
    if not 0.0 <= max_probability <= 1.0:
        raise ArgumentError("Expected 0 <= max_sampling_probability <= 1. Received: "
                            f"max_sampling_probability={max_probability!r}")


def sampling_probability(schedule, step, k, max_probability):
    """The probability of feeding the model's own prediction at `step`.

    Args:
        schedule: `"linear"`: `p = max_p * min(1, step / k)`;
            `"exponential"`: `p = max_p * (1 - exp(-step / k))`;
            `"inverse_sigmoid"`: `p = max_p * (1 - k / (k + exp(step / k)))`
            (Bengio et al.'s inverse sigmoid decay of teacher forcing).
        step: the training step (a scalar tensor or number).
        k: the schedule's scale in steps, `> 0`.
        max_probability: the largest sampling probability.

    Returns:
        A float32 scalar in `[0, max_probability]`.
    """
    step = ops.cast(step, "float32")
    if schedule == "linear":
        p = ops.minimum(1.0, step / k)
    elif schedule == "exponential":
        p = 1.0 - ops.exp(-step / k)
    else:
        p = 1.0 - k / (k + ops.exp(ops.minimum(step / k, 80.0)))
    return max_probability * p
