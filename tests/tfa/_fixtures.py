"""Reads the tensorflow-addons reference fixtures (tests/tfa/fixtures/*.json).

The fixtures are written by tests/tfa/make_fixtures.py with the real
tensorflow-addons 0.23.0; see that script for the format. This module turns a
case into numpy arrays, copies its weights onto seqzoo.tfa objects by their
TFA attribute paths, and compares outputs.
"""

import functools
import json
from pathlib import Path

import numpy as np
from keras import ops

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ATOL = 1e-5


class Case:
    """One fixture case: `config` as written, `inputs`/`weights`/`outputs` as numpy arrays."""

    def __init__(self, raw):
        self.name = raw["case"]
        self.kind = raw["kind"]
        self.config = raw["config"]
        dtypes = raw.get("input_dtypes", {})
        self.inputs = {k: _array(v, dtypes.get(k)) for k, v in raw["inputs"].items()}
        self.weights = {k: np.asarray(v, dtype="float32") for k, v in raw["weights"].items()}
        self.weights_order = raw.get("weights_order", [])
        out_dtypes = raw.get("dtypes", {})
        self.outputs = {k: _array(v, out_dtypes.get(k)) for k, v in raw["outputs"].items()}
        self.dtypes = out_dtypes
        self.raw = raw

    def __repr__(self):
        return f"Case({self.name!r})"


def _array(value, dtype):
    if isinstance(dtype, dict):
        return {k: _array(value[k], dtype[k]) for k in value}
    if isinstance(value, list) and value and isinstance(value[0], list) and dtype is None:
        return [np.asarray(v) for v in value]
    return np.asarray(value, dtype=dtype) if dtype else np.asarray(value)


@functools.lru_cache(maxsize=None)
def _load_raw(name):
    with open(FIXTURES / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def cases(name, kind=None):
    """The cases of fixture file `name` (optionally of one `kind`), as `Case`s."""
    return [Case(raw) for raw in _load_raw(name)["cases"] if kind is None or raw["kind"] == kind]


def case_names(name, kind=None, prefix=None):
    return [raw["case"] for raw in _load_raw(name)["cases"]
            if (kind is None or raw["kind"] == kind)
            and (prefix is None or raw["case"].startswith(prefix))]


def case(name, case_name):
    for raw in _load_raw(name)["cases"]:
        if raw["case"] == case_name:
            return Case(raw)
    raise KeyError(f"{name}.json has no case {case_name!r}")


def resolve(roots, path):
    """The object at TFA attribute path `path` ("cell/cells/0/kernel") from `roots`."""
    parts = path.split("/")
    obj = roots[parts[0]]
    for part in parts[1:]:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def assign_weights(fixture_case, **roots):
    """Copies every weight of the case (except the `embedding` input) onto `roots`."""
    for path, value in fixture_case.weights.items():
        if path == "embedding":
            continue
        variable = resolve(roots, path)
        if tuple(variable.shape) != value.shape:
            raise AssertionError(
                f"{fixture_case.name}: {path} has shape {tuple(variable.shape)}, "
                f"TFA's has {value.shape}")
        variable.assign(value)


def numpy(x):
    """A tensor, TensorArray or array as numpy."""
    if hasattr(x, "stack") and not isinstance(x, np.ndarray):
        x = x.stack()
    return np.asarray(ops.convert_to_numpy(x))


def assert_close(actual, expected, name="", atol=ATOL, rtol=0.0):
    actual = numpy(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != TFA's {expected.shape}"
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, err_msg=name)


def assert_equal(actual, expected, name=""):
    actual = numpy(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != TFA's {expected.shape}"
    np.testing.assert_array_equal(actual, expected, err_msg=name)
