"""Suite `rnn`: training-step throughput of the zoo's LSTM/GRU stacks.

Each configuration (cell, directions, layers) times one training step
(forward, backward, optimizer update) of `seqzoo.layers.RNNStack` inside a
compiled Keras model: as the zoo runs it by default, and with the other
loop (on a CPU, the one `loop="auto"` did not take: Keras' own layers or
the projected loop; on a GPU, `use_cudnn=False`, the zoo's loop instead of
cuDNN). When `torch` is
installed, `torch.nn.LSTM`/`GRU` with the same shapes, loss and optimizer
are timed as well, in a worker process of their own
(benchmarks/torch_worker.py; this process never imports torch), and
interleaved with the zoo round by round. Throughput is tokens per second:
`batch * length / step time`. A sweep then times chosen configurations at
other sequence lengths (at the suite's batch) and batch sizes (at its
length), for the charts of throughput against length and batch. Each
implementation's peak memory of a training step is measured after its
timing (benchmarks.memory). The Markdown report is benchmarks/rnn_report.py.
"""

from benchmarks import common, memory, torch_worker
from benchmarks.rnn_report import describe, geometric_mean_ratio, progress_line, table  # noqa: F401

TITLE = "training-step throughput of the RNN stacks"

CELLS = ("lstm", "gru")
DIRECTIONS = ("uni", "bi")
CONFIGS = [f"{c}-{d}-{n}" for c in CELLS for d in DIRECTIONS for n in (1, 2)]

_FULL = {
    "configs": CONFIGS,
    "batch": 64,
    "length": 50,
    "input": 128,
    "hidden": 256,
    "learning_rate": 0.01,
    # "auto" is what `Model.compile` does by default: XLA on JAX, not on TensorFlow.
    "jit_compile": "auto",
    "warmup": 3,
    "repeats": 15,
    # A timed run repeats the step until it lasts this long (GPU steps are ~1 ms).
    "min_run_s": 0.05,
    # Rounds in which other processes kept more than `max_others` cores busy are
    # timed again, up to `max_rounds` in all (0: 4 x repeats) or `max_seconds`
    # per configuration; see common.interleaved.
    "max_rounds": 0,
    "max_others": 0.5,
    "max_seconds": 180.0,
    "torch": "auto",
    # Also time the zoo's other loop (see _other_loop) beside its default.
    "other_loop": True,
    # `RNNStack(unroll=True)` for the zoo's stacks, both loops: the time loop
    # unrolled into `length` steps of the graph (Keras' `unroll`).
    "unroll": False,
    "threads": 0,
    "seed": 1234,
    # Sweep: these configs at each length (batch fixed) and each batch (length fixed).
    "sweep_configs": ["lstm-uni-1"],
    "sweep_lengths": [10, 25, 50, 100, 200],
    "sweep_batches": [8, 16, 32, 64, 128, 256],
    "sweep_repeats": 5,
    # Steps measured for memory per implementation (0: no memory figures).
    "memory_steps": 2,
}

SETTINGS = {
    "full": _FULL,
    "quick": dict(
        _FULL, configs=["lstm-uni-1", "lstm-bi-2", "gru-uni-1", "gru-bi-2"], batch=32, length=20,
        warmup=2, repeats=5, max_seconds=5.0, sweep_lengths=[10, 40], sweep_batches=[8, 128],
        sweep_repeats=3,
    ),
    "tiny": dict(
        _FULL, configs=["lstm-bi-2"], batch=4, length=5, input=8, hidden=8, warmup=1, repeats=2,
        # Millisecond rounds: too short to see other processes, and the figures mean nothing.
        min_run_s=0.0, max_others=1000.0, sweep_configs=["gru-uni-1"], sweep_lengths=[3, 5],
        sweep_batches=[2, 4], sweep_repeats=2, memory_steps=1,
    ),
}


def parse_config(name):
    """`"lstm-bi-2"` -> `("lstm", True, 2)`."""
    parts = name.split("-")
    if (
        len(parts) != 3
        or parts[0] not in CELLS
        or parts[1] not in DIRECTIONS
        or not parts[2].isdigit()
        or int(parts[2]) < 1
    ):
        raise ValueError(
            "Expected a config CELL-DIRECTIONS-LAYERS with CELL in "
            f"{list(CELLS)}, DIRECTIONS in {list(DIRECTIONS)}, e.g. 'lstm-bi-2'. "
            f"Received: {name!r}"
        )
    return parts[0], parts[1] == "bi", int(parts[2])


def _jit_compile(value):
    if isinstance(value, bool):
        return value
    choices = {"auto": "auto", "true": True, "false": False}
    if str(value).lower() not in choices:
        raise ValueError(
            f"Expected jit_compile auto, true or false. Received: jit_compile={value!r}"
        )
    return choices[str(value).lower()]


def check_settings(s):
    """Raises `ValueError` naming the first bad setting."""
    for key in ("batch", "length", "input", "hidden", "repeats", "sweep_repeats"):
        if not isinstance(s[key], int) or s[key] < 1:
            raise ValueError(f"Expected a positive integer. Received: {key}={s[key]!r}")
    if not isinstance(s["memory_steps"], int) or s["memory_steps"] < 0:
        raise ValueError(
            f"Expected memory_steps >= 0. Received: memory_steps={s['memory_steps']!r}"
        )
    for key in ("sweep_lengths", "sweep_batches"):
        _sizes(key, s[key])
    for key in ("other_loop", "unroll"):
        if not isinstance(s[key], bool):
            raise ValueError(f"Expected {key} true or false. Received: {key}={s[key]!r}")
    if s["torch"] not in ("auto", "on", "off"):
        raise ValueError(f"Expected torch auto, on or off. Received: torch={s['torch']!r}")
    _jit_compile(s["jit_compile"])
    for name in list(s["configs"]) + list(s["sweep_configs"]):
        parse_config(name)


def _sizes(key, values):
    """A list setting of positive integers (strings from --set are converted)."""
    try:
        sizes = [int(v) for v in values]
    except (TypeError, ValueError):
        sizes = None
    if sizes is None or any(v < 1 for v in sizes):
        raise ValueError(f"Expected positive integers. Received: {key}={values!r}")
    return sizes


def _start_torch(mode, device, threads):
    """The torch worker and its threads, or `(None, reason, None)` when the
    comparison is skipped (with `torch=on`, a missing or broken torch raises)."""
    if device == "tpu":
        return None, "no torch on TPU", None
    if mode == "off":
        return None, "torch=off", None
    if not torch_worker.available():
        if mode == "on":
            raise ValueError("torch=on, but torch is not installed (pip install -e '.[bench]')")
        return None, "torch is not installed", None
    worker = torch_worker.Worker()
    try:
        info = worker.call("info")
        if device == "gpu" and not info["cuda"]:
            worker.close()
            return None, "Keras runs on a GPU but torch has no CUDA", None
        # As many threads as the Keras backend uses (one per available CPU by default).
        count = worker.call("threads", threads=threads or common.available_cpus())["threads"]
    except torch_worker.WorkerError as error:
        worker.close()
        if mode == "on":
            raise
        return None, f"torch did not start: {error}", None
    return worker, None, count


def _keras_step(cell, bidirectional, layers, s, **stack_options):
    """A function that runs one Keras training step of the zoo's stack."""
    import keras
    import numpy as np

    from seqzoo.layers.rnn import RNNStack

    keras.utils.set_random_seed(s["seed"])
    stack = RNNStack(
        s["hidden"], num_layers=layers, cell=cell, bidirectional=bidirectional,
        unroll=s["unroll"], **stack_options
    )
    inputs = keras.Input((s["length"], s["input"]), batch_size=s["batch"])
    outputs, _ = stack(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(s["learning_rate"]),
        loss="mse",
        jit_compile=_jit_compile(s["jit_compile"]),
    )
    rng = np.random.default_rng(s["seed"])
    # Tensors made once: the step should not pay for a host-to-device copy.
    x = keras.ops.convert_to_tensor(
        rng.standard_normal((s["batch"], s["length"], s["input"]), dtype="float32")
    )
    y = keras.ops.zeros((s["batch"], s["length"], stack.output_size))
    # train_on_batch returns the loss on the host, so the step has finished.
    return lambda: model.train_on_batch(x, y)


def _other_loop(device, cell):
    """The zoo's other loop, timed beside its default: `(implementation, stack
    options, record key of the paired speedup)`. On a GPU the zoo's loop
    (`use_cudnn=False`) against cuDNN; on a CPU every layer on the loop that
    `loop="auto"` does not take for this cell's first layer (the suite's input
    is narrower than its units; `auto` may take the other loop for the layers
    above a bidirectional one), so that benchmarks see both loops."""
    if device == "gpu":
        return "seqzoo_no_cudnn", {"use_cudnn": False}, "fused_speedup"
    if device == "cpu":
        from seqzoo.layers.rnn import auto_loop

        other = "keras" if auto_loop(cell) == "projected" else "projected"
        return "seqzoo_other_loop", {"loop": other}, "loop_speedup"
    return None, None, None


def _figures(step, calls, tokens):
    return {
        "tokens_per_s": common.scale(step, tokens),
        "step_ms": {k: (v * 1e3 if k != "n" else v) for k, v in step.items()},
        "steps_per_run": calls,
    }


def _sweep_points(s):
    """(batch, length) pairs of the sweep: each length at the suite's batch, each
    batch at its length, without duplicates."""
    points = [(s["batch"], n) for n in _sizes("sweep_lengths", s["sweep_lengths"])]
    points += [(b, s["length"]) for b in _sizes("sweep_batches", s["sweep_batches"])]
    return list(dict.fromkeys(points))


def run(settings, context, log=print):
    """Runs the suite.

    Args:
        settings: one of `SETTINGS`, possibly overridden.
        context: `common.run_context(...)`, stored with every record.
        log: function of one string, for progress lines.

    Returns:
        A list of records: one per configuration, then one per sweep point
        (`kind` "sweep").
    """
    s = dict(settings)
    check_settings(s)
    backend_threads = _set_backend_threads(context["backend"], s["threads"])
    device = context["device"]["type"]
    worker, skipped, torch_threads = _start_torch(s["torch"], device, s["threads"])
    env = {
        "worker": worker, "skipped": skipped, "device": device,
        "torch_device": "cuda" if device == "gpu" else "cpu",
        "threads": {
            "available_cpus": common.available_cpus(),
            "torch": torch_threads,
            "keras_backend": backend_threads,
        },
    }
    try:
        records = [_measure(name, s, context, env, "config", log) for name in s["configs"]]
        for name in s["sweep_configs"]:
            for batch, length in _sweep_points(s):
                point = dict(s, batch=batch, length=length, repeats=s["sweep_repeats"])
                records.append(_measure(name, point, context, env, "sweep", log))
    finally:
        if worker is not None:
            worker.close()
    return records


def _torch_step(env, cell, bidirectional, layers, s, record):
    """The worker's step for this configuration, or `None` (the reason goes to
    `record`; a dead worker ends the comparison for the configurations left)."""
    worker = env["worker"]
    if worker is None:
        return None
    try:
        step = worker.call(
            "build", cell=cell, bidirectional=bidirectional, layers=layers, settings=s,
            device=env["torch_device"],
        )["step"]
    except torch_worker.WorkerError as error:
        record["torch_error"] = str(error)
        if not worker.alive():
            env["worker"], env["skipped"] = None, str(error)
        return None
    return torch_worker.RemoteStep(worker, step)


def _measure(name, s, context, env, kind, log):
    """Times one configuration at the shapes of `s`; returns its record."""
    cell, bidirectional, layers = parse_config(name)
    device = env["device"]
    record = {
        "suite": "rnn",
        "kind": kind,
        "name": name if kind == "config" else f"{name}-b{s['batch']}-l{s['length']}",
        "config": {"cell": cell, "bidirectional": bidirectional, "num_layers": layers},
        "settings": {
            k: s[k]
            for k in (
                "batch", "length", "input", "hidden", "learning_rate", "jit_compile",
                "warmup", "repeats", "min_run_s", "max_rounds", "max_others", "max_seconds",
                "memory_steps", "seed", "unroll",
            )
        }
        | {
            "optimizer": "SGD",
            "loss": "MSE against zeros of the sequence output",
            "threads": env["threads"],
            "torch_device": env["torch_device"] if env["worker"] is not None else None,
            "torch_process": "worker" if env["worker"] is not None else None,
        },
        "context": context,
        "results": {},
        "ratio": None,
    }
    other, other_options, other_key = _other_loop(device, cell)
    try:
        fns = {"seqzoo": _keras_step(cell, bidirectional, layers, s)}
        if other and s["other_loop"]:
            fns[other] = _keras_step(cell, bidirectional, layers, s, **other_options)
            record["other_loop"] = other_options
        torch = _torch_step(env, cell, bidirectional, layers, s, record)
        if torch is not None:
            fns["torch"] = torch
        rounds = common.interleaved(
            fns, s["warmup"], s["repeats"], s["min_run_s"],
            max_rounds=s["max_rounds"] or None, max_others=s["max_others"],
            max_seconds=s["max_seconds"] or None,
        )
    except Exception as error:  # noqa: BLE001 - one failing config must not lose the others
        record["error"] = f"{type(error).__name__}: {error}"
        log(f"rnn {record['name']}: FAILED {record['error']}")
        return record
    finally:
        if env["skipped"]:
            record["torch_skipped"] = env["skipped"]
    tokens = s["batch"] * s["length"]
    record["rounds"] = common.round_accounting(rounds)
    record["results"] = {
        impl: _figures(rounds.summary(impl), rounds.calls[impl], tokens) for impl in fns
    }
    if s["memory_steps"]:
        for impl, fn in fns.items():
            if impl == "torch":
                try:
                    figures = fn.memory(device, s["memory_steps"])
                except torch_worker.WorkerError as error:
                    figures = {"error": str(error)}
            else:
                figures = memory.safe_measure(fn, context["backend"], device, s["memory_steps"])
            record["results"][impl]["memory"] = figures
    if "torch" in fns:
        fns["torch"].free()
        paired = common.paired_ratio(rounds, "torch", "seqzoo")
        zoo, ref = (record["results"][k]["tokens_per_s"] for k in ("seqzoo", "torch"))
        record["ratio"] = {
            "median": paired["median"],
            "min": paired["min"],
            "max": paired["max"],
            "of_medians": zoo["median"] / ref["median"],
            # The fastest run of each: the least touched by other processes.
            "of_best": zoo["max"] / ref["max"],
        }
    if other in fns:
        # The default loop against the other one (cuDNN against the zoo's loop on a
        # GPU; the projected loop against Keras' on a CPU), paired per round.
        record[other_key] = common.paired_ratio(rounds, other, "seqzoo")
    log(progress_line(record))
    return record


def _set_backend_threads(backend, threads):
    """Sets the Keras backend's CPU threads (0: its default); returns what it uses."""
    cpus = common.available_cpus()
    if backend == "tensorflow":
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError:
                raise ValueError(
                    "TensorFlow has already started, so its threads are fixed; run the "
                    f"benchmark in a fresh process. Received: threads={threads}"
                ) from None
        # 0 means TensorFlow's default: one thread per available CPU.
        return {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads() or cpus,
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or cpus,
        }
    if backend == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        return {"intra_op": torch.get_num_threads()}
    if threads:
        raise ValueError(
            f"Setting threads is supported on tensorflow and torch, not {backend} "
            f"(XLA uses every available CPU). Received: threads={threads}"
        )
    # XLA's CPU client runs on every available CPU.
    return {"xla": cpus}
