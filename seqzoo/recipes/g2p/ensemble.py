"""The ensemble of `seqzoo recipe g2p`: members trained side by side, decoded as one.

With `--set ensemble=N` (the default above 10 minutes) the recipe runs one
`seqzoo recipe g2p` process per member, each pinned to its own cores (one
training process uses two cores poorly), then decodes them together:
members that read the same way as one `Seq2SeqEnsemble`, and members of
both directions by rescoring the union of their n-best lists.
"""

import json
import os
import subprocess
import sys
import threading
import time

from seqzoo.errors import InputError
from seqzoo.recipes.g2p import dictionary, fit
from seqzoo.recipes.g2p.decode import ensemble_decoder, lengths
from seqzoo.recipes.g2p.report import load_average, machine, plot_members, score_test, write_results
from seqzoo.recipes.g2p.runs import check_same_data, prepare, read_run
from seqzoo.recipes.g2p.settings import settings_for


def member_command(args, preset, index, seed, out, reverse=False, min_steps=0):
    """The `seqzoo recipe g2p` command line that trains ensemble member `index`
    (`--member`: one that stops with `fit.TOO_FEW_STEPS` below `min_steps`)."""
    command = [sys.executable, "-m", "seqzoo", "recipe", "g2p", "--model", preset,
               "--out", out, "--quiet"]
    if args.budget is not None:
        command += ["--budget", repr(args.budget)]
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    if args.dictionary:
        command += ["--dictionary", args.dictionary]
    if getattr(args, "init", None):
        command += ["--init", os.path.join(args.init, f"member-{index + 1}")]
    for item in args.set or ():
        command += ["--set", item]
    return command + ["--set", "ensemble=1", "--set", f"seed={seed + index}",
                      "--set", f"reverse={'true' if reverse else 'false'}",
                      "--set", f"min_steps={min_steps}", "--member"]


def core_groups(members):
    """The CPU cores of each member (`None` where the process cannot be pinned).

    The cores this process may use are dealt out in turn, so members run
    side by side without sharing a core; with fewer cores than members, or
    where affinity is not supported, members are not pinned.
    """
    if not hasattr(os, "sched_getaffinity"):
        return [None] * members
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < members:
        return [None] * members
    return [cores[i::members] for i in range(members)]


def train_members(args, settings, presets):
    """Runs one recipe process per member, side by side; returns the member folders."""

    folders, processes, threads, trained = [], [], [], []
    groups = core_groups(len(presets))
    for index, (preset, cores) in enumerate(zip(presets, groups)):
        folder = os.path.join(args.out, f"member-{index + 1}")
        os.makedirs(folder, exist_ok=True)
        threads_each = len(cores) if cores else max(1, (os.cpu_count() or 1) // len(presets))
        env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads_each),
                   TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS=str(threads_each))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        pin = None if cores is None else (lambda c=set(cores): os.sched_setaffinity(0, c))
        reverse = index >= len(presets) - int(settings["reversed_members"])
        command = member_command(args, preset, index, int(settings["seed"]), folder, reverse,
                                 settings["min_steps"])
        folders.append(folder)
        if _finished(folder, command, args):
            print(f"member {index + 1}: reusing the finished run in {folder} (its "
                  "results.json has the same settings; delete the folder to retrain)")
            continue
        print(f"member {index + 1}: {preset}, seed {int(settings['seed']) + index}"
              + (", right to left" if reverse else "")
              + (f", cores {cores}" if cores else "") + f"; log {folder}/log.txt", flush=True)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, env=env, preexec_fn=pin)
        thread = threading.Thread(target=_relay, args=(process, index + 1, folder), daemon=True)
        thread.start()
        processes.append(process)
        trained.append(folder)
        threads.append(thread)
    codes = _wait(processes)
    for thread in threads:
        thread.join()
    if fit.TOO_FEW_STEPS in codes:
        raise fit.read_projections(trained)
    failed = [(folder, code) for folder, code in zip(trained, codes) if code != 0]
    if failed:
        raise InputError("ensemble member(s) failed: " + ", ".join(
            f"member {folder.rsplit('-', 1)[-1]} (exit {code}, see {folder}/log.txt)"
            for folder, code in failed))
    return folders


def _wait(processes):
    """Waits for the member processes; once one stops for too few steps, the
    others are stopped too. Returns their exit statuses."""
    while any(process.poll() is None for process in processes):
        if any(process.poll() == fit.TOO_FEW_STEPS for process in processes):
            for process in processes:
                if process.poll() is None:
                    process.stopped = True
                    process.terminate()
            break
        time.sleep(0.5)
    return [process.wait() for process in processes]


def _member_settings(command):
    """The `--set` items and budget of a member command line."""
    items = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    preset = command[command.index("--model") + 1]
    return {**settings_for(None if "--budget" not in command
                           else float(command[command.index("--budget") + 1]), items),
            "model": preset}


def _finished(folder, command, args):
    """Whether `folder` holds a finished member run of exactly this command."""
    try:
        record = read_run(folder)
    except InputError:
        return False
    return (record.get("settings") == json.loads(json.dumps(_member_settings(command)))
            and record.get("model") == command[command.index("--model") + 1]
            and record.get("budget_minutes") == args.budget
            and (record.get("init") or {}).get("folder") == _init_folder(command)
            and record.get("data", {}).get("splits") == getattr(args, "_splits", None))


def _init_folder(command):
    """The absolute `--init` folder of a member command line (`None` without one)."""
    return os.path.abspath(command[command.index("--init") + 1]) if "--init" in command else None


def _relay(process, number, folder):
    """Copies a member's output to its log, printing its own lines with a prefix."""
    with open(os.path.join(folder, "log.txt"), "w") as log:
        for line in process.stdout:
            log.write(line)
            log.flush()
            if not line.lstrip().startswith(("W0000", "I0000", "E0000", "WARNING: All log",
                                             "[[{{node")):
                print(f"[member {number}] {line}", end="", flush=True)
    code = process.wait()
    if code == fit.TOO_FEW_STEPS or getattr(process, "stopped", False):
        return  # the member said why; the ensemble goes on with a smaller model
    if code != 0:  # said at once: the other members may train for a long while yet
        print(f"member {number} failed (exit {code}, see {folder}/log.txt); the others go on "
              "and are reused when the command runs again", file=sys.stderr, flush=True)


def run_ensemble(args, settings, presets, started):
    """Trains the members side by side, then scores them decoding as one."""
    loads = {"start": load_average()}
    lexicon, splits, data = prepare(args, print, settings["split_salt"])
    args._splits = data["splits"]  # a finished member is reused only on the same data
    print(f"training an ensemble of {len(presets)} side by side: {', '.join(presets)}"
          + (f"; budget {args.budget:g} min" if args.budget else ""), flush=True)
    folders = train_members(args, settings, presets)
    loads["end_of_training"] = load_average()
    members = [read_run(folder) for folder in folders]
    return _score_members(args, settings, folders, members, (lexicon, splits, data), loads,
                          started, ",".join(presets), args.budget)


def combine_members(args, settings, folders, started):
    """`--members DIR,...`: decodes finished runs as one ensemble, training nothing.

    Each folder is a finished run of the recipe on the same data: an
    ensemble member (`runs/g2p/member-1`) or a single-model run, holding
    `results.json` and `model.keras`. The members may differ in size,
    preset and direction; their vocabularies must be the same.
    """
    loads = {"start": load_average()}
    lexicon, splits, data = prepare(args, print, settings["split_salt"])
    members = []
    for folder in folders:
        member = read_run(folder)
        if member.get("task") != "g2p-cmudict" or "ensemble" in member:
            raise InputError(f"{folder}/results.json: expected the results of one trained "
                             "model (an ensemble member or a single-model run); an "
                             "ensemble's own folder holds its members in member-N/")
        check_same_data(folder, member, data)
        members.append({**member, "folder": folder})
    print(f"decoding {len(folders)} finished runs as one ensemble: "
          + ", ".join(f"{f} ({m['model']}, "
                      f"{'right to left' if m['settings'].get('reverse') else 'left to right'})"
                      for f, m in zip(folders, members)), flush=True)
    return _score_members(args, settings, folders, members, (lexicon, splits, data), loads,
                          started, ",".join(m["model"] for m in members), None,
                          combined_from=[os.path.abspath(f) for f in folders])


def _score_members(args, settings, folders, members, prepared, loads, started, model, budget,
                   combined_from=None):
    """Decodes the members as one and writes the ensemble's results (`model`:
    the members' presets; `combined_from`: the folders of `--members`)."""
    lexicon, splits, data = prepared
    train_pairs = dictionary.pairs(lexicon, splits["train"])
    max_length, width = lengths(lexicon, train_pairs)
    decode = ensemble_decoder(folders, [bool(m["settings"].get("reverse")) for m in members],
                              max_length, width)
    dev_words = splits["dev"][: int(settings["dev_words"])]
    dev = dictionary.score(decode(dev_words, 1), [lexicon[w] for w in dev_words])
    for m in members:
        print(f"{m['folder']} ({m['model']}, {m['train_steps']} steps): dev WER "
              f"{100 * m['best_dev']['dev_wer']:.2f}%, test WER "
              + ", ".join(f"{name} {100 * t['wer']:.2f}%" for name, t in m["test"].items()))
    print(f"ensemble of {len(members)}: dev WER {100 * dev['wer']:.2f}%, PER "
          f"{100 * dev['per']:.2f}% (greedy, {len(dev_words)} words)")
    test, examples = score_test(decode, lexicon, splits, settings, args.out)
    loads["end"] = load_average()
    plot_members(members, dev, os.path.join(args.out, "dev_wer.png"))
    summary_keys = ("folder", "model", "parameters", "settings", "train_seconds",
                    "train_steps", "steps_by_minute", "size_check", "best_dev", "averaged_dev",
                    "test", "init")
    record = {
        "task": "g2p-cmudict", "model": model, "ensemble": len(members),
        "parameters": sum(m["parameters"] for m in members),
        "budget_minutes": budget, "settings": settings, "data": data,
        **({"combined_from": combined_from} if combined_from else {}),
        "train_seconds": max(m["train_seconds"] for m in members),
        "train_steps": [m["train_steps"] for m in members],
        "members": [{k: m.get(k) for k in summary_keys} for m in members],
        "ensemble_dev": dev, "test": test, "examples": examples, "load_average": loads,
        "machine": machine(), "total_seconds": round(time.time() - started, 1),
    }
    write_results(args.out, record, None if combined_from else "member-*/model.keras", started)
    return 0
