"""Peak memory of a step: the generic measurement, and the process-RSS probe of a CPU."""

import pathlib

import pytest

from benchmarks import memory

MIB = 2**20


class FakeAllocator:
    """An allocator whose high-water mark may or may not be resettable."""

    def __init__(self, in_use, peak):
        self.in_use, self.high = in_use, peak

    def allocate(self, n):
        self.in_use += n
        self.high = max(self.high, self.in_use)
        self.in_use -= n

    def probe(self, resettable):
        def reset():
            self.high = self.in_use

        return memory.Probe("fake", "gpu", lambda: self.in_use, lambda: self.high,
                            reset=reset if resettable else None)


def test_resettable_peak_is_the_step_peak():
    alloc = FakeAllocator(in_use=100, peak=10_000)  # an earlier step peaked far higher
    figures = memory.measure(lambda: alloc.allocate(30), alloc.probe(resettable=True), steps=2)
    assert figures["peak_bytes"] == 130 and figures["step_bytes"] == 30
    assert figures["exact"] and figures["steps"] == 2 and figures["source"] == "fake"


def test_unresettable_peak_is_an_upper_bound_unless_the_step_raised_it():
    alloc = FakeAllocator(in_use=100, peak=10_000)
    figures = memory.measure(lambda: alloc.allocate(30), alloc.probe(resettable=False))
    assert figures["peak_bytes"] == 10_000 and not figures["exact"]
    assert memory.format_mib(figures).startswith("<=")

    alloc = FakeAllocator(in_use=100, peak=100)
    figures = memory.measure(lambda: alloc.allocate(50), alloc.probe(resettable=False), steps=1)
    assert figures["peak_bytes"] == 150 and figures["step_bytes"] == 50 and figures["exact"]


@pytest.mark.skipif(not pathlib.Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_rss_probe_sees_a_step_that_touches_64_mib():
    def step():
        block = b"\x01" * (64 * MIB)  # written: every page is resident
        return len(block)

    figures = memory.measure(step, memory.probe_for("jax", "cpu"), steps=2)
    assert figures["device"] == "cpu" and "RSS" in figures["source"]
    assert 60 * MIB <= figures["step_bytes"] <= figures["peak_bytes"]
    quiet = memory.measure(lambda: None, memory.probe_for("torch", "cpu"), steps=2)
    assert quiet["step_bytes"] < 16 * MIB


def test_a_failing_probe_is_recorded_not_raised(monkeypatch):
    def broken(library, device_type):
        raise RuntimeError("no stats")

    monkeypatch.setattr(memory, "probe_for", broken)
    assert memory.safe_measure(lambda: None, "jax", "gpu") == {"error": "RuntimeError: no stats"}
    assert memory.format_mib({"error": "x"}) == "-"
    with pytest.raises(ValueError, match="steps=0"):
        memory.measure(lambda: None, memory.rss_probe(), steps=0)
