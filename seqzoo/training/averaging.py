"""Averaging the weights of a run's last checkpoints into a new model (`seqzoo average`).

The mean of the weights of the last few checkpoints of a run often decodes
better than the last one alone (the checkpoint averaging of OpenNMT, Marian
and fairseq). Floating-point variables are averaged; integer ones (the
dropout seed states) are taken from the newest checkpoint.
"""

import json
import os

import numpy as np

from seqzoo.errors import DataError, InputError
from seqzoo.training import data as run_data
from seqzoo.training.checkpoints import CheckpointManager, read_checkpoint
from seqzoo.training.divergence import read_mark
from seqzoo.training.trainer import build_run_model


def run_checkpoints(run_dir, last):
    """The paths of the `last` newest checkpoints of a run folder, oldest first."""
    directory = os.path.join(os.fspath(run_dir), "checkpoints")
    if not os.path.isdir(directory):
        raise InputError(f"{run_dir}: no checkpoints folder; expected a run folder of "
                         "seqzoo train")
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise InputError(f"Expected a positive number of checkpoints. Received: last={last!r}")
    manager = CheckpointManager(directory, clean=False)
    steps, why = manager.steps(), ""
    marked = read_mark(directory)
    if marked is not None:
        # The run stopped on a NaN loss: the checkpoints after its last sane one hold
        # the weights that blew up, which a --resume sets aside.
        last_sane = marked.get("last_sane_step")
        steps = [step for step in steps if last_sane is not None and step <= last_sane]
        why = (f" up to the last sane one ({last_sane}) of a run that stopped on a NaN loss"
               if last_sane is not None else " before a run's NaN loss (it had no sane one)")
    if len(steps) < last:
        raise InputError(f"{run_dir}: {len(steps)} checkpoint(s){why} (steps {steps}), fewer "
                         f"than the {last} asked; keep more with --keep-checkpoints")
    return [manager.path(step) for step in steps[-last:]]


def run_model(run_dir):
    """The run's model, built from its `config.json` and tokenizers (weights: initial)."""
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        preset, overrides = config["preset"], config["model_overrides"]
        model_config = config.get("model_config")
    except FileNotFoundError:
        raise InputError(f"{run_dir}: no config.json; expected a run folder of seqzoo "
                         "train") from None
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a valid run config ({e})") from None
    source, target = run_data.load_tokenizers(os.path.join(run_dir, "tokenizers"))
    return build_run_model(preset, overrides, model_config, source, target)


def average_checkpoints(paths, model):
    """Sets `model`'s variables to the mean of theirs in the checkpoints `paths`.

    Args:
        paths: checkpoint files of one run (`ckpt-<step>.npz`), oldest first.
        model: a model of that run (e.g. `run_model(run_dir)`).

    Returns:
        `model`.

    Raises:
        DataError: a checkpoint is unreadable or holds other variables than
            the model's (the message names it).
    """
    if not paths:
        raise InputError("Expected at least one checkpoint to average. Received: paths=[]")
    sums, newest = None, None
    for path in paths:
        meta, arrays = read_checkpoint(path)
        weights = arrays[: meta["num_model"]]
        # Counts and shapes, as restoring does: Keras numbers the names of the
        # variables of later models in a process ("seed_generator_3").
        if len(weights) != len(model.variables) or any(
                tuple(a.shape) != tuple(v.shape) for a, v in zip(weights, model.variables)):
            raise DataError("its model variables are not the run model's (another preset, "
                            "other settings or another vocabulary?)", path=path)
        newest = weights
        if sums is None:
            sums = [np.array(a, dtype=np.float64) if _floating(a) else None for a in weights]
        else:
            for total, a in zip(sums, weights):
                if total is not None:
                    total += a
    for variable, total, last in zip(model.variables, sums, newest):
        variable.assign(last if total is None else (total / len(paths)).astype(last.dtype))
    return model


def _floating(array):
    return np.issubdtype(array.dtype, np.floating)
