"""Scoring the test words and writing a G2P run's results and pictures."""

import json
import os
import platform
import time

import keras

from seqzoo.io import atomic_write
from seqzoo.recipes.g2p import dictionary
from seqzoo.recipes.g2p.settings import EXAMPLES


def score_test(decode, lexicon, splits, settings, out):
    """Scores the test words greedily and with beam search, prints examples and
    writes `test_predictions.tsv`; returns `(test scores, examples)`.

    `decode(words, beam_size)` gives one pronunciation per word.
    """

    test_words = splits["test"]
    references = [lexicon[w] for w in test_words]
    test, outputs = {}, {}
    for name, beam in (("greedy", 1), (f"beam{settings['beam_size']}", settings["beam_size"])):
        began = time.time()
        outputs[name] = decode(test_words, beam)
        test[name] = {**dictionary.score(outputs[name], references),
                      "seconds": round(time.time() - began, 1)}
        print(f"test {name}: WER {100 * test[name]['wer']:.2f}%, PER "
              f"{100 * test[name]['per']:.2f}% on {len(test_words)} words "
              f"({test[name]['seconds']:.0f} s)")
    beam_name = list(outputs)[-1]
    examples = [{"word": w, "output": o, "references": lexicon[w], "correct": o in lexicon[w]}
                for w, o in zip(test_words[:10], outputs[beam_name][:10])]
    unseen = [w for w in EXAMPLES if w not in lexicon or w not in set(splits["train"])]
    for w, o in zip(unseen, decode(unseen, settings["beam_size"])):
        examples.append({"word": w, "output": o, "references": lexicon.get(w, []),
                         "correct": o in lexicon.get(w, [])})
    print(f"examples ({beam_name}; test words and words not in training):")
    for e in examples:
        refs = " | ".join(e["references"]) or "not in the dictionary"
        print(f"  {e['word']:>14} -> {e['output']:<28} {'ok' if e['correct'] else 'ref: ' + refs}")
    with atomic_write(os.path.join(out, "test_predictions.tsv")) as f:
        f.write("word\tgreedy\t" + beam_name + "\treferences\n")
        for w, g, b, r in zip(test_words, outputs["greedy"], outputs[beam_name], references):
            f.write(f"{w}\t{g}\t{b}\t{' | '.join(r)}\n")
    return test, examples


def plot_dev_curve(history, path, title, averaged=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [h["minutes"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(minutes, [100 * h["dev_wer"] for h in history], marker="o", label="dev WER")
    ax.plot(minutes, [100 * h["dev_per"] for h in history], marker=".", label="dev PER")
    if averaged is not None:
        ax.axhline(100 * averaged["dev_wer"], color="C0", linestyle="--",
                   label=f"dev WER, {averaged['epoch']}")
        ax.axhline(100 * averaged["dev_per"], color="C1", linestyle="--",
                   label="dev PER, averaged")
    ax.set(xlabel="training time (minutes)", ylabel="error rate (%)", title=title,
           ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_members(members, dev, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, m in enumerate(members):
        history = m["dev_history"]
        ax.plot([h["minutes"] for h in history], [100 * h["dev_wer"] for h in history],
                marker="o", color=f"C{i}", label=f"{m['folder']} ({m['model']}, "
                f"{'right to left' if m['settings'].get('reverse') else 'left to right'}) dev WER")
    ax.axhline(100 * dev["wer"], color="k", linestyle="--", label="ensemble dev WER")
    ax.set(xlabel="training time (minutes)", ylabel="dev WER (%)",
           title="G2P on CMUdict: ensemble members, dev WER by training time", ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_average():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine():
    return {"backend": keras.backend.backend(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "keras": keras.__version__}


def write_results(out, record, model_files, started):

    with atomic_write(os.path.join(out, "results.json")) as f:
        json.dump(record, f, indent=2)
    written = "results.json, dev_wer.png" + (
        f", test_predictions.tsv and {model_files}" if model_files
        else " and test_predictions.tsv")
    print(f"wrote {written} to {out} (whole recipe {(time.time() - started) / 60:.1f} min)")
