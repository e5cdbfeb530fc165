"""Suite `embeddings`: reading pre-trained vectors for a vocabulary, time and peak memory.

A GloVe-format text file of `words` random vectors of `dim` values (5
decimals, as GloVe's files) is generated once into a temporary folder, with a
vocabulary of `vocab` words: `found` share of them in the file (some only in
another case), the rest missing. Each loader then builds the
`[vocab, dim]` matrix in a process of its own (a fresh interpreter, so that
one loader's memory is not the other's), `repeats` times, alternating:

- `seqzoo`: `seqzoo.text.load_embeddings(path, vocabulary)`, which streams
  the file and keeps only the vocabulary's rows;
- `gensim` (when installed): `KeyedVectors.load_word2vec_format(path,
  no_header=True)`, the usual recipe, then the matrix from its rows
  (lowercase fallback included).

Figures: the call's wall time (median of the repeats, min-max) and its peak
memory: the process' peak resident set size during the call minus its size
before it (after the imports), the largest over the repeats.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import common

TITLE = "pre-trained embeddings: reading a vocabulary's vectors (seqzoo vs gensim)"
LOADERS = ("seqzoo", "gensim")

_FULL = {"words": 400_000, "dim": 300, "vocab": 20_000, "found": 0.9, "repeats": 3,
         "loaders": "seqzoo,gensim", "seed": 0}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, words=50_000, dim=100, vocab=5_000, repeats=2),
    "tiny": dict(_FULL, words=2_000, dim=20, vocab=200, repeats=1),
}

# Run in a fresh interpreter: argv = loader, vectors file, vocabulary file.
_CHILD = r"""
import json, re, sys, time
loader, path, vocab_path = sys.argv[1:4]
tokens = open(vocab_path, encoding="utf-8").read().split("\n")

def status(field):
    text = open("/proc/self/status", encoding="ascii").read()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024

if loader == "seqzoo":
    from seqzoo.text import load_embeddings
    def load():
        loaded = load_embeddings(path, tokens, format="glove")
        return loaded.matrix, loaded.report["found"] + loaded.report["found_by_case"]
else:
    import numpy as np
    from gensim.models import KeyedVectors
    def load():
        vectors = KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
        matrix = np.zeros((len(tokens), vectors.vector_size), np.float32)
        found = 0
        for i, token in enumerate(tokens[4:], start=4):
            for key in (token, token.lower()):
                if key in vectors.key_to_index:
                    matrix[i] = vectors[key]
                    found += 1
                    break
        return matrix, found

before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
start = time.perf_counter()
matrix, found = load()
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "peak_bytes": peak - before, "rss_before": before,
                  "found": found, "shape": list(matrix.shape)}))
"""


def _loaders(s):
    names = [n for n in str(s["loaders"]).split(",") if n]
    bad = [n for n in names if n not in LOADERS]
    if bad or not names:
        raise ValueError(f"embeddings: loaders must be some of {list(LOADERS)}. "
                         f"Received: loaders={s['loaders']!r}")
    return names


def check_settings(s):
    _loaders(s)
    for key in ("words", "dim", "vocab", "repeats"):
        if int(s[key]) < 1:
            raise ValueError(f"embeddings: {key} must be positive. Received: {key}={s[key]!r}")
    if not 0 < float(s["found"]) <= 1:
        raise ValueError(f"embeddings: found must be in (0, 1]. Received: found={s['found']!r}")
    if int(s["vocab"]) * float(s["found"]) > int(s["words"]):
        raise ValueError("embeddings: the vocabulary's found words must fit in the file")


def make_files(directory, s):
    """Writes `vectors.txt` (GloVe format) and `vocab.txt`; returns their paths and sizes."""
    rng = np.random.default_rng(int(s["seed"]))
    words, dim = int(s["words"]), int(s["dim"])
    pool = [f"{x:.5f}" for x in rng.normal(0, 0.4, 4096)]
    path = os.path.join(directory, "vectors.txt")
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, words, 1000):
            picks = rng.integers(0, len(pool), (min(1000, words - start), dim))
            f.write("".join(f"w{start + i} " + " ".join(pool[j] for j in row) + "\n"
                            for i, row in enumerate(picks)))
    vocab, found = int(s["vocab"]), int(int(s["vocab"]) * float(s["found"]))
    chosen = rng.choice(words, found, replace=False)
    # One in ten found words asked in capitals: found through the lowercase fallback.
    tokens = [f"W{i}" if k % 10 == 0 else f"w{i}" for k, i in enumerate(chosen)]
    tokens += [f"missing{i}" for i in range(vocab - found)]
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab_path = os.path.join(directory, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(specials + tokens))
    return path, vocab_path, found


def _available(loader):
    if loader == "gensim":
        import importlib.util

        return importlib.util.find_spec("gensim") is not None
    return True


def _load_once(loader, path, vocab_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", _CHILD, loader, path, vocab_path],
                            cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"{loader} failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(settings, context, log=print):
    """Runs the suite; returns one record."""
    s = dict(settings)
    check_settings(s)
    loaders = _loaders(s)
    record = {"suite": "embeddings", "name": f"{s['words']}x{s['dim']}",
              "settings": {k: s[k] for k in ("words", "dim", "vocab", "found", "repeats",
                                             "seed")},
              "context": context, "results": {}, "unavailable": []}
    with tempfile.TemporaryDirectory(prefix="seqzoo-embeddings-") as directory:
        start = time.perf_counter()
        path, vocab_path, expected = make_files(directory, s)
        record["file"] = {"bytes": os.path.getsize(path), "format": "glove",
                          "generated_s": round(time.perf_counter() - start, 1)}
        log(f"embeddings: generated {path} ({record['file']['bytes'] / 2**20:,.0f} MiB)")
        runs = {name: [] for name in loaders if _available(name)}
        record["unavailable"] = [name for name in loaders if name not in runs]
        for _ in range(int(s["repeats"])):
            for name in runs:
                runs[name].append(_load_once(name, path, vocab_path))
    for name, results in runs.items():
        found = {r["found"] for r in results}
        if found != {expected}:
            raise RuntimeError(f"embeddings: {name} found {found} words; expected {expected}")
        record["results"][name] = {
            "seconds": common.summarize([r["seconds"] for r in results]),
            "peak_mib": max(r["peak_bytes"] for r in results) / 2**20,
            "rss_before_mib": results[0]["rss_before"] / 2**20,
            "found": expected,
        }
        log(f"embeddings {name}: {record['results'][name]['seconds']['median']:.2f} s, "
            f"peak +{record['results'][name]['peak_mib']:,.0f} MiB")
    if {"seqzoo", "gensim"} <= set(runs):
        z, g = (record["results"][k] for k in ("seqzoo", "gensim"))
        record["ratio"] = {"time_gensim_over_seqzoo": g["seconds"]["median"]
                           / z["seconds"]["median"],
                           "memory_gensim_over_seqzoo": g["peak_mib"] / max(z["peak_mib"], 1e-9)}
    return [record]


def describe(rows):
    s, f = rows[0]["settings"], rows[0]["file"]
    return (f"A generated GloVe-format text file of {s['words']:,} vectors x {s['dim']} values "
            f"({f['bytes'] / 2**20:,.0f} MiB); a vocabulary of {s['vocab']:,} words, "
            f"{s['found']:.0%} of them in the file (one in ten of those in capitals, found "
            "through the lowercase fallback). Each loader builds the [vocabulary, dim] matrix "
            "in a fresh process; time: median (min-max) of "
            f"{s['repeats']} alternating runs; memory: the peak resident set size during the "
            "call minus the size before it, the largest over the runs. gensim: "
            "KeyedVectors.load_word2vec_format(no_header=True), then the matrix."
            + (f" Not installed: {', '.join(rows[0]['unavailable'])}."
               if rows[0]["unavailable"] else ""))


def table(rows):
    lines = ["| loader | seconds | peak memory added (MiB) | words found |",
             "| --- | --- | --- | --- |"]
    for row in rows:
        for name, r in row["results"].items():
            t = r["seconds"]
            lines.append(f"| {name} | {t['median']:.2f} ({t['min']:.2f}-{t['max']:.2f}) | "
                         f"{r['peak_mib']:,.1f} | {r['found']:,} |")
        if row.get("ratio"):
            lines.append(f"\ngensim / seqzoo: {row['ratio']['time_gensim_over_seqzoo']:.1f}x "
                         f"the time, {row['ratio']['memory_gensim_over_seqzoo']:.1f}x the "
                         "memory.")
    return "\n".join(lines)
