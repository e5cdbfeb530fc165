"""What every benchmark suite shares: timing, the machine's description, result files.

Nothing here imports a Keras backend at module level: the runner picks the
backend first, and a machine without TensorFlow (the GPU machines) must be
able to run every suite on JAX or PyTorch.
"""

import datetime
import importlib.metadata
import math
import os
import pathlib
import platform
import time

# The result files live in benchmarks/files.py; these names stay importable from here.
from benchmarks.files import (  # noqa: F401
    RESULTS_JSON,
    RESULTS_MD,
    SCHEMA,
    describe_context,
    format_rate,
    markdown,
    read_records,
    write_results,
)

# Distribution names whose versions go with every figure; the first of each
# group that is installed is reported.
LIBRARIES = (
    ("keras",),
    ("tensorflow", "tensorflow-cpu", "tf-nightly"),
    ("jax",),
    ("jaxlib",),
    ("torch",),
    ("numpy",),
    ("seqzoo",),
)



# Environment variables that change how the libraries run, recorded when set.
ENV = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS",
       "TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES")


# --- timing -----------------------------------------------------------------


def quantile(values, q):
    """Linear-interpolated quantile `q` in [0, 1] of a non-empty sequence."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values):
    """Median and spread of repeated measurements.

    Returns:
        A dict with `median`, `min`, `max`, `q1`, `q3` (quartiles) and `n`.
    """
    if not values:
        raise ValueError("Expected at least one measurement. Received: values=[]")
    return {
        "median": quantile(values, 0.5),
        "min": min(values),
        "max": max(values),
        "q1": quantile(values, 0.25),
        "q3": quantile(values, 0.75),
        "n": len(values),
    }


def scale(summary, factor):
    """A summary of `factor / x`, e.g. step seconds to tokens per second.

    `factor / x` reverses the order, so min and max (and the quartiles) swap.
    """
    return {
        "median": factor / summary["median"],
        "min": factor / summary["max"],
        "max": factor / summary["min"],
        "q1": factor / summary["q3"],
        "q3": factor / summary["q1"],
        "n": summary["n"],
    }


def _seconds_per_call(fn, calls):
    if hasattr(fn, "seconds_per_call"):  # a step in another process times itself
        return fn.seconds_per_call(calls)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def _busy_cpu_seconds():
    """CPU seconds all processes (and the hypervisor's steal) have used; None without /proc."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class OthersMeter:
    """Measures how many cores other processes kept busy while a block ran.

    `/proc/stat` counts in clock ticks (10 ms), so a window of a few hundred
    milliseconds tells an idle machine (about 0) from one running another
    busy process (about 1 core). `children` are processes of the benchmark
    itself (objects with `cpu_seconds()`, such as the torch worker), whose
    CPU time counts as the benchmark's own.
    """

    def __init__(self, children=()):
        self.children = list(children)

    def _own_cpu_seconds(self):
        return time.process_time() + sum(child.cpu_seconds() for child in self.children)

    def __enter__(self):
        self._busy = _busy_cpu_seconds()
        self._own = self._own_cpu_seconds()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._wall
        busy = _busy_cpu_seconds()
        if self._busy is None or busy is None or wall <= 0:
            self.cores = 0.0
        else:
            others = (busy - self._busy) - (self._own_cpu_seconds() - self._own)
            self.cores = max(0.0, others / wall)
        return False


class Rounds:
    """What `interleaved` measured.

    Attributes:
        seconds: dict name -> list (one per round) of seconds per call.
        calls: dict name -> calls per timed run.
        others: list (one per round) of cores other processes used meanwhile.
        clean: list of the indices of rounds without such contention.
    """

    def __init__(self, names, calls):
        self.seconds = {name: [] for name in names}
        self.calls = calls
        self.others = []
        self.clean = []

    def kept(self, minimum=3):
        """Indices of the rounds to report: the clean ones when there are
        at least `minimum` of them, else all."""
        if len(self.clean) >= minimum or len(self.clean) == len(self.others):
            return list(self.clean)
        return list(range(len(self.others)))

    def summary(self, name, minimum=3):
        return summarize([self.seconds[name][i] for i in self.kept(minimum)])


def interleaved(
    fns, warmup, repeats, min_run_s=0.0, max_rounds=None, max_others=0.5, max_seconds=None
):
    """Times several functions in alternating rounds, on a possibly shared machine.

    Each function is called `warmup` times untimed (compilation, caches),
    then every round times one run of each. A run is as many calls as make
    it last about `min_run_s` (at least one), so fast GPU steps are not
    lost in timer noise. The order is reversed every other round so that
    machine noise and whatever one library leaves behind (spinning thread
    pools, caches) fall on all of them alike.

    Other processes do not slow all libraries alike: a pool of OpenMP
    threads that wait for each other at every barrier (torch) loses far
    more to one busy neighbour than a work-stealing pool (TensorFlow). So
    rounds during which other processes kept more than `max_others` cores
    busy do not count, and rounds go on until `repeats` clean ones,
    `max_rounds` in all, or `max_seconds` of rounds.

    Args:
        fns: dict of name -> function of no arguments; each must block until
            its work is done (return a host value). A function with a
            `seconds_per_call(calls)` method times itself there, and one
            with a `worker` (`cpu_seconds()`) runs in that process.
        warmup: untimed calls per function.
        repeats: wanted number of clean rounds.
        min_run_s: shortest wanted duration of one timed run.
        max_rounds: most rounds in all (default `4 * repeats`).
        max_others: cores other processes may use during a clean round.
        max_seconds: stop starting rounds after this long (default: no limit).

    Returns:
        A `Rounds`.
    """
    if repeats < 1:
        raise ValueError(f"Expected repeats >= 1. Received: repeats={repeats!r}")
    max_rounds = max(repeats, max_rounds or 4 * repeats)
    names = list(fns)
    calls = {}
    for name in names:
        for _ in range(warmup):
            fns[name]()
        one = _seconds_per_call(fns[name], 1)
        calls[name] = max(1, math.ceil(min_run_s / one)) if one > 0 else 1
    rounds = Rounds(names, calls)
    children = {id(fn.worker): fn.worker for fn in fns.values() if hasattr(fn, "worker")}
    start = time.perf_counter()
    for r in range(max_rounds):
        if len(rounds.clean) >= repeats:
            break
        if r and max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        with OthersMeter(children.values()) as meter:
            for name in names if r % 2 == 0 else reversed(names):
                rounds.seconds[name].append(_seconds_per_call(fns[name], calls[name]))
        rounds.others.append(meter.cores)
        if meter.cores <= max_others:
            rounds.clean.append(r)
    return rounds


def round_accounting(rounds):
    """What a record says about the rounds `interleaved` timed."""
    return {
        "total": len(rounds.others),
        "clean": len(rounds.clean),
        "kept": len(rounds.kept()),
        "others_cores": summarize(rounds.others),
    }


def rounds_note(records):
    """A sentence on how many rounds were quiet enough to count, or `""`."""
    timed = [r for r in records if r.get("rounds")]
    if not timed:
        return ""
    total = sum(r["rounds"]["total"] for r in timed)
    clean = sum(r["rounds"]["clean"] for r in timed)
    busy = [r["name"] for r in timed if r["rounds"]["kept"] > r["rounds"]["clean"]]
    limit = timed[0]["settings"].get("max_others")
    text = (f"Shared machine: {clean} of {total} rounds ran while other processes kept at most "
            f"{limit} cores busy; only those count")
    if busy:
        return text + f", except for {', '.join(busy)} (too few quiet rounds: all count)."
    return text + "."


def paired_ratio(rounds, slow, fast):
    """`seconds[slow] / seconds[fast]` per kept round, summarized.

    Both were timed back to back in each round, so their ratio cancels slow
    phases of the machine better than a ratio of medians.
    """
    return summarize([rounds.seconds[slow][i] / rounds.seconds[fast][i] for i in rounds.kept()])


# --- the machine --------------------------------------------------------------


def available_cpus():
    """CPUs this process may run on (what TensorFlow, XLA and torch default to)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpuinfo():
    try:
        return pathlib.Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _cpuinfo_field(lines, name):
    """The first `name : value` of /proc/cpuinfo's lines, or `None`."""
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model():
    return (_cpuinfo_field(_cpuinfo().splitlines(), "model name")
            or platform.processor() or platform.machine())


def _memory_gib():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine_info():
    """The host: CPU (with its family and model, and its widest vector
    instructions: two CPUs of one name can differ there), cores, memory, OS,
    Python."""
    lines = _cpuinfo().splitlines()
    flags = (_cpuinfo_field(lines, "flags") or "").split()
    family, model = _cpuinfo_field(lines, "cpu family"), _cpuinfo_field(lines, "model")
    vector = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                           ("avx", "AVX")) if flag in flags), None)
    return {
        "cpu": cpu_model(),
        "cpu_family_model": f"family {family}, model {model}" if family and model else None,
        "vector": vector,
        "logical_cpus": os.cpu_count(),
        "available_cpus": available_cpus(),
        "memory_gib": _memory_gib(),
        "virtualized": "hypervisor" in flags,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def device_info(backend):
    """The device Keras computes on with `backend`: `{"type", "name", "count"}`.

    Imports only the backend's own library.
    """
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            name = details.get("device_name", gpus[0].name)
            return {"type": "gpu", "name": name, "count": len(gpus)}
    elif backend == "jax":
        import jax

        devices = jax.devices()
        if devices[0].platform != "cpu":
            kind = "tpu" if devices[0].platform == "tpu" else "gpu"
            return {"type": kind, "name": devices[0].device_kind, "count": len(devices)}
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            return {"type": "gpu", "name": name, "count": torch.cuda.device_count()}
    return {"type": "cpu", "name": cpu_model(), "count": 1}


def library_versions():
    """Installed versions of the libraries that matter, read without importing them."""
    versions = {}
    for names in LIBRARIES:
        for name in names:
            try:
                versions[name] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def run_context(backend, note=None):
    """What every figure of one run is recorded with."""
    context = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": backend,
        "device": device_info(backend),
        "machine": machine_info(),
        "versions": library_versions(),
    }
    env = {name: os.environ[name] for name in ENV if name in os.environ}
    if env:
        context["env"] = env
    if note:
        context["note"] = note
    return context


# --- settings -------------------------------------------------------------------


def _parse_value(key, text, default):
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"Expected true or false for {key}. Received: {key}={text!r}")
    if isinstance(default, (list, tuple)):
        return [item.strip() for item in text.split(",") if item.strip()]
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise ValueError(
                    f"Expected {kind.__name__} for {key}. Received: {key}={text!r}"
                ) from None
    return text


def apply_overrides(suite, settings, overrides):
    """Returns `settings` updated by `--set` overrides that concern `suite`.

    Args:
        suite: the suite's name.
        settings: the suite's settings dict (not modified).
        overrides: list of `"key=value"` or `"suite.key=value"` strings; a
            bare key applies to every suite that has it.

    Returns:
        `(settings, used)`: the new dict and the set of overrides it used.
    """
    settings = dict(settings)
    used = set()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"Expected --set KEY=VALUE. Received: {item!r}")
        prefix, dot, name = key.strip().rpartition(".")
        if dot and prefix != suite:
            continue
        if name not in settings:
            if dot:
                raise ValueError(
                    f"Unknown setting {name!r} of suite {suite!r}; expected one of "
                    f"{sorted(settings)}. Received: {item!r}"
                )
            continue
        settings[name] = _parse_value(name, text.strip(), settings[name])
        used.add(item)
    return settings, used


def milliseconds_per_call(fns, rounds, run_s):
    """`{name: [ms per call, one per round]}` of zero-argument functions, each called
    twice untimed first (tracing, compilation), then timed in `rounds` rounds whose
    order flips every round; a round repeats a function for at least `run_s` seconds
    (at least once) and reads its first output back to the host each call. The
    profiles (`benchmarks.beam_profile`, `benchmarks.rnn_profile`) time their pieces
    with it."""
    import keras

    for fn in fns.values():
        fn(), fn()
    times = {name: [] for name in fns}
    for index in range(rounds):
        order = list(fns.items())
        for name, fn in order if index % 2 == 0 else reversed(order):
            start, calls = time.perf_counter(), 0
            while calls == 0 or time.perf_counter() - start < run_s:
                keras.ops.convert_to_numpy(keras.tree.flatten(fn())[0])
                calls += 1
            times[name].append(1000 * (time.perf_counter() - start) / calls)
    return times

