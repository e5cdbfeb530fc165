"""PNG charts of benchmark records (matplotlib, Agg backend).

`write_plots(out_dir, records)` draws what the records hold and skips the
rest: a suite without records, or without matplotlib, draws nothing.
"""

import pathlib

SOFTMAX_PNG = "softmax_vs_vocab.png"
RNN_PNG = "rnn_throughput.png"
RNN_LENGTH_PNG = "rnn_vs_length.png"
RNN_BATCH_PNG = "rnn_vs_batch.png"
DECODE_PNG = "decode.png"
SEQ2SEQ_PNG = "seq2seq_training.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ok(records, suite):
    return [r for r in records
            if r.get("suite") == suite and not r.get("error") and r.get("results")]


def _median(figures, unit):
    try:
        return float(figures[unit]["median"])
    except (KeyError, TypeError, ValueError):
        return None


def _title(records, text):
    context = records[0].get("context", {})
    backend = context.get("backend")
    device = context.get("device", {}).get("name")
    extra = ", ".join(str(v) for v in (backend, device) if v)
    return f"{text}\n({extra})" if extra else text


def _save(fig, path):
    from seqzoo.io import atomic_write

    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=100, format="png")
    return path


def _softmax(plt, records, out):
    rows = sorted(_ok(records, "softmax"), key=lambda r: r["vocab"])
    if not rows:
        return None
    vocabs = [r["vocab"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for impl, marker in (("full", "o"), ("sampled", "s")):
        values = [_median(r["results"].get(impl, {}), "tokens_per_s") for r in rows]
        points = [(v, y) for v, y in zip(vocabs, values) if y is not None]
        if points:
            label = impl if impl == "full" else f"sampled ({rows[0]['settings']['num_sampled']})"
            ax.plot(*zip(*points), marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("vocabulary size")
    ax.set_ylabel("tokens/s (training step)")
    ax.set_title(_title(rows, "Output layer: full vs sampled softmax"))
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    path = _save(fig, out / SOFTMAX_PNG)
    plt.close(fig)
    return path


def _bars(plt, ax, labels, series, unit_label):
    """Grouped bars: `series` is a list of (name, values) with None for missing."""
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel(unit_label)
    ax.grid(True, axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend()


def _rnn(plt, records, out):
    rows = [r for r in _ok(records, "rnn") if r.get("kind", "config") == "config"]
    if not rows:
        return None
    impls = [i for i in ("seqzoo", "seqzoo_no_cudnn", "seqzoo_other_loop", "torch")
             if any(i in r["results"] for r in rows)]
    series = [(impl, [_median(r["results"].get(impl, {}), "tokens_per_s") for r in rows])
              for impl in impls]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 4))
    _bars(plt, ax, [r["name"] for r in rows], series, "tokens/s (training step)")
    ax.set_title(_title(rows, "RNN stacks: training throughput"))
    path = _save(fig, out / RNN_PNG)
    plt.close(fig)
    return path


def _sweep(plt, records, out, axis):
    """Throughput against `axis` ("length" or "batch"), the other fixed, per config."""
    other = "batch" if axis == "length" else "length"
    rows = [r for r in _ok(records, "rnn") if r.get("kind") == "sweep"]
    if not rows:
        return None
    # The sweep varies one axis at the suite's value of the other: the most common one.
    values = [r["settings"][other] for r in rows]
    fixed = max(set(values), key=values.count)
    rows = sorted((r for r in rows if r["settings"][other] == fixed),
                  key=lambda r: r["settings"][axis])
    if len({r["settings"][axis] for r in rows}) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for config in dict.fromkeys(r["name"].rsplit("-b", 1)[0] for r in rows):
        mine = [r for r in rows if r["name"].rsplit("-b", 1)[0] == config]
        for impl, marker in (("seqzoo", "o"), ("seqzoo_no_cudnn", "^"), ("seqzoo_other_loop", "v"),
                             ("torch", "s")):
            # Median with the [min, max] of the counted rounds as error bars.
            points = [(r["settings"][axis], r["results"][impl]["tokens_per_s"])
                      for r in mine if impl in r["results"]]
            if points:
                xs = [x for x, _ in points]
                ys = [rate["median"] for _, rate in points]
                spread = [[y - rate["min"] for y, (_, rate) in zip(ys, points)],
                          [rate["max"] - y for y, (_, rate) in zip(ys, points)]]
                ax.errorbar(xs, ys, yerr=spread, marker=marker, capsize=3,
                            label=f"{config} {impl}")
    sizes = sorted({r["settings"][axis] for r in rows})
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(x) for x in sizes])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("sequence length" if axis == "length" else "batch size")
    ax.set_ylabel("tokens/s (training step)")
    ax.set_title(_title(rows, f"RNN training throughput against {axis} ({other} {fixed})"))
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    path = _save(fig, out / (RNN_LENGTH_PNG if axis == "length" else RNN_BATCH_PNG))
    plt.close(fig)
    return path


def _rnn_vs_length(plt, records, out):
    return _sweep(plt, records, out, "length")


def _rnn_vs_batch(plt, records, out):
    return _sweep(plt, records, out, "batch")


def _decode(plt, records, out):
    rows = _ok(records, "decode")
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows) + 1, 4), squeeze=False)
    for ax, row in zip(axes[0], rows):
        names = list(row["results"])
        title = f"batch {row['settings'].get('decode_batch', '?')}"
        _bars(plt, ax, names, [(title, [_median(row["results"][n], "sequences_per_s")
                                        for n in names])], "sequences/s")
        ax.set_title(title)
    fig.suptitle(_title(rows, "attention seq2seq: decoding"))
    path = _save(fig, out / DECODE_PNG)
    plt.close(fig)
    return path


def _seq2seq(plt, records, out):
    rows = [r for r in _ok(records, "seq2seq") if r.get("kind") == "train"]
    if not rows:
        return None
    row = rows[-1]
    names = list(row["results"])
    fig, ax = plt.subplots(figsize=(5, 4))
    _bars(plt, ax, names, [("train", [_median(row["results"][n], "target_tokens_per_s")
                                      for n in names])], "target tokens/s")
    ax.set_title(_title(rows, "attention seq2seq: teacher-forced training"))
    path = _save(fig, out / SEQ2SEQ_PNG)
    plt.close(fig)
    return path


def write_plots(out_dir, records):
    """Writes a PNG per suite present in `records` into `out_dir`.

    Returns:
        The list of paths written (empty when there is nothing to draw or
        matplotlib is not installed).
    """
    try:
        plt = _pyplot()
    except ImportError:
        return []
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for draw in (_softmax, _rnn, _rnn_vs_length, _rnn_vs_batch, _decode, _seq2seq):
        path = draw(plt, records, out)
        if path is not None:
            written.append(path)
    return written
