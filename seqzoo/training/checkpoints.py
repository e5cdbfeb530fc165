"""Training checkpoints: every model and optimizer variable plus the trainer's state.

A checkpoint is one `.npz` file, `ckpt-<step>.npz`, holding the values of
`model.variables` (weights, and the random seed states that make dropout
continue exactly) and `optimizer.variables` (step count, learning rate,
moments), their names and shapes, the trainer's state as JSON (epoch,
batch, history, best metric...) and any extra arrays of the trainer's (the
running sums of weight averaging). Files are written to a temporary name and
renamed when complete, so a kill during a save leaves the previous
checkpoints intact. The manager keeps the last `keep` checkpoints, the
best one and the last sane one (`seqzoo.training.divergence`).
"""

import json
import os
import re
import zipfile

import numpy as np

from seqzoo.errors import DataError
from seqzoo.io import atomic_write

_NAME = re.compile(r"^ckpt-(\d+)\.npz$")


def _values(variables):
    # `Variable.numpy()` also reads TensorFlow's mirrored integer variables
    # (the optimizer's step), which `convert_to_numpy(v.value)` cannot.
    return [np.asarray(v.numpy()) for v in variables]


def _names(variables):
    return [v.path for v in variables]


def save_checkpoint(path, model, optimizer, state, extra=()):
    """Writes a checkpoint file atomically; `extra` arrays follow the variables'."""
    variables = list(model.variables) + list(optimizer.variables)
    values = _values(variables) + [np.asarray(a) for a in extra]
    arrays = {f"v{i}": value for i, value in enumerate(values)}
    meta = {"format": 1, "names": _names(variables), "num_model": len(model.variables),
            "num_extra": len(extra), "state": state}
    with atomic_write(path, "wb") as f:
        np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)


def read_checkpoint(path):
    """`(meta, arrays)` of a checkpoint file; `DataError` naming it if it is unreadable.

    `arrays` holds the variables' values in the order of `meta["names"]`, then
    the `meta["num_extra"]` extra arrays (none in checkpoints written before
    they existed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            count = len(meta["names"]) + meta.setdefault("num_extra", 0)
            arrays = [data[f"v{i}"] for i in range(count)]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"corrupt or unreadable checkpoint ({type(e).__name__}: {e}); "
                        "resume with --resume-from-latest-good to go on from the newest "
                        "readable one", path=path) from None
    if meta.get("format") != 1:
        raise DataError(f"unknown checkpoint format {meta.get('format')!r}; expected 1",
                        path=path)
    return meta, arrays


def restore_checkpoint(path, model, optimizer, checkpoint=None):
    """Loads a checkpoint into `model` and (built) `optimizer`; returns the trainer state.

    `checkpoint` is `read_checkpoint(path)` where the caller has read it already.

    Raises:
        DataError: the file is corrupt, or its variables do not match the
            model's (another preset, other hyperparameters, another
            vocabulary): the message names the file and the first mismatch.
    """
    meta, arrays = checkpoint or read_checkpoint(path)
    variables = list(model.variables) + list(optimizer.variables)
    names = meta["names"]
    if meta["num_model"] != len(model.variables) or len(names) != len(variables):
        raise DataError(
            f"incompatible checkpoint: it holds {meta['num_model']} model and "
            f"{len(names) - meta['num_model']} optimizer variables, the model has "
            f"{len(model.variables)} and its optimizer {len(optimizer.variables)}; was it "
            "written by a run with other settings?", path=path)
    for name, variable, value in zip(names, variables, arrays):
        if tuple(variable.shape) != tuple(value.shape):
            raise DataError(
                f"incompatible checkpoint: variable {name!r} has shape {tuple(value.shape)} "
                f"there but {tuple(variable.shape)} in the model; was it written by a run "
                "with other settings or another vocabulary?", path=path)
    for variable, value in zip(variables, arrays):
        variable.assign(value)
    return meta["state"]


def restore_model_weights(path, model):
    """Loads only the model's variables of a checkpoint (e.g. the best weights)."""
    meta, arrays = read_checkpoint(path)
    if meta["num_model"] != len(model.variables):
        raise DataError("incompatible checkpoint: another model", path=path)
    for variable, value in zip(model.variables, arrays[: meta["num_model"]]):
        variable.assign(value)


def checkpoint_steps(directory):
    """The steps of the `ckpt-<step>.npz` files in `directory`, in increasing order
    (none when it does not exist)."""
    if not os.path.isdir(directory):
        return []
    found = (_NAME.match(name) for name in os.listdir(directory))
    return sorted(int(m.group(1)) for m in found if m)


class CheckpointManager:
    """Saves, lists, prunes and finds the checkpoints of a run folder.

    Args:
        directory: where `ckpt-<step>.npz` files live.
        keep: how many of the latest checkpoints to keep (the best one is
            kept as well).
        clean: remove the temporary files of killed saves. The trainer's
            manager does; a reader of a run that may be training now (`seqzoo
            average`) must not, as a save may be under way.
    """

    def __init__(self, directory, keep=3, clean=True):
        self.directory = os.fspath(directory)
        self.keep = keep
        os.makedirs(self.directory, exist_ok=True)
        if clean:
            self._remove_partial_files()

    def _remove_partial_files(self):
        # Temporary files of saves that were killed half way.
        for name in os.listdir(self.directory):
            if name.startswith(".ckpt-") and name.endswith(".tmp"):
                os.remove(os.path.join(self.directory, name))

    def steps(self):
        """The steps of the checkpoints on disk, in increasing order."""
        return checkpoint_steps(self.directory)

    def path(self, step):
        return os.path.join(self.directory, f"ckpt-{step:08d}.npz")

    def latest(self):
        """The path of the newest checkpoint, or `None`."""
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def save(self, step, model, optimizer, state, protect=(), extra=()):
        """Saves the checkpoint of `step` (with `extra` arrays), then prunes old ones
        (never the steps in `protect`: the best one, the last sane one)."""
        path = self.path(step)
        save_checkpoint(path, model, optimizer, state, extra)
        # Checkpoints of later steps are the unreadable ones a resume passed over
        # (`--resume-from-latest-good`): they stay, and do not count among the kept.
        steps = [s for s in self.steps() if s <= step]
        keep = set(steps[-self.keep:]) | {p for p in protect if p is not None}
        for old in steps:
            if old not in keep:
                os.remove(self.path(old))
        return path
