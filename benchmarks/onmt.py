"""Suite `onmt`: the zoo against OpenNMT-py 3.5.1, one G2P model trained and decoded by each.

Both toolkits train the same architecture on the same CMUdict training pairs
(letters -> phones, space-separated tokens, the G2P recipe's split): a
2-layer bidirectional LSTM encoder of `hidden / 2` units per direction, a
2-layer LSTM decoder of `hidden` units, Luong's general attention, dropout
0.2, embeddings of `embedding`, batches of 64 pairs, Adam at 1e-3, gradient
norm clipped at 5, the encoder's final states handed to the decoder as they
are. OpenNMT-py (input feeding, its default) against two zoo models:
`seq2seq_luong_feed` (input feeding, the same model) and `seq2seq_luong` (the
fused decoder: one LSTM over the whole target, attention after it).

Each system runs through its own command line in a process of its own,
alternating round by round (`rounds`), for the same number of training steps
(`epochs` passes over the pairs):

- training: target tokens per second (EOS included, as OpenNMT-py counts
  them) once warm: OpenNMT-py's own reports after the first, the zoo's
  epochs after the first (`run.json`);
- decoding the dev words, greedy and beam search (`beams`), batch 64: words
  per second of the translation itself, timed in the process, a first pass
  (for the zoo, it traces and compiles) and a second (OpenNMT-py: its
  inference engine, built once as `onmt_translate` builds it, reading the
  file; the zoo: `Seq2Seq.translate` of all words with `batch_size=64`,
  its search compiled by XLA on TensorFlow with `jit_compile=true`); both
  decode the words in batches ordered by length and write them back in
  the file's order (OpenNMT-py sorts each bucket of 16,384 examples);
- the peak resident memory of each process.

OpenNMT-py runs in a side environment (it pins torch < 2.3 and would pull
CUDA wheels): `benchmarks/onmt_env.sh` makes one in `.onmt-venv/`; the
setting `onmt_python` (or `SEQZOO_ONMT_PYTHON`) names another. Without one,
the suite times the zoo only and says why.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks import common

TITLE = "G2P seq2seq: seqzoo against OpenNMT-py (training tokens/s, decoding words/s, memory)"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = {"seqzoo_feed": "seq2seq_luong_feed", "seqzoo_fused": "seq2seq_luong"}

_FULL = {
    "pairs": 6400, "dev_words": 1000, "embedding": 128, "hidden": 256, "layers": 2,
    "dropout": 0.2, "batch": 64, "learning_rate": 0.001, "epochs": 3, "rounds": 2,
    "beams": [1, 5], "onmt_python": "", "seed": 1234, "jit_compile": False,
    "systems": ["opennmt", "seqzoo_feed", "seqzoo_fused"],
}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, pairs=1600, dev_words=200, epochs=2, rounds=1),
    "tiny": dict(_FULL, pairs=64, dev_words=16, embedding=8, hidden=16, epochs=2, rounds=1,
                 beams=[1, 2], batch=16),
}

# Runs a command and prints its exit status and the peak resident memory (KiB) of
# the processes it waited for, as the last line of its output.
_MEASURE = r"""
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
print(json.dumps({"returncode": code,
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""

# The zoo's decoding, timed in its process: argv = run folder, dev source, beam, batch,
# XLA (1 or 0).
_ZOO_DECODE = r"""
import json, sys, time
import seqzoo
run, source, beam, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
words = open(source, encoding="utf-8").read().split("\n")[:-1]
model = seqzoo.load(run)
model.search_jit_compile = sys.argv[5] == "1"
times = []
for _ in range(2):
    start = time.perf_counter()
    model.translate(words, beam_size=beam, batch_size=batch)
    times.append(time.perf_counter() - start)
print(json.dumps({"first_s": times[0], "seconds": times[1], "xla": model.search_jit_compile}))
"""

# OpenNMT-py's decoding, timed in its process as the zoo's (two passes, the
# engine built once, as `onmt_translate` builds it); argv: onmt_translate's options.
_ONMT_DECODE = r"""
import json, sys, time
from onmt.bin.translate import _get_parser
from onmt.inference_engine import InferenceEnginePY
from onmt.utils.misc import set_random_seed, use_gpu
from onmt.utils.parse import ArgumentParser
opt = _get_parser().parse_args(sys.argv[1:])
ArgumentParser.validate_translate_opts(opt)
ArgumentParser._get_all_transform_translate(opt)
ArgumentParser._validate_transforms_opts(opt)
ArgumentParser.validate_translate_opts_dynamic(opt)
set_random_seed(opt.seed, use_gpu(opt))
engine = InferenceEnginePY(opt)
times = []
for _ in range(2):
    start = time.perf_counter()
    engine.infer_file()
    times.append(time.perf_counter() - start)
engine.terminate()
print(json.dumps({"first_s": times[0], "seconds": times[1]}))
"""

_ONMT_REPORT = re.compile(r"Step\s+(\d+)/\s*\d+;.*?;\s*([\d.]+)/\s*([\d.]+) tok/s")


def check_settings(s):
    """Raises `ValueError` naming the first bad setting."""
    for key in ("pairs", "dev_words", "embedding", "hidden", "layers", "batch", "epochs",
                "rounds"):
        if not isinstance(s[key], int) or s[key] < 1:
            raise ValueError(f"onmt: {key} must be a positive integer. Received: {key}={s[key]!r}")
    if s["epochs"] < 2:
        raise ValueError("onmt: epochs must be >= 2 (the first one warms up)")
    if s["hidden"] % 2:
        raise ValueError(f"onmt: hidden must be even (two directions). Received: {s['hidden']}")
    unknown = set(s["systems"]) - {"opennmt", *ZOO}
    if unknown or not s["systems"]:
        raise ValueError(f"onmt: systems must be some of opennmt, {', '.join(ZOO)}. "
                         f"Received: systems={s['systems']!r}")
    if not s["beams"] or any(int(b) < 1 for b in s["beams"]):
        raise ValueError(f"onmt: beams must be positive integers. Received: {s['beams']!r}")


def onmt_python(s):
    """The side environment's python, or `(None, why)`."""
    path = s["onmt_python"] or os.environ.get("SEQZOO_ONMT_PYTHON") or os.path.join(
        ROOT, ".onmt-venv", "bin", "python")
    if not os.path.isfile(path):
        shown = os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path
        return None, (f"OpenNMT-py not found ({shown} is missing): make its side environment "
                      "with bash benchmarks/onmt_env.sh, or set onmt_python")
    check = subprocess.run([path, "-c", "import onmt, torch; print(onmt.__version__)"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        return None, f"{path} cannot import onmt and torch: {check.stderr.strip()[-300:]}"
    return path, check.stdout.strip()


def make_data(directory, s):
    """Writes `train.src/tgt` and `dev.src` (space-separated letters and phones)."""
    from seqzoo.recipes.g2p import dictionary

    lexicon, _ = dictionary.load_cmudict()
    splits = dictionary.split_lexicon(lexicon)
    pairs = dictionary.pairs(lexicon, splits["train"])[: s["pairs"]]
    files = {name: os.path.join(directory, name) for name in ("train.src", "train.tgt",
                                                              "dev.src")}
    with open(files["train.src"], "w", encoding="utf-8") as f:
        f.write("".join(" ".join(word) + "\n" for word, _ in pairs))
    with open(files["train.tgt"], "w", encoding="utf-8") as f:
        f.write("".join(pron + "\n" for _, pron in pairs))
    letters = {c for word, _ in pairs for c in word}  # dev words within the vocabulary
    dev = [w for w in splits["dev"] if set(w) <= letters][: s["dev_words"]]
    with open(files["dev.src"], "w", encoding="utf-8") as f:
        f.write("".join(" ".join(w) + "\n" for w in dev))
    target_tokens = sum(len(p.split()) + 1 for _, p in pairs)  # EOS included
    return files, target_tokens, len(pairs)


def _measured(command, env=None, cwd=None):
    """`(output, peak MiB)` of a command run to the end; raises naming it if it fails."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, cwd=cwd)
    lines = result.stdout.strip().splitlines()
    status = json.loads(lines[-1]) if lines else {"returncode": result.returncode}
    output = "\n".join(lines[:-1]) + "\n" + result.stderr
    if status["returncode"] != 0:
        raise RuntimeError(f"onmt: {' '.join(command[:3])}... exited with "
                           f"{status['returncode']}:\n{output[-2000:]}")
    return output, status["peak_kib"] / 1024


def _onmt_config(directory, files, s, steps):
    layers, hidden = s["layers"], s["hidden"]
    config = {
        "save_data": os.path.join(directory, "onmt"), "overwrite": True,
        "src_vocab": os.path.join(directory, "vocab.src"),
        "tgt_vocab": os.path.join(directory, "vocab.tgt"),
        "data": {"train": {"path_src": files["train.src"], "path_tgt": files["train.tgt"]}},
        "save_model": os.path.join(directory, "onmt-model"), "save_checkpoint_steps": steps,
        "train_steps": steps, "report_every": max(1, steps // (2 * s["epochs"])),
        "encoder_type": "brnn", "decoder_type": "rnn", "rnn_type": "LSTM", "layers": layers,
        "hidden_size": hidden, "word_vec_size": s["embedding"], "global_attention": "general",
        "input_feed": 1, "dropout": [s["dropout"]], "batch_size": s["batch"],
        "batch_type": "sents", "optim": "adam", "learning_rate": s["learning_rate"],
        "max_grad_norm": 5, "seed": s["seed"], "bucket_size": 2048,
    }
    path = os.path.join(directory, "onmt.yaml")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)  # JSON is YAML
    return path


def parse_onmt_training(output):
    """Target tokens/s of OpenNMT-py's reports after the first (warm), in step order."""
    reports = [(int(m.group(1)), float(m.group(3))) for m in _ONMT_REPORT.finditer(output)]
    if len(reports) < 2:
        raise RuntimeError(f"onmt: expected two or more training reports; found "
                           f"{len(reports)} in:\n{output[-1500:]}")
    return [rate for _, rate in reports[1:]]


def _onmt_round(python, directory, files, s, steps, log):
    bin_dir = os.path.dirname(python)
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # its own checkpoint, written just now
    config = _onmt_config(directory, files, s, steps)
    if not os.path.exists(os.path.join(directory, "vocab.src")):
        _measured([os.path.join(bin_dir, "onmt_build_vocab"), "-config", config,
                   "-n_sample", "-1"], env)
    output, peak = _measured([os.path.join(bin_dir, "onmt_train"), "-config", config], env)
    result = {"train_rates": parse_onmt_training(output), "train_peak_mib": peak, "decode": {}}
    model = os.path.join(directory, f"onmt-model_step_{steps}.pt")
    for beam in s["beams"]:
        output, peak = _measured([
            python, "-c", _ONMT_DECODE, "-model", model, "-src", files["dev.src"],
            "-output", os.path.join(directory, f"onmt-hyp{beam}.txt"), "-beam_size", str(beam),
            "-batch_size", "64", "-gpu", "-1"], env)
        timed = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
        result["decode"][beam] = {**timed, "peak_mib": peak}
    log(f"onmt opennmt: {np.median(result['train_rates']):,.0f} target tokens/s")
    return result


def _zoo_round(name, directory, files, s, target_tokens, log):
    out = os.path.join(directory, name)
    units = s["hidden"] // 2
    command = [sys.executable, "-m", "seqzoo", "train", "--model", ZOO[name],
               "--tokenizer", "word", "--train", files["train.src"], files["train.tgt"],
               "--out", out, "--overwrite", "--quiet", "--epochs", str(s["epochs"]),
               "--batch-size", str(s["batch"]), "--learning-rate", str(s["learning_rate"]),
               "--seed", str(s["seed"]), "--set", f"model.units={units}",
               "--set", f"model.num_layers={s['layers']}",
               "--set", f"model.decoder_units={s['hidden']}",
               "--set", f"model.decoder_layers={s['layers']}",
               "--set", f"model.embedding_dim={s['embedding']}",
               "--set", f"model.dropout={s['dropout']}", "--set", "model.bridge=copy",
               "--set", "max_length=null"]
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    _, peak = _measured(command, env, cwd=ROOT)
    with open(os.path.join(out, "run.json"), encoding="utf-8") as f:
        history = json.load(f)["history"]
    rates = [target_tokens / h["seconds"] for h in history[1:]]
    result = {"train_rates": rates, "train_peak_mib": peak, "decode": {}}
    for beam in s["beams"]:
        output, peak = _measured([sys.executable, "-c", _ZOO_DECODE, out, files["dev.src"],
                                  str(beam), "64", str(int(s["jit_compile"]))], env, cwd=ROOT)
        timed = json.loads(output.strip().splitlines()[0])
        result["decode"][beam] = {**timed, "peak_mib": peak}
    log(f"onmt {name}: {np.median(rates):,.0f} target tokens/s")
    return result


def run(settings, context, log=print):
    """Runs the suite; returns one record."""
    s = dict(settings)
    for key in ("beams", "systems"):  # lists given with --set as "a,b"
        if isinstance(s[key], str):
            s[key] = [v for v in s[key].split(",") if v]
    s["beams"] = [int(b) for b in s["beams"]]
    check_settings(s)
    python, version = onmt_python(s) if "opennmt" in s["systems"] else (None, "not asked for")
    systems = (["opennmt"] if python else []) + [n for n in ZOO if n in s["systems"]]
    record = {"suite": "onmt", "name": "g2p", "kind": "onmt",
              "settings": {k: s[k] for k in _FULL if k != "onmt_python"},
              "context": context, "results": {}}
    if python:
        record["opennmt_version"] = version
    else:
        record["opennmt_skipped"] = version
        log(f"onmt: {version}")
    rounds = {name: [] for name in systems}
    with tempfile.TemporaryDirectory(prefix="seqzoo-onmt-") as directory:
        files, target_tokens, pairs = make_data(directory, s)
        steps = s["epochs"] * -(-pairs // s["batch"])
        record["data"] = {"pairs": pairs, "target_tokens": target_tokens, "steps": steps,
                          "dev_words": s["dev_words"]}
        for index in range(s["rounds"]):
            order = systems if index % 2 == 0 else systems[::-1]
            for name in order:
                if name == "opennmt":
                    rounds[name].append(_onmt_round(python, directory, files, s, steps, log))
                else:
                    rounds[name].append(_zoo_round(name, directory, files, s, target_tokens,
                                                   log))
    dev = s["dev_words"]
    for name, results in rounds.items():
        record["results"][name] = {
            "train_tokens_per_s": common.summarize(
                [rate for r in results for rate in r["train_rates"]]),
            "train_peak_mib": max(r["train_peak_mib"] for r in results),
            "decode": {str(beam): {
                "words_per_s": common.summarize([dev / r["decode"][beam]["seconds"]
                                                 for r in results]),
                "first_pass_words_per_s": common.summarize(
                    [dev / r["decode"][beam]["first_s"] for r in results]),
                "peak_mib": max(r["decode"][beam]["peak_mib"] for r in results),
                **({} if name == "opennmt"
                   else {"xla": all(r["decode"][beam]["xla"] for r in results)})}
                for beam in s["beams"]},
        }
    if "opennmt" in rounds:
        base = record["results"]["opennmt"]
        record["ratio"] = {}
        for name in ZOO:
            zoo = record["results"][name]
            record["ratio"][f"{name}_train"] = (zoo["train_tokens_per_s"]["median"]
                                                / base["train_tokens_per_s"]["median"])
            for beam in s["beams"]:
                record["ratio"][f"{name}_beam{beam}"] = (
                    zoo["decode"][str(beam)]["words_per_s"]["median"]
                    / base["decode"][str(beam)]["words_per_s"]["median"])
    return [record]


def describe(rows):
    row = rows[0]
    s, d = row["settings"], row["data"]
    text = (f"{d['pairs']:,} CMUdict training pairs (letters -> phones), {d['steps']} training "
            f"steps of {s['batch']} pairs ({s['epochs']} epochs); encoder {s['layers']} x "
            f"bidirectional LSTM of {s['hidden'] // 2} units per direction, decoder "
            f"{s['layers']} x LSTM "
            f"{s['hidden']}, Luong general attention, embeddings {s['embedding']}, dropout "
            f"{s['dropout']}, Adam {s['learning_rate']}. Training: target tokens/s (EOS "
            "included) once warm, median (min-max) over the reports or epochs after the "
            f"first, {s['rounds']} alternating rounds. Decoding: {d['dev_words']:,} dev words, "
            "batch 64; words/s of the translation itself (the zoo: its second pass; its first "
            "pass traces and compiles"
            + ("; its search compiled by XLA" if s.get("jit_compile") else "")
            + "). Memory: peak resident set size of each process.")
    if row.get("opennmt_skipped"):
        text += f" OpenNMT-py not timed: {row['opennmt_skipped']}."
    elif row.get("opennmt_version"):
        text += f" OpenNMT-py {row['opennmt_version']}."
    return text


def table(rows):
    row = rows[0]
    beams = sorted(int(b) for b in next(iter(row["results"].values()))["decode"])
    head = ["system", "training tokens/s", "training peak MiB"]
    for beam in beams:
        label = "greedy" if beam == 1 else f"beam {beam}"
        head += [f"{label} words/s", f"{label} first pass", f"{label} peak MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in row["results"].items():
        cells = [name, common.format_rate(r["train_tokens_per_s"]["median"]),
                 f"{r['train_peak_mib']:,.0f}"]
        for beam in beams:
            d = r["decode"][str(beam)]
            cells += [common.format_rate(d["words_per_s"]["median"]),
                      common.format_rate(d["first_pass_words_per_s"]["median"]),
                      f"{d['peak_mib']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if row.get("ratio"):
        lines.append("\nseqzoo / OpenNMT-py, ratio of medians: " + ", ".join(
            f"{k} {v:.2f}" for k, v in row["ratio"].items()))
    return "\n".join(lines)

