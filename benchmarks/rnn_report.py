"""The Markdown report of suite `rnn` (benchmarks/rnn.py): settings, tables, progress lines."""

import math

from benchmarks import common, memory

# The zoo's second loop in a record (benchmarks/rnn.py OTHER_LOOP): implementation,
# column name, record key of its paired speedup, speedup column.
OTHER_LOOPS = (
    ("seqzoo_no_cudnn", "seqzoo use_cudnn=False", "fused_speedup", "cuDNN/zoo loop"),
    ("seqzoo_other_loop", "seqzoo other loop", "loop_speedup", "default/other loop"),
)


def _configs(records):
    return [r for r in records if r.get("kind", "config") == "config"]


def _sweeps(records):
    return [r for r in records if r.get("kind") == "sweep"]


def progress_line(record):
    """One line per measured configuration, printed as the suite goes."""
    res = record["results"]
    parts = [
        f"{impl} {common.format_rate(r['tokens_per_s']['median'])} tok/s"
        for impl, r in res.items()
    ]
    if record["ratio"]:
        parts.append(f"ratio {record['ratio']['median']:.2f}")
    for _, _, key, label in OTHER_LOOPS:
        if record.get(key):
            parts.append(f"{label} {record[key]['median']:.2f}x")
    mem = [f"{impl} {memory.format_mib(r.get('memory'))}" for impl, r in res.items()
           if r.get("memory", {}).get("peak_bytes")]
    if mem:
        parts.append("peak MiB (+step) " + ", ".join(mem))
    return f"rnn {record['name']}: " + ", ".join(parts)


def describe(records):
    """The settings paragraph of the Markdown report."""
    configs = _configs(records) or records
    s = configs[0]["settings"]
    threads = s["threads"]
    torch_note = next((r["torch_skipped"] for r in records if r.get("torch_skipped")), None)
    lines = [
        f"One training step (forward, backward, SGD update; loss: {s['loss']}) of "
        f"batch {s['batch']}, length {s['length']}, input {s['input']}, hidden {s['hidden']} "
        "per direction. Tokens/s = batch x length / step time: median over the timed rounds "
        f"(up to {s['repeats']} counted, after {s['warmup']} untimed warm-up step(s)), [min-max] "
        "in brackets. "
        "seqzoo: `RNNStack"
        + ("(unroll=True)" if s.get("unroll") else "")
        + "` in a `keras.Model`, `compile(jit_compile="
        f"{s['jit_compile']!r})`, `train_on_batch`. torch: `torch.nn.LSTM`/`GRU` "
        "(batch_first), `loss.item()` each step, in a worker process of its own "
        "(benchmarks/torch_worker.py), which times its steps itself. The implementations "
        "alternate round by round; ratio = seqzoo / torch tokens/s, median of the per-round "
        "ratios [min-max]; ratio of best runs = fastest seqzoo run / fastest torch run, the "
        "figure least touched by other processes on a shared machine.",
        f"Threads: torch {threads['torch']}, Keras backend "
        + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in threads["keras_backend"].items())
        + f"; {threads['available_cpus']} CPUs available.",
    ]
    if any("seqzoo_no_cudnn" in r["results"] for r in records):
        lines.append(
            "use_cudnn=False: the same stack on the zoo's own loop instead of cuDNN; "
            "cuDNN/zoo loop = its step time / the default (cuDNN) step time, paired per round."
        )
    if any("seqzoo_other_loop" in r["results"] for r in records):
        lines.append(
            "other loop: the same stack on the loop `loop='auto'` did not take (on a CPU, "
            "`loop='projected'` - the input projection of all steps before the loop, "
            "seqzoo/layers/recurrence.py - where the default is Keras' own LSTM/GRU loop, "
            "and `loop='keras'` where the default is the projected loop; each row's "
            "`other_loop` in results.json); default/other loop = its step time / the "
            "default's, paired per round (above 1: the default is faster)."
        )
    if torch_note:
        lines.append(f"No torch comparison: {torch_note}.")
    failed = [f"{r['name']} ({r['torch_error']})" for r in records if r.get("torch_error")]
    if failed:
        lines.append("torch failed on " + "; ".join(failed) + ".")
    mean = geometric_mean_ratio(_configs(records))
    if mean is not None:
        lines.append(f"Geometric mean of the ratios (rows marked * left out): {mean:.2f}.")
    timed = [r for r in records if r.get("rounds")]
    if timed:
        total = sum(r["rounds"]["total"] for r in timed)
        clean = sum(r["rounds"]["clean"] for r in timed)
        busy = [r["name"] for r in timed if _contended(r)]
        lines.append(
            f"Shared machine: {clean} of {total} rounds ran while other processes kept at most "
            f"{s['max_others']} cores busy; only those count"
            + (
                f", except for {', '.join(busy)} (too few clean rounds: all count, marked *)."
                if busy
                else "."
            )
        )
    note = memory.note(records)
    if note:
        lines.append(note)
    return "\n\n".join(lines)


def _cell(figures):
    if figures is None:
        return "-"
    tps = figures["tokens_per_s"]
    return (
        f"{common.format_rate(tps['median'])} "
        f"[{common.format_rate(tps['min'])}-{common.format_rate(tps['max'])}]"
    )


def _row_figures(r, head_extra, impls):
    """The cells after the configuration's own: rates, ratios, memory."""
    if r.get("error"):
        return ["failed: " + r["error"].replace("|", "/")[:120]] + ["-"] * (head_extra - 1)
    res = r["results"]
    row = [_cell(res.get(impl)) for impl in impls]
    ratio = r["ratio"]
    row += (
        ["-", "-"]
        if ratio is None
        else [f"{ratio['median']:.2f} [{ratio['min']:.2f}-{ratio['max']:.2f}]",
              f"{ratio['of_best']:.2f}"]
    )
    for impl, _, key, _ in OTHER_LOOPS:
        if impl in impls:
            speedup = r.get(key)
            row.append(f"{speedup['median']:.2f}" if speedup else "-")
    row += [memory.format_mib(res.get(impl, {}).get("memory")) for impl in impls]
    return row


def _head(records):
    impls = ["seqzoo"]
    names = {"seqzoo": "seqzoo", "torch": "torch"}
    for impl, name, _, _ in OTHER_LOOPS:
        names[impl] = name
        if any(impl in r["results"] for r in records):
            impls.append(impl)
    impls.append("torch")
    head = [f"{names[i]} tokens/s" for i in impls] + ["ratio", "ratio of best runs"]
    head += [label for impl, _, _, label in OTHER_LOOPS if impl in impls]
    head += [f"{names[i]} peak MiB (+step)" for i in impls]
    return impls, head


def table(records):
    """The Markdown tables of the records: one row per configuration, then the sweep."""
    parts = []
    configs = _configs(records)
    if configs:
        impls, extra = _head(configs)
        head = ["cell", "directions", "layers"] + extra
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in configs:
            c = r["config"]
            row = [c["cell"].upper(), "bi" if c["bidirectional"] else "uni", str(c["num_layers"])]
            if _contended(r):
                row[-1] += " *"
            rows.append("| " + " | ".join(row + _row_figures(r, len(extra), impls)) + " |")
        parts.append("\n".join(rows))
    sweeps = _sweeps(records)
    if sweeps:
        impls, extra = _head(sweeps)
        head = ["config", "batch", "length"] + extra
        rows = [
            "Sweep: throughput against sequence length (at the suite's batch) and batch "
            "size (at its length); fewer rounds per point.\n",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for r in sweeps:
            config = r["name"].rsplit("-b", 1)[0]
            row = [config, str(r["settings"]["batch"]), str(r["settings"]["length"])]
            if _contended(r):
                row[-1] += " *"
            rows.append("| " + " | ".join(row + _row_figures(r, len(extra), impls)) + " |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def _contended(record):
    rounds = record.get("rounds")
    return bool(rounds) and rounds["kept"] > rounds["clean"]


def geometric_mean_ratio(records):
    """Geometric mean of the ratios of rows timed on a quiet machine, or `None`."""
    ratios = [r["ratio"]["median"] for r in records if r.get("ratio") and not _contended(r)]
    if not ratios:
        return None
    return math.exp(sum(math.log(x) for x in ratios) / len(ratios))
