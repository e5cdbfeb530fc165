"""Suite `seq2seq`: teacher-forced training throughput of the attention presets.

Target tokens per second of one teacher-forced training step (forward,
backward, Adam update) of the fused decoder (`seq2seq_luong`, no input
feeding) against stepwise decoders with input feeding
(`seq2seq_luong_feed`, `seq2seq_bahdanau`), interleaved in the same
process; the ratio is fused / input feeding. Each preset's peak memory of a
training step is measured after the timing (benchmarks.memory). Decoding
is suite `decode`, which shares this module's model and data helpers.
"""

import numpy as np

from benchmarks import common, memory

TITLE = "attention seq2seq: teacher-forced training throughput"

TRAIN = ["seq2seq_luong", "seq2seq_luong_feed", "seq2seq_bahdanau"]
# What a record keeps of the settings, where the suite has them.
_RECORDED = ("batch", "source_length", "target_length", "vocab", "embedding_dim", "units",
             "warmup", "repeats", "min_run_s", "max_others", "max_seconds", "memory_steps",
             "seed")

_FULL = {
    "train": TRAIN,
    "batch": 64,
    "source_length": 20,
    "target_length": 20,
    "vocab": 1000,
    "embedding_dim": 64,
    "units": 128,
    "warmup": 2,
    "repeats": 7,
    "min_run_s": 0.05,
    "max_others": 0.5,
    "max_seconds": 120.0,
    # Steps measured for memory per preset (0: no memory figures).
    "memory_steps": 2,
    "seed": 1234,
}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, batch=32, source_length=10, target_length=10, units=64,
                  embedding_dim=32, repeats=3, max_seconds=8.0),
    "tiny": dict(_FULL, train=["seq2seq_luong", "seq2seq_luong_feed"], batch=4,
                 source_length=4, target_length=4, vocab=20, units=8, embedding_dim=8, warmup=1,
                 repeats=2, min_run_s=0.0, max_others=1000.0, memory_steps=1),
}


def check_settings(s):
    """Raises `ValueError` naming the first bad setting."""
    if not s["train"]:
        raise ValueError("seq2seq: expected at least one preset in train")
    for name in s["train"]:
        if name not in TRAIN:
            raise ValueError(f"seq2seq: unknown preset {name!r}; expected some of {TRAIN}")
    if int(s["memory_steps"]) < 0:
        raise ValueError(f"seq2seq: memory_steps must be >= 0. Received: {s['memory_steps']!r}")


def model(preset, s):
    """A compiled, untrained model of `preset` with the shapes of settings `s`."""
    import keras

    import seqzoo

    keras.utils.set_random_seed(s["seed"])
    built = seqzoo.create(preset, source_vocab_size=s["vocab"], target_vocab_size=s["vocab"],
                          units=s["units"], embedding_dim=s["embedding_dim"])
    built.compile()
    return built


def data(s, batch):
    """Random `(source, target)` id arrays, ids from 4 up (no special tokens)."""
    rng = np.random.default_rng(s["seed"])
    source = rng.integers(4, s["vocab"], size=(batch, s["source_length"])).astype("int32")
    target = rng.integers(4, s["vocab"], size=(batch, s["target_length"])).astype("int32")
    return source, target


def _train_fn(built, s):
    from seqzoo.data import decoder_io

    source, target = data(s, s["batch"])
    dec_in, dec_out = decoder_io([list(t) for t in target])
    x = {"source_ids": source, "decoder_input_ids": dec_in}
    return lambda: built.train_on_batch(x, dec_out)


def record(suite, kind, name, s, context, rounds, unit, per_call):
    """A record of `rounds`: `unit` (e.g. "sequences_per_s") = per_call[impl] / seconds."""
    out = {
        "suite": suite, "name": name, "kind": kind, "context": context,
        "settings": {k: s[k] for k in _RECORDED if k in s},
        "results": {}, "ratio": None,
    }
    out["rounds"] = common.round_accounting(rounds)
    for impl in rounds.seconds:
        summary = rounds.summary(impl)
        out["results"][impl] = {unit: common.scale(summary, per_call[impl]),
                                "call_ms": {k: (v * 1e3 if k != "n" else v)
                                            for k, v in summary.items()}}
    return out


def run(settings, context, log=print):
    """Runs the suite; returns one record holding every preset."""
    s = dict(settings)
    check_settings(s)
    fns = {preset: _train_fn(model(preset, s), s) for preset in s["train"]}
    rounds = common.interleaved(fns, s["warmup"], s["repeats"], s["min_run_s"],
                                max_others=s["max_others"], max_seconds=s["max_seconds"])
    tokens = s["batch"] * (s["target_length"] + 1)
    out = record("seq2seq", "train", "train", s, context, rounds, "target_tokens_per_s",
                 {n: tokens for n in fns})
    if int(s["memory_steps"]):
        for preset, fn in fns.items():
            out["results"][preset]["memory"] = memory.safe_measure(
                fn, context["backend"], context["device"]["type"], int(s["memory_steps"]))
    if "seq2seq_luong" in fns and "seq2seq_luong_feed" in fns:
        out["ratio"] = {"fused_over_input_feeding": common.paired_ratio(
            rounds, "seq2seq_luong_feed", "seq2seq_luong")}
    log("seq2seq train: " + ", ".join(
        f"{n} {common.format_rate(r['target_tokens_per_s']['median'])} tok/s"
        + (f" (peak {memory.format_mib(r['memory'])} MiB)" if "memory" in r else "")
        for n, r in out["results"].items()))
    return [out]


def describe(rows):
    s = rows[0]["settings"]
    return (f"Models: bidirectional LSTM encoder, {s['units']} units, embeddings "
            f"{s['embedding_dim']}, vocabulary {s['vocab']}, source length "
            f"{s['source_length']}, target length {s['target_length']}. One training step: "
            f"batch {s['batch']}, Adam, teacher forcing; target tokens = batch x "
            "(target length + 1). Median of clean interleaved rounds (min-max in brackets). "
            + common.rounds_note(rows) + " " + memory.note(rows)).rstrip()


def cell(figures):
    """`"median (min-max)"` of a rate summary."""
    return (f"{common.format_rate(figures['median'])} "
            f"({common.format_rate(figures['min'])}-{common.format_rate(figures['max'])})")


def table(rows):
    lines = []
    for row in rows:
        if row.get("kind") == "decode":  # written by an earlier version of this suite
            continue
        lines.append("| preset | target tokens/s | peak MiB (+step) |\n| --- | --- | --- |")
        for name, r in row["results"].items():
            lines.append(f"| {name} | {cell(r['target_tokens_per_s'])} | "
                         f"{memory.format_mib(r.get('memory'))} |")
        if row.get("ratio"):
            ratio = row["ratio"]["fused_over_input_feeding"]
            lines.append(f"\nFused decoder / input feeding (paired per round): "
                         f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})")
    return "\n".join(lines)
