"""PNG charts of benchmark records (matplotlib, Agg backend).

`write_plots(out_dir, records)` draws what the records hold and skips the
rest: a suite without records, or without matplotlib, draws nothing.
"""

import pathlib

SOFTMAX_PNG = "softmax_vs_vocab.png"
RNN_PNG = "rnn_throughput.png"
SEQ2SEQ_PNG = "seq2seq_decoding.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ok(records, suite):
    return [r for r in records if r.get("suite") == suite and not r.get("error") and r.get("results")]


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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
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
    rows = _ok(records, "rnn")
    if not rows:
        return None
    impls = [i for i in ("seqzoo", "seqzoo_no_cudnn", "torch") if any(i in r["results"] for r in rows)]
    series = [(impl, [_median(r["results"].get(impl, {}), "tokens_per_s") for r in rows])
              for impl in impls]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 4))
    _bars(plt, ax, [r["name"] for r in rows], series, "tokens/s (training step)")
    ax.set_title(_title(rows, "RNN stacks: training throughput"))
    path = _save(fig, out / RNN_PNG)
    plt.close(fig)
    return path


def _seq2seq(plt, records, out):
    rows = _ok(records, "seq2seq")
    panels = []
    for row in rows:
        if row.get("kind") == "decode":
            panels.append((f"decoding, batch {row['settings'].get('decode_batch', '?')}",
                           row, "sequences_per_s", "sequences/s"))
        elif row.get("kind") == "train":
            panels.append(("teacher-forced training", row, "target_tokens_per_s",
                           "target tokens/s"))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels) + 1, 4), squeeze=False)
    for ax, (title, row, unit, unit_label) in zip(axes[0], panels):
        names = list(row["results"])
        _bars(plt, ax, names, [(title, [_median(row["results"][n], unit) for n in names])],
              unit_label)
        ax.set_title(title)
    fig.suptitle(_title(rows, "attention seq2seq"))
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
    for draw in (_softmax, _rnn, _seq2seq):
        path = draw(plt, records, out)
        if path is not None:
            written.append(path)
    return written
