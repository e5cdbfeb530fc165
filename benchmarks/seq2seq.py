"""Suite `seq2seq`: decoding and teacher-forced training throughput of Seq2Seq.

Decoding: sequences per second of `Seq2Seq.search` (compiled greedy search,
and beam search of widths 1, 4 and 8) at batch 1 and 64. The model is
untrained and its `</s>` logit is pushed to -1e9, so every hypothesis runs
exactly `target_length` steps: a fixed, worst-case amount of work.

Training: target tokens per second of one teacher-forced training step
(forward, backward, Adam update) of the attention presets, fused decoder
(`seq2seq_luong`, no input feeding) against stepwise decoders with input
feeding (`seq2seq_luong_feed`, `seq2seq_bahdanau`), interleaved in the
same process; the ratio is fused / input feeding.
"""

import numpy as np

from benchmarks import common

TITLE = "attention seq2seq: decoding and teacher-forced training throughput"

DECODE = ["greedy", "beam1", "beam4", "beam8"]
TRAIN = ["seq2seq_luong", "seq2seq_luong_feed", "seq2seq_bahdanau"]

_FULL = {
    "decode": DECODE,
    "decode_batches": [1, 64],
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
    "seed": 1234,
}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, decode=["greedy", "beam4"], decode_batches=[1, 16], batch=32,
                  source_length=10, target_length=10, units=64, embedding_dim=32, repeats=3,
                  max_seconds=8.0),
    "tiny": dict(_FULL, decode=["greedy", "beam4"], decode_batches=[2],
                 train=["seq2seq_luong", "seq2seq_luong_feed"], batch=4, source_length=4,
                 target_length=4, vocab=20, units=8, embedding_dim=8, warmup=1, repeats=2,
                 min_run_s=0.0, max_others=1000.0),
}


def check_settings(s):
    for name in s["decode"]:
        if name != "greedy" and not (name.startswith("beam") and name[4:].isdigit()):
            raise ValueError(f"seq2seq: unknown decoder {name!r}; expected greedy or beamK")
    for name in s["train"]:
        if name not in TRAIN:
            raise ValueError(f"seq2seq: unknown preset {name!r}; expected some of {TRAIN}")


def _model(preset, s):
    import keras

    import seqzoo

    keras.utils.set_random_seed(s["seed"])
    model = seqzoo.create(preset, source_vocab_size=s["vocab"], target_vocab_size=s["vocab"],
                          units=s["units"], embedding_dim=s["embedding_dim"])
    model.compile()
    return model


def _data(s, batch):
    rng = np.random.default_rng(s["seed"])
    source = rng.integers(4, s["vocab"], size=(batch, s["source_length"])).astype("int32")
    target = rng.integers(4, s["vocab"], size=(batch, s["target_length"])).astype("int32")
    return source, target


def _decode_fn(model, s, name, batch):
    from seqzoo.text.specials import EOS_ID

    bias = model._parts["head"].bias
    values = bias.numpy() if hasattr(bias, "numpy") else np.asarray(bias)
    values = np.array(values)
    values[EOS_ID] = -1e9  # never stop early: a fixed amount of work
    bias.assign(values)
    source, _ = _data(s, batch)
    if name == "greedy":
        kwargs = {"method": "greedy"}
    else:
        kwargs = {"method": "beam", "beam_size": int(name[4:])}
    return lambda: model.search(source, max_length=s["target_length"], **kwargs)


def _train_fn(model, s):
    from seqzoo.data import decoder_io

    source, target = _data(s, s["batch"])
    dec_in, dec_out = decoder_io([list(t) for t in target])
    x = {"source_ids": source, "decoder_input_ids": dec_in}
    return lambda: model.train_on_batch(x, dec_out)


def _record(name, kind, s, context, rounds, unit, per_call):
    record = {
        "suite": "seq2seq", "name": name, "kind": kind, "context": context,
        "settings": {k: s[k] for k in ("batch", "source_length", "target_length", "vocab",
                                        "embedding_dim", "units", "warmup", "repeats",
                                        "min_run_s", "max_others", "seed")},
        "results": {}, "ratio": None,
    }
    record["rounds"] = common.round_accounting(rounds)
    for impl in rounds.seconds:
        summary = rounds.summary(impl)
        record["results"][impl] = {unit: common.scale(summary, per_call[impl]),
                                   "call_ms": {k: (v * 1e3 if k != "n" else v)
                                               for k, v in summary.items()}}
    return record


def run(settings, context, log=print):
    s = dict(settings)
    check_settings(s)
    records = []
    model = _model("seq2seq_luong", s)
    for batch in s["decode_batches"]:
        fns = {name: _decode_fn(model, s, name, batch) for name in s["decode"]}
        rounds = common.interleaved(fns, s["warmup"], s["repeats"], s["min_run_s"],
                                    max_others=s["max_others"], max_seconds=s["max_seconds"])
        record = _record(f"decode-batch{batch}", "decode", s, context, rounds,
                            "sequences_per_s", {n: batch for n in fns})
        record["settings"]["decode_batch"] = batch
        log("seq2seq decode batch %d: %s" % (batch, ", ".join(
            f"{n} {common.format_rate(r['sequences_per_s']['median'])} seq/s"
            for n, r in record["results"].items())))
        records.append(record)
    fns = {preset: _train_fn(_model(preset, s), s) for preset in s["train"]}
    rounds = common.interleaved(fns, s["warmup"], s["repeats"], s["min_run_s"],
                                max_others=s["max_others"], max_seconds=s["max_seconds"])
    tokens = s["batch"] * (s["target_length"] + 1)
    record = _record("train", "train", s, context, rounds, "target_tokens_per_s",
                           {n: tokens for n in fns})
    if "seq2seq_luong" in fns and "seq2seq_luong_feed" in fns:
        record["ratio"] = {"fused_over_input_feeding": common.paired_ratio(
            rounds, "seq2seq_luong_feed", "seq2seq_luong")}
    log("seq2seq train: " + ", ".join(
        f"{n} {common.format_rate(r['target_tokens_per_s']['median'])} tok/s"
        for n, r in record["results"].items()))
    records.append(record)
    return records


def describe(rows):
    s = rows[0]["settings"]
    return (f"Model: bidirectional LSTM encoder, {s['units']} units, embeddings "
            f"{s['embedding_dim']}, vocabulary {s['vocab']}, source length "
            f"{s['source_length']}, target length {s['target_length']}. Decoding never stops "
            "early (</s> disabled), so every sequence takes target_length steps. Training: "
            f"batch {s['batch']}, Adam, teacher forcing. Median of clean interleaved rounds "
            "(min-max in brackets).")


def _cell(figures):
    return (f"{common.format_rate(figures['median'])} "
            f"({common.format_rate(figures['min'])}-{common.format_rate(figures['max'])})")


def table(rows):
    lines = []
    for row in rows:
        if row["kind"] == "decode":
            lines.append(f"\nDecoding, batch {row['settings']['decode_batch']} (sequences/s):\n")
            lines.append("| decoder | sequences/s |\n| --- | --- |")
            for name, r in row["results"].items():
                lines.append(f"| {name} | {_cell(r['sequences_per_s'])} |")
        else:
            lines.append("\nTeacher-forced training (target tokens/s):\n")
            lines.append("| preset | target tokens/s |\n| --- | --- |")
            for name, r in row["results"].items():
                lines.append(f"| {name} | {_cell(r['target_tokens_per_s'])} |")
            if row.get("ratio"):
                ratio = row["ratio"]["fused_over_input_feeding"]
                lines.append(f"\nFused decoder / input feeding (paired per round): "
                             f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})")
    return "\n".join(lines)
