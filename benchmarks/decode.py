"""Suite `decode`: greedy and beam-search decoding throughput of an attention Seq2Seq.

Sequences per second of `Seq2Seq.search` (compiled greedy search, and beam
search of widths 1, 4 and 8) at batch 1 and 64, all decoders of one batch
size timed in interleaved rounds. The model (preset `seq2seq_luong`, shapes
shared with suite `seq2seq`) is untrained and its `</s>` logit is pushed to
-1e9, so every hypothesis runs exactly `target_length` steps: a fixed,
worst-case amount of work.

On TensorFlow a decoder name ending in `-xla` (`greedy-xla`, `beam4-xla`)
times the same search compiled by XLA (`search_jit_compile`, on a copy of
the model with the same weights), side by side with the plain graph.
"""

import numpy as np

from benchmarks import common
from benchmarks import seq2seq as shared

TITLE = "attention seq2seq: greedy and beam-search decoding throughput"

DECODERS = ["greedy", "beam1", "beam4", "beam8"]

_FULL = {
    "decoders": DECODERS,
    "decode_batches": [1, 64],
    "preset": "seq2seq_luong",
    "source_length": 20,
    "target_length": 20,
    "vocab": 1000,
    "embedding_dim": 64,
    "units": 128,
    "warmup": 2,
    "repeats": 7,
    "min_run_s": 0.05,
    "max_others": 0.5,
    # Per batch size; see common.interleaved.
    "max_seconds": 120.0,
    "seed": 1234,
}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, decoders=["greedy", "beam4"], decode_batches=[1, 16], source_length=10,
                  target_length=10, units=64, embedding_dim=32, repeats=3, max_seconds=8.0),
    "tiny": dict(_FULL, decoders=["greedy", "beam4"], decode_batches=[2], source_length=4,
                 target_length=4, vocab=20, units=8, embedding_dim=8, warmup=1, repeats=2,
                 min_run_s=0.0, max_others=1000.0),
}


def _batches(s):
    try:
        batches = [int(b) for b in s["decode_batches"]]
    except (TypeError, ValueError):
        batches = None
    if not batches or any(b < 1 for b in batches):
        raise ValueError(
            "decode: expected positive batch sizes. "
            f"Received: decode_batches={s['decode_batches']!r}"
        )
    return batches


def _search_kwargs(name):
    if name.endswith("-xla"):
        import keras  # here: the runner picks the backend before Keras loads

        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"decode: {name} is a TensorFlow choice (JAX always compiles "
                             "with XLA); expected greedy or beamK on this backend")
        name = name[:-len("-xla")]
    if name == "greedy":
        return {"method": "greedy"}
    if name.startswith("beam") and name[4:].isdigit() and int(name[4:]) >= 1:
        # As `translate` and `seqzoo predict` search when no alignments are asked for.
        return {"method": "beam", "beam_size": int(name[4:]), "alignments": False}
    raise ValueError(f"decode: unknown decoder {name!r}; expected greedy or beamK, e.g. beam4 "
                     "(on TensorFlow also with -xla, e.g. beam4-xla)")


def check_settings(s):
    """Raises `ValueError` naming the first bad setting."""
    if not s["decoders"]:
        raise ValueError("decode: expected at least one decoder in decoders")
    for name in s["decoders"]:
        _search_kwargs(name)
    _batches(s)
    if s["preset"] not in shared.TRAIN:
        raise ValueError(f"decode: unknown preset {s['preset']!r}; expected one of {shared.TRAIN}")


def _never_stop(model):
    """Pushes the `</s>` logit to -1e9 so that decoding always runs max_length steps."""
    from seqzoo.text.specials import EOS_ID

    bias = model.parts["head"].bias
    values = np.array(bias.numpy() if hasattr(bias, "numpy") else np.asarray(bias))
    values[EOS_ID] = -1e9
    bias.assign(values)


def _decode_fn(models, s, name, batch):
    source, _ = shared.data(s, batch)
    kwargs = _search_kwargs(name)
    model = models["xla" if name.endswith("-xla") else "plain"]
    return lambda: model.search(source, max_length=s["target_length"], **kwargs)


def _xla_copy(model, s):
    """The same model (same weights) whose searches compile with XLA."""
    copy = shared.model(s["preset"], s)
    copy.set_weights(model.get_weights())
    copy.search_jit_compile = True
    return copy


def run(settings, context, log=print):
    """Runs the suite; returns one record per batch size."""
    s = dict(settings)
    check_settings(s)
    models = {"plain": shared.model(s["preset"], s)}
    _never_stop(models["plain"])
    if any(name.endswith("-xla") for name in s["decoders"]):
        models["xla"] = _xla_copy(models["plain"], s)
    records = []
    for batch in _batches(s):
        fns = {name: _decode_fn(models, s, name, batch) for name in s["decoders"]}
        rounds = common.interleaved(fns, s["warmup"], s["repeats"], s["min_run_s"],
                                    max_others=s["max_others"], max_seconds=s["max_seconds"])
        record = shared.record("decode", "decode", f"batch-{batch}", s, context, rounds,
                               "sequences_per_s", {n: batch for n in fns})
        record["settings"] |= {"decode_batch": batch, "preset": s["preset"]}
        log(f"decode batch {batch}: " + ", ".join(
            f"{n} {common.format_rate(r['sequences_per_s']['median'])} seq/s"
            for n, r in record["results"].items()))
        records.append(record)
    return records


def describe(rows):
    s = rows[0]["settings"]
    return (f"Model: `{s.get('preset', 'seq2seq_luong')}` (bidirectional LSTM encoder, "
            f"{s['units']} units, embeddings {s['embedding_dim']}, vocabulary {s['vocab']}), "
            f"untrained; source length {s['source_length']}, {s['target_length']} target steps. "
            "Decoding never stops early (</s> disabled), so every sequence takes target_length "
            "steps. `Seq2Seq.search`: greedy, or beam search of width K (beamK, without "
            "alignments); `-xla`: compiled by XLA (`search_jit_compile`). Sequences/s, "
            "median of clean interleaved rounds (min-max in brackets). "
            + common.rounds_note(rows)).rstrip()


def table(rows):
    decoders = list(dict.fromkeys(n for row in rows for n in row["results"]))
    batches = [row["settings"]["decode_batch"] for row in rows]
    lines = ["| decoder | " + " | ".join(f"batch {b}, sequences/s" for b in batches) + " |",
             "| --- |" + " --- |" * len(batches)]
    for name in decoders:
        cells = [shared.cell(row["results"][name]["sequences_per_s"])
                 if name in row["results"] else "-" for row in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
