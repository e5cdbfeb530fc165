"""Suite `softmax`: training-step throughput of full vs sampled softmax.

One step is the forward pass, the backward pass and an SGD update of the
weights of a `SampledSoftmax` output layer (its `[V, H]` kernel and `[V]`
bias), from fixed hidden states `[B, T, H]` and labels `[B, T]`, compiled
by `Model.compile` (jit_compile "auto": XLA on JAX, not on TensorFlow).
The full step computes the exact softmax cross-entropy over all `V`
classes (`compute_loss(training=False)`); the sampled step the sampled
softmax loss with `num_sampled` candidates (`training=True`). Both models
have the same shapes and are timed in interleaved rounds in one process;
the ratio is the sampled speedup, full step time / sampled step time,
paired per round. Each step's peak memory is measured after the timing
(benchmarks.memory).
"""

import numpy as np

from benchmarks import common, memory

TITLE = "output layer training step: full softmax vs sampled softmax"

IMPLS = ("full", "sampled")

_FULL = {
    "vocabs": [10_000, 50_000, 100_000],
    "hidden": 512,
    "batch": 64,
    "length": 20,
    "num_sampled": 512,
    "learning_rate": 0.1,
    "warmup": 2,
    "repeats": 7,
    "min_run_s": 0.05,
    "max_others": 0.5,
    # Per vocabulary size; see common.interleaved.
    "max_seconds": 60.0,
    # Steps measured for memory per implementation (0: no memory figures).
    "memory_steps": 2,
    "seed": 1234,
}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, vocabs=[10_000, 50_000], batch=16, repeats=3, max_seconds=10.0),
    "tiny": dict(
        _FULL, vocabs=[200, 500], hidden=8, batch=2, length=3, num_sampled=16, warmup=1,
        repeats=2, min_run_s=0.0, max_others=1000.0, memory_steps=1,
    ),
}


def _vocabs(s):
    try:
        vocabs = [int(v) for v in s["vocabs"]]
    except (TypeError, ValueError):
        raise ValueError(
            f"softmax: vocabs must be integers. Received: vocabs={s['vocabs']!r}"
        ) from None
    return vocabs


def check_settings(s):
    vocabs = _vocabs(s)
    if not vocabs:
        raise ValueError("softmax: expected at least one vocabulary size in vocabs")
    if int(s["memory_steps"]) < 0:
        raise ValueError(f"softmax: memory_steps must be >= 0. Received: {s['memory_steps']!r}")
    for key in ("hidden", "batch", "length", "num_sampled", "repeats"):
        if int(s[key]) < 1:
            raise ValueError(f"softmax: {key} must be positive. Received: {key}={s[key]!r}")
    for vocab in vocabs:
        if not s["num_sampled"] < vocab:
            raise ValueError(
                f"softmax: num_sampled must be smaller than every vocabulary size. "
                f"Received: num_sampled={s['num_sampled']}, vocabs={vocabs}"
            )


def _model(vocab, sampled, s):
    """A compiled Keras model whose training step is one step of the output layer."""
    import keras

    from seqzoo.losses.sampled_softmax import SampledSoftmax

    class OutputLayerStep(keras.Model):
        """Passes the hidden states through; the loss is the head's own."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.head = SampledSoftmax(vocab, num_sampled=s["num_sampled"], seed=s["seed"])
            self.sampled = sampled

        def build(self, input_shape):
            self.head.build(input_shape)
            self.built = True

        def call(self, inputs, training=None):
            return inputs

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return self.head.compute_loss(y_pred, y, training=self.sampled)

    keras.utils.set_random_seed(s["seed"])
    model = OutputLayerStep(name=f"softmax_{'sampled' if sampled else 'full'}_{vocab}")
    model.build((s["batch"], s["length"], s["hidden"]))
    model.compile(optimizer=keras.optimizers.SGD(s["learning_rate"]))
    return model


def _step(vocab, sampled, s):
    import keras

    model = _model(vocab, sampled, s)
    rng = np.random.default_rng(s["seed"])
    # Tensors made once: the step should not pay for a host-to-device copy.
    hidden = keras.ops.convert_to_tensor(
        rng.standard_normal((s["batch"], s["length"], s["hidden"]), dtype="float32")
    )
    # Ids from 4 up: never padding (id 0) nor another special token.
    labels = keras.ops.convert_to_tensor(
        rng.integers(4, vocab, size=(s["batch"], s["length"])).astype("int32")
    )
    # train_on_batch returns the loss on the host, so the step has finished.
    return lambda: model.train_on_batch(hidden, labels)


def _figures(summary, calls, tokens):
    return {
        "tokens_per_s": common.scale(summary, tokens),
        "step_ms": {k: (v * 1e3 if k != "n" else v) for k, v in summary.items()},
        "steps_per_run": calls,
    }


def run(settings, context, log=print):
    """Runs the suite; returns one record per vocabulary size."""
    s = dict(settings)
    check_settings(s)
    tokens = s["batch"] * s["length"]
    records = []
    for vocab in _vocabs(s):
        record = {
            "suite": "softmax",
            "name": f"vocab-{vocab}",
            "vocab": vocab,
            "settings": {
                k: s[k]
                for k in ("hidden", "batch", "length", "num_sampled", "learning_rate", "warmup",
                          "repeats", "min_run_s", "max_others", "max_seconds", "memory_steps",
                          "seed")
            } | {"optimizer": "SGD", "sampler": "log_uniform"},
            "context": context,
            "results": {},
            "ratio": None,
        }
        try:
            fns = {impl: _step(vocab, impl == "sampled", s) for impl in IMPLS}
            rounds = common.interleaved(
                fns, s["warmup"], s["repeats"], s["min_run_s"], max_others=s["max_others"],
                max_seconds=s["max_seconds"] or None,
            )
        except Exception as error:  # noqa: BLE001 - one failing size must not lose the others
            record["error"] = f"{type(error).__name__}: {error}"
            log(f"softmax vocab {vocab}: FAILED {record['error']}")
            records.append(record)
            continue
        record["rounds"] = common.round_accounting(rounds)
        record["results"] = {
            impl: _figures(rounds.summary(impl), rounds.calls[impl], tokens) for impl in fns
        }
        if int(s["memory_steps"]):
            for impl, fn in fns.items():
                record["results"][impl]["memory"] = memory.safe_measure(
                    fn, context["backend"], context["device"]["type"], int(s["memory_steps"]))
        paired = common.paired_ratio(rounds, "full", "sampled")
        full, sampled = (record["results"][k]["tokens_per_s"] for k in IMPLS)
        record["ratio"] = {
            "median": paired["median"],
            "min": paired["min"],
            "max": paired["max"],
            "of_medians": sampled["median"] / full["median"],
        }
        log(
            f"softmax vocab {vocab}: full {common.format_rate(full['median'])} tok/s, "
            f"sampled {common.format_rate(sampled['median'])} tok/s, "
            f"speedup {record['ratio']['median']:.2f}x"
        )
        records.append(record)
    return records


def describe(rows):
    s = rows[0]["settings"]
    return (
        f"One training step of the output layer alone (forward, backward, {s['optimizer']} "
        f"update of its [V, {s['hidden']}] kernel and bias) from fixed hidden states, batch "
        f"{s['batch']} x {s['length']} tokens. Full: exact softmax cross-entropy over all V "
        f"classes. Sampled: sampled softmax with {s['num_sampled']} {s['sampler']} candidates "
        "per batch. Tokens per second, median of clean interleaved rounds (min-max in "
        "brackets); speedup = full step time / sampled step time, paired per round. "
        + common.rounds_note(rows).replace("(too few quiet rounds: all count)",
                                           "(too few quiet rounds: all count, marked *)")
        + " " + memory.note(rows)
    ).rstrip()


def _cell(figures):
    return (f"{common.format_rate(figures['median'])} "
            f"({common.format_rate(figures['min'])}-{common.format_rate(figures['max'])})")


def table(rows):
    lines = [
        "| vocabulary | full tokens/s | sampled tokens/s | speedup (sampled vs full) "
        "| full peak MiB (+step) | sampled peak MiB (+step) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['vocab']:,} | failed: {row['error']} | | | | |")
            continue
        res, ratio = row["results"], row["ratio"]
        rounds = row.get("rounds") or {}
        mark = " *" if rounds.get("kept", 0) > rounds.get("clean", 0) else ""
        lines.append(
            f"| {row['vocab']:,}{mark} | {_cell(res['full']['tokens_per_s'])} | "
            f"{_cell(res['sampled']['tokens_per_s'])} | "
            f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f}) | "
            f"{memory.format_mib(res['full'].get('memory'))} | "
            f"{memory.format_mib(res['sampled'].get('memory'))} |"
        )
    return "\n".join(lines)
