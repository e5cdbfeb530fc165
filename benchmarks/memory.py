"""Peak memory of one training step, from the device when it can tell, else process RSS.

On a GPU each library reports its own allocator's high-water mark:
`torch.cuda.max_memory_allocated` (reset before the step),
`tf.config.experimental.get_memory_info(...)["peak"]` (reset before the
step) and JAX's `device.memory_stats()["peak_bytes_in_use"]`, which cannot
be reset: it is the step's own peak only when the step raised it, and the
record says so (`exact`). On a CPU the figure is the process's resident
memory: Linux's `VmHWM` is reset before the step (`/proc/self/clear_refs`),
so it is the process's peak during the step; `step_bytes` is how far that
peak rose above the resident memory just before the step. Allocators that
keep freed memory (TensorFlow's, glibc's heap) make `step_bytes` smaller than
the step's working set, and the process peak includes every library and
model loaded; read CPU figures as rough.

Nothing here imports a backend at module level.
"""

import re
import resource
import sys

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


class Probe:
    """How to read one allocator's memory: `reset()`, `current()`, `peak()` in bytes.

    Attributes:
        source: what the figures are, for the record.
        device: `"gpu"` or `"cpu"`.
        resettable: whether `reset()` really starts a new high-water mark.
    """

    def __init__(self, source, device, current, peak, reset=None, sync=None):
        self.source = source
        self.device = device
        self.resettable = reset is not None
        self._current, self._peak = current, peak
        self._reset = reset or (lambda: None)
        self._sync = sync or (lambda: None)

    def reset(self):
        self._sync()
        self._reset()

    def current(self):
        self._sync()
        return int(self._current())

    def peak(self):
        self._sync()
        return int(self._peak())


def _status_kib(field):
    with open(_STATUS, encoding="ascii") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"{field} not found in {_STATUS}")
    return int(match.group(1)) * 1024


def _clear_peak_rss():
    with open(_CLEAR_REFS, "w", encoding="ascii") as f:
        f.write("5")  # 5: reset the peak resident set size (Linux >= 4.0)


def _max_rss():
    """Peak RSS of the process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def rss_probe():
    """The process's resident memory; a resettable peak where Linux allows it."""
    try:
        _status_kib("VmHWM")
        _clear_peak_rss()
    except OSError:
        return Probe(
            "process peak RSS (ru_maxrss, not resettable)", "cpu",
            current=lambda: _max_rss(), peak=_max_rss,
        )
    return Probe(
        "process RSS (VmHWM reset before the step)", "cpu",
        current=lambda: _status_kib("VmRSS"), peak=lambda: _status_kib("VmHWM"),
        reset=_clear_peak_rss,
    )


def _torch_probe():
    import torch

    return Probe(
        "torch.cuda.max_memory_allocated", "gpu",
        current=torch.cuda.memory_allocated, peak=torch.cuda.max_memory_allocated,
        reset=torch.cuda.reset_peak_memory_stats, sync=torch.cuda.synchronize,
    )


def _tensorflow_probe():
    import tensorflow as tf

    device = "GPU:0"
    return Probe(
        "tf.config.experimental.get_memory_info('GPU:0')['peak']", "gpu",
        current=lambda: tf.config.experimental.get_memory_info(device)["current"],
        peak=lambda: tf.config.experimental.get_memory_info(device)["peak"],
        reset=lambda: tf.config.experimental.reset_memory_stats(device),
    )


def _jax_probe():
    import jax

    device = jax.devices()[0]
    if device.memory_stats() is None:
        return None
    return Probe(
        "jax device.memory_stats()['peak_bytes_in_use'] (not resettable)", "gpu",
        current=lambda: device.memory_stats()["bytes_in_use"],
        peak=lambda: device.memory_stats()["peak_bytes_in_use"],
    )


def probe_for(library, device_type):
    """The probe for steps that `library` ("tensorflow", "jax", "torch") runs.

    Args:
        library: the library that allocates the step's memory (the Keras
            backend, or "torch" for the plain-PyTorch reference).
        device_type: "gpu" or "cpu", where the step runs.
    """
    if device_type == "gpu":
        make = {"torch": _torch_probe, "tensorflow": _tensorflow_probe, "jax": _jax_probe}.get(
            library
        )
        probe = make() if make else None
        if probe is not None:
            return probe
    return rss_probe()


def measure(fn, probe, steps=3):
    """Peak memory while `fn` runs, the largest over `steps` calls.

    Args:
        fn: one training step; it must block until the step is done.
        probe: a `Probe`.
        steps: how many times to call `fn` (each measured on its own).

    Returns:
        A dict: `peak_bytes` (the allocator's or process's peak during a
        step), `step_bytes` (how far that rose above the memory in use just
        before it), `source`, `device`, `steps` and `exact` (False when the
        peak could not be reset and no step raised it, so `peak_bytes` is
        the earlier high-water mark: an upper bound).
    """
    if steps < 1:
        raise ValueError(f"Expected steps >= 1. Received: steps={steps!r}")
    peaks, rises, exact = [], [], True
    for _ in range(steps):
        probe.reset()
        before_peak = probe.peak()
        before = probe.current()
        fn()
        peak = probe.peak()
        if not probe.resettable and peak <= before_peak:
            exact = False
        peaks.append(peak)
        rises.append(max(0, peak - before))
    return {
        "peak_bytes": max(peaks),
        "step_bytes": max(rises),
        "source": probe.source,
        "device": probe.device,
        "steps": steps,
        "exact": exact,
    }


def safe_measure(fn, library, device_type, steps=3):
    """`measure` with the probe for `library`; a failure is recorded, not raised."""
    try:
        return measure(fn, probe_for(library, device_type), steps)
    except Exception as error:  # noqa: BLE001 - memory is an extra, never lose the timing
        return {"error": f"{type(error).__name__}: {error}"}


def format_mib(memory):
    """`"1,234 (+56)"`: peak and step rise in MiB; `<=` marks an upper bound, `-` none."""
    if not memory or "peak_bytes" not in memory:
        return "-"
    mark = "" if memory.get("exact", True) else "<="
    return f"{mark}{memory['peak_bytes'] / 2**20:,.0f} (+{memory['step_bytes'] / 2**20:,.0f})"


def note(records):
    """A sentence on how the memory figures of `records` were taken, or `""`."""
    sources = {
        figures["memory"]["source"]
        for record in records
        for figures in record.get("results", {}).values()
        if "source" in figures.get("memory", {})
    }
    if not sources:
        return ""
    text = (
        "Memory: peak MiB during one training step (+ how far it rose above the memory in "
        "use just before the step), the largest over the measured steps; source: "
        + "; ".join(sorted(sources))
        + "."
    )
    if any("RSS" in source for source in sources):
        text += (
            " On a CPU that is the whole process (every library and model loaded), and "
            "allocators that keep freed memory make the rise smaller than the step's working "
            "set: rough figures."
        )
    if any(not f["memory"].get("exact", True) for r in records
           for f in r.get("results", {}).values() if "memory" in f):
        text += " `<=` marks a peak that could not be reset (an upper bound)."
    return text
