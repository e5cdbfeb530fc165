"""Training helpers."""

from seqzoo.training.scheduled_sampling import SCHEDULES, sampling_probability

__all__ = ["SCHEDULES", "sampling_probability"]
