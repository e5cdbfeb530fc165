"""The PyTorch reference of the `rnn` suite, timed in a process of its own.

`python -m benchmarks rnn` never imports torch: it starts
`python -m benchmarks.torch_worker`, which imports torch and nothing of
Keras, and asks it over a pipe to build a step, time it and measure its
memory. So the two libraries' thread pools never share a process, and a
torch build whose import crashes next to TensorFlow (the CUDA wheels load
`triton`, which segfaults in a process that has imported TensorFlow 2.21)
costs the comparison, not the run.

The protocol is one JSON object per line each way: the parent writes
`{"op": ..., ...}` to the worker's standard input; the worker answers
`{"ok": true, ...}` or `{"ok": false, "error": "..."}` on its standard
output (what libraries print goes to its standard error).
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

from benchmarks import memory

MODULE = "benchmarks.torch_worker"


class WorkerError(RuntimeError):
    """The worker answered with an error, or died."""


def available():
    """Whether torch is installed (looked up without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


class Worker:
    """A running worker process; `close()` (or `with`) ends it."""

    def __init__(self, command=None):
        self.command = command or [sys.executable, "-m", MODULE]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            encoding="utf-8", env=env,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def pid(self):
        return self._process.pid

    def call(self, op, **arguments):
        """Sends one request; returns the answer's fields, or raises `WorkerError`."""
        if self._process.poll() is not None:
            raise WorkerError(self._death())
        try:
            self._process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self._process.wait()
            raise WorkerError(self._death())
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise WorkerError(answer["error"])
        return answer

    def _death(self):
        code = self._process.returncode
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with status {code}"
        return f"the torch worker ({' '.join(self.command)}) {how}"

    def alive(self):
        return self._process.poll() is None

    def cpu_seconds(self):
        """User and system CPU time the worker has used (Linux /proc; else 0)."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # Fields 14 and 15 of stat (utime, stime); [0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self):
        if self._process.poll() is None:
            try:
                self._process.stdin.close()
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()


class RemoteStep:
    """One torch training step in the worker, callable like a local step.

    `seconds_per_call(calls)` lets the worker time `calls` steps itself, so
    the figure holds no pipe round trips; `common.interleaved` uses it.
    """

    def __init__(self, worker, step_id):
        self.worker = worker
        self.step_id = step_id

    def __call__(self):
        return self.worker.call("run", step=self.step_id, calls=1)["loss"]

    def seconds_per_call(self, calls):
        return self.worker.call("run", step=self.step_id, calls=calls)["seconds"]

    def free(self):
        """Drops the step (its model and tensors) in the worker."""
        if self.worker.alive():
            self.worker.call("free", step=self.step_id)

    def memory(self, device, steps):
        return self.worker.call("memory", step=self.step_id, device=device, steps=steps)["memory"]


# --- the worker's side ----------------------------------------------------------


def _torch_step(torch, cell, bidirectional, layers, s, device):
    """A function that runs one PyTorch training step of the suite's shapes:
    `torch.nn.LSTM`/`GRU`, MSE against zeros, SGD."""
    torch.manual_seed(s["seed"])
    kind = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    rnn = kind(
        s["input"], s["hidden"], num_layers=layers, bidirectional=bidirectional, batch_first=True
    ).to(device)
    optimizer = torch.optim.SGD(rnn.parameters(), lr=s["learning_rate"])
    out_size = s["hidden"] * (2 if bidirectional else 1)
    x = torch.randn(s["batch"], s["length"], s["input"], device=device)
    y = torch.zeros(s["batch"], s["length"], out_size, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        outputs, _ = rnn(x)
        loss = torch.nn.functional.mse_loss(outputs, y)
        loss.backward()
        optimizer.step()
        # The loss to the host, as train_on_batch does: the step has finished.
        return loss.item()

    return step


def _serve(read, write):
    import torch

    steps = {}

    def handle(request):
        op = request["op"]
        if op == "info":
            return {"version": torch.__version__, "cuda": torch.cuda.is_available(),
                    "threads": torch.get_num_threads()}
        if op == "threads":
            if request["threads"]:
                torch.set_num_threads(request["threads"])
            return {"threads": torch.get_num_threads()}
        if op == "build":
            step_id = len(steps)
            steps[step_id] = _torch_step(
                torch, request["cell"], request["bidirectional"], request["layers"],
                request["settings"], request["device"],
            )
            return {"step": step_id}
        if op == "run":
            fn, calls = steps[request["step"]], request["calls"]
            start = time.perf_counter()
            for _ in range(calls):
                loss = fn()
            return {"seconds": (time.perf_counter() - start) / calls, "loss": loss}
        if op == "memory":
            return {"memory": memory.safe_measure(
                steps[request["step"]], "torch", request["device"], request["steps"])}
        if op == "free":
            steps.pop(request["step"], None)
            return {}
        raise ValueError(f"unknown request {op!r}")

    for line in read:
        try:
            answer = {"ok": True, **handle(json.loads(line))}
        except Exception as error:  # noqa: BLE001 - reported to the parent, which decides
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        write.write(json.dumps(answer) + "\n")
        write.flush()


def main():
    # The protocol owns the real standard output; anything printed goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _serve(sys.stdin, protocol)
    except ImportError as error:
        protocol.write(json.dumps({"ok": False, "error": f"ImportError: {error}"}) + "\n")
        protocol.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
