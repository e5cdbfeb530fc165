"""`Trainer`: the one training loop of seqzoo.

Longer than 400 lines: the loop, its resume state (epoch, batch, step,
best, plateau counters), checkpoints, dev evaluation and the run record
change together; they are kept in one class so that a resumed run repeats
an uninterrupted one exactly.

`seqzoo train`, `seqzoo finetune`, the letter-sorting demo and the G2P
recipe all train through it. It trains either a seq2seq preset on parallel
files into a run folder (`Trainer(out, preset, settings, ...)`, then
`prepare()` and `fit()`), or a compiled model on batches already in memory
(`Trainer.for_model(model, batches, ...)`, then `fit()`), with the same
loop, callbacks, NaN stop, budget, schedules and weight averaging.

A run folder holds:

- `config.json`: the preset, settings and data paths (what `--resume` reads);
- `tokenizers/`: the source and target tokenizers;
- `checkpoints/ckpt-<step>.npz`: the last `keep_checkpoints` and the best;
- `model.keras`: the trained model with its tokenizers (best weights when
  `restore_best`);
- `run.json`: the record of the run (settings, data sizes, skipped pairs,
  metrics per epoch, time), rewritten after every epoch;
- `tensorboard/` when `tensorboard` is on.

The loop steps through the batches of `BucketedBatches` itself, so that a
checkpoint can record the exact data position (epoch and batch): a resumed
run performs the same steps on the same batches as an uninterrupted one.
"""

import contextlib
import json
import math
import os
import re
import time

import keras
import numpy as np

import seqzoo
from seqzoo.data import pad_sequences
from seqzoo.errors import DataError, InputError, SeqzooError
from seqzoo.io import atomic_write, remove_partial_writes
from seqzoo.models import Seq2Seq
from seqzoo.models.base import remove_partial_saves, save_model
from seqzoo.models.registry import PRESETS
from seqzoo.text import CharTokenizer
from seqzoo.training import data as run_data
from seqzoo.training import divergence, memory, precision, pretrained
from seqzoo.training.callbacks import (
    CosineSchedule,
    WallClockBudget,
    WeightAveraging,
    learning_rate_of,
)
from seqzoo.training.checkpoints import (
    CheckpointManager,
    read_checkpoint,
    restore_checkpoint,
    restore_model_weights,
)
from seqzoo.training.config import LOWER_IS_BETTER, resolve
from seqzoo.training.distribute import Distribution, distribution_scope

DECODE_BATCH = 64


class TrainingError(SeqzooError):
    """Training stopped (e.g. the loss became NaN); the last good checkpoint is kept."""


def build_optimizer(settings, total_steps):
    """Adam with the run's learning-rate schedule and gradient clipping."""
    lr = settings["learning_rate"]
    schedule = settings["schedule"]
    if schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(
            lr, settings["decay_steps"], settings["decay_rate"])
    elif schedule == "warmup":
        warmup = min(settings["warmup_steps"], max(total_steps - 1, 0))
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, max(total_steps - warmup, 1), alpha=0.05, warmup_target=lr,
            warmup_steps=warmup)
    clip = ({"global_clipnorm": settings["clipnorm"]} if settings["clipnorm"] is not None
            else {"clipvalue": settings["clipvalue"]} if settings["clipvalue"] is not None
            else {})
    if settings["accumulate"] > 1:
        # Keras averages the gradients of `accumulate` batches, then clips and
        # applies them; learning-rate schedules still count batches.
        clip["gradient_accumulation_steps"] = settings["accumulate"]
    return keras.optimizers.Adam(learning_rate=lr, **clip)


def build_run_model(preset, model_overrides, model_config, source_tokenizer, target_tokenizer):
    """A run's `Seq2Seq` (initial weights): from `model_config` (fine-tuning), else the
    preset with the run's overrides, with the run's tokenizers."""
    tokenizers = {"source_tokenizer": source_tokenizer, "target_tokenizer": target_tokenizer}
    if model_config is not None:
        return Seq2Seq.from_config({**model_config, **tokenizers})
    if PRESETS[preset]["class"] != "Seq2Seq":
        raise InputError(f"--model {preset}: seqzoo train trains seq2seq presets "
                         "(parallel data); for other models use the Python API")
    try:
        model = seqzoo.create(preset, source_vocab_size=source_tokenizer.vocab_size,
                              target_vocab_size=target_tokenizer.vocab_size, **tokenizers,
                              **(model_overrides or {}))
    except (ValueError, TypeError) as e:
        overrides = model_overrides or {}
        named = re.search(r"Received: (\w+)=", str(e))
        if named and named.group(1) in overrides:
            key = named.group(1)
            raise InputError(f"--set model.{key}={overrides[key]}: {e}") from None
        raise InputError(f"--model {preset} with model settings {overrides}: {e}") from None
    assert isinstance(model, Seq2Seq)
    return model


def _running(sums):
    """The epoch's token-weighted mean loss and accuracy so far, and the perplexity."""
    running = {"loss": sums["loss"] / sums["weight"],
               "token_accuracy": sums["token_accuracy"] / sums["weight"]}
    running["perplexity"] = math.exp(min(running["loss"], 50.0))
    return running


class Trainer:
    """Trains a seq2seq preset into a run folder, or a model in memory (`for_model`).

    Args:
        out: the run folder (`None` for `for_model`: no files).
        preset: a seq2seq preset name (`seqzoo list`).
        settings: resolved settings (`seqzoo.training.config.resolve`).
        model_overrides: preset arguments to override.
        train: `[SRC, TGT]` or `[FILE.tsv]`.
        dev: the same for the dev set, or `None`.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        model_config: build the model from this config (a `Seq2Seq`'s
            `get_config()` without tokenizers) instead of the preset, e.g.
            for fine-tuning; `preset` then only names the run.
        model: start from this model's weights and tokenizers (fine-tuning);
            it must match `model_config`.
        callbacks: `keras.callbacks.Callback`s (e.g. `FreezeFor`,
            `DevMonitor`); they get `on_train_begin`, `on_epoch_begin`,
            `on_train_batch_begin/end` (with the batch index in the epoch),
            `on_epoch_end` (logs: the epoch's mean `loss`) and
            `on_train_end`; one that sets `model.stop_training` stops the run
            after that batch.
        embeddings: pre-trained vectors for the model's embeddings, a dict
            (`seqzoo.training.pretrained`: `source`, `target`, `format`,
            `freeze`, `unfreeze_after`); read in `prepare`, their coverage
            reports printed and written to the run's `embeddings.json`.
    """

    def __init__(self, out, preset, settings, model_overrides=None, train=None, dev=None,
                 verbose=1, model=None, callbacks=(), model_config=None, extra=None,
                 embeddings=None):
        self.out = None if out is None else os.fspath(out)
        self.preset = preset
        self.settings = settings
        self.model_overrides = dict(model_overrides or {})
        self.train_paths = [os.path.abspath(p) for p in train or ()]
        self.dev_paths = [os.path.abspath(p) for p in dev] if dev else None
        self.verbose = verbose
        self.start_model = model
        self.model_config = model_config
        self.extra = dict(extra or {})
        self.embeddings = pretrained.check_spec(embeddings)
        if self.embeddings:
            self.extra["embeddings"] = self.embeddings
        self.callbacks = list(callbacks)
        self.log = print if verbose else (lambda *a, **k: None)
        self.tokenizer_dir = None if out is None else os.path.join(self.out, "tokenizers")
        self.checkpoints = None
        self.unreadable, self.set_aside = [], []
        self.state = {"epoch": 0, "batch": 0, "step": 0, "history": [], "best": None,
                      "bad_epochs": 0, "plateau_wait": 0, "seconds": 0.0}
        self.record = {}
        self._writer = None
        self._scope = contextlib.ExitStack()
        self.distribution = None
        self.initial_learning_rate = settings["learning_rate"]
        self.dev = None
        self.budget = self.schedule = self.averager = None
        self._averaging_sums = []
        self.averaged = None

    @classmethod
    def for_model(cls, model, batches, settings=None, callbacks=(), verbose=1):
        """The loop alone, on data in memory: no run folder, no checkpoints.

        Args:
            model: a compiled Keras model (its optimizer and loss are used).
            batches: `len(batches)` batches `(x, y)` by index, with
                `set_epoch(epoch)` to reshuffle (`seqzoo.data.BucketedBatches`).
            settings: run settings (`seqzoo.training.config.resolve`); the
                loop uses `epochs` and the optional `schedule="cosine"` (from
                the optimizer's learning rate down to `final_lr_ratio` of it),
                `budget_minutes` and `average_from`.
            callbacks, verbose: as for `Trainer`.
        """
        settings = settings or resolve([])[0]
        trainer = cls(None, model.name, settings, verbose=verbose, callbacks=callbacks)
        trainer.model, trainer.batches = model, batches
        trainer.initial_learning_rate = learning_rate_of(model.optimizer)
        trainer.source_tokenizer = getattr(model, "source_tokenizer", None)
        trainer.target_tokenizer = getattr(model, "target_tokenizer", None)
        trainer.distribution = Distribution("none")
        trainer.total_steps = settings["epochs"] * len(batches)
        return trainer

    # -- set-up ---------------------------------------------------------------

    def run_config(self):
        return {"preset": self.preset, "model_overrides": self.model_overrides,
                "model_config": self.model_config, "settings": self.settings,
                "train": self.train_paths, "dev": self.dev_paths, **self.extra}

    def prepare(self, resume=False):
        """Reads the data, makes or loads tokenizers, builds and compiles the model."""
        try:
            self._prepare(resume)
        except BaseException:
            self._scope.close()
            raise

    def _prepare(self, resume):
        s = self.settings
        # The model is built, trained, evaluated and saved in the scope (closed
        # by `fit`); a multi-worker strategy must come before other TF work.
        self.distribution = self._scope.enter_context(distribution_scope(s["distribute"]))
        if s["monitor"] != "dev_loss" or s["early_stopping"] or s["schedule"] == "plateau":
            if self.dev_paths is None:
                raise InputError("early stopping, reduce-on-plateau and monitor need a dev "
                                 "set: pass --dev SRC TGT")
        train = run_data.read_corpus(self.train_paths, "train")
        dev = run_data.read_corpus(self.dev_paths, "dev") if self.dev_paths else None
        if self.start_model is not None:
            source_tok = self.start_model.source_tokenizer
            target_tok = self.start_model.target_tokenizer
        elif resume:
            source_tok, target_tok = run_data.load_tokenizers(self.tokenizer_dir)
        else:
            source_tok, target_tok = run_data.make_tokenizers(train, s)
        self.source_tokenizer, self.target_tokenizer = source_tok, target_tok
        if s["monitor"] == "dev_bleu" and isinstance(target_tok, CharTokenizer):
            raise InputError("monitor=dev_bleu needs a word or sentencepiece target tokenizer "
                             "(BLEU counts words); with characters, monitor "
                             "dev_character_error_rate or dev_exact_match")
        src, tgt, skipped = run_data.encode_corpus(train, source_tok, target_tok,
                                                   s["max_length"])
        self.batches = run_data.make_batches(src, tgt, s)
        self.record["data"] = {
            "train": {"files": self.train_paths, "pairs": len(src),
                      "tokens_target": sum(map(len, tgt)),
                      "skipped": run_data.describe_skipped(skipped)}}
        self.dev = None
        if dev is not None:
            d_src, d_tgt, d_skipped = run_data.encode_corpus(dev, source_tok, target_tok)
            self.dev = {"sources": d_src, "targets": dev.targets,
                        "batches": run_data.make_batches(d_src, d_tgt, s, shuffle=False)}
            self.record["data"]["dev"] = {"files": self.dev_paths, "pairs": len(d_src),
                                          "skipped": run_data.describe_skipped(d_skipped)}
        self.total_steps = s["epochs"] * len(self.batches)
        keras.utils.set_random_seed(s["seed"])
        policy = precision.policy_name(s["mixed_precision"])
        with precision.dtype_policy(policy):
            self.model = self._build_model()
        self.record["mixed_precision"] = policy
        self.record["memory_estimate"] = memory.check(src, tgt, s, self.model.get_config(),
                                                      log=self.log)
        self.train_ids = (src, tgt)
        if self.embeddings and not resume:
            self.load_pretrained()
            callback, freeze = pretrained.freeze_callback(self.embeddings, len(self.batches),
                                                          self.total_steps)
            if callback is not None:
                self.callbacks.append(callback)
                self.extra["freeze"] = freeze
        self.model.compile(optimizer=build_optimizer(s, self.total_steps))
        reports = os.path.join(self.out, "embeddings.json") if self.out else None
        if not resume:  # only now: a bad setting must not leave files behind
            run_data.save_tokenizers(source_tok, target_tok, self.tokenizer_dir)
            if reports and "embeddings" in self.record:
                with atomic_write(reports) as f:
                    json.dump(self.record["embeddings"], f, indent=2)
            elif reports and os.path.exists(reports):  # an earlier run's (--overwrite)
                os.remove(reports)
        elif reports and os.path.isfile(reports):
            with open(reports, encoding="utf-8") as f:
                self.record["embeddings"] = json.load(f)
        self.record["replicas"] = self.distribution.num_replicas
        self.record["vocabulary"] = {"source": source_tok.vocab_size,
                                     "target": target_tok.vocab_size}
        self.checkpoints = CheckpointManager(os.path.join(self.out, "checkpoints"),
                                             keep=s["keep_checkpoints"])
        remove_partial_saves(self.out)
        for directory in (self.out, self.tokenizer_dir):
            remove_partial_writes(directory)
        self._open_tensorboard()

    def load_pretrained(self):
        """Sets the model's embeddings from the run's vectors files (`embeddings`)."""
        source_ids, target_ids = self.train_ids
        self.record["embeddings"] = pretrained.load_pretrained(
            self.model, self.embeddings, {"source": source_ids, "target": target_ids},
            log=self.log)

    def _build_model(self):
        model = build_run_model(self.preset, self.model_overrides, self.model_config,
                                self.source_tokenizer, self.target_tokenizer)
        if self.model_config is not None and self.start_model is not None:
            for target, source in zip(model.variables, self.start_model.variables):
                target.assign(source)
        return model

    def restore(self, fall_back=False):
        """Continues from the newest checkpoint; returns its path (or `None`).

        After a run stopped on a NaN loss, the checkpoints newer than the last
        sane one are moved into `checkpoints/diverged-at-<step>/` first and
        listed in `self.set_aside`.

        With `fall_back`, checkpoints that cannot be read (corrupt, truncated)
        are passed over, newest first, and listed in `self.unreadable`; they
        stay on disk. A readable checkpoint of other settings still raises.
        """
        self.unreadable = []
        self.set_aside = divergence.set_aside(self.checkpoints)
        steps = self.checkpoints.steps()
        if not steps:
            return None
        self.model.optimizer.build(self.model.trainable_variables)
        for step in reversed(steps):
            path = self.checkpoints.path(step)
            try:
                checkpoint = read_checkpoint(path)
            except DataError as error:
                if not fall_back:
                    raise
                self.unreadable.append(str(error))
                continue
            self.state = restore_checkpoint(path, self.model, self.model.optimizer, checkpoint)
            meta, arrays = checkpoint
            self._averaging_sums = arrays[len(meta["names"]):]
            return path
        raise DataError(f"none of the {len(steps)} checkpoints can be read: "
                        + "; ".join(self.unreadable), path=self.checkpoints.directory)

    # -- the loop -------------------------------------------------------------

    def fit(self):
        """Trains to the end (or early stop); saves the model and the record.

        Raises:
            TrainingError: the loss became NaN or infinite.
        """
        try:
            return self._fit()
        finally:
            self._scope.close()
            self._close_tensorboard()

    def _fit(self):
        s, st = self.settings, self.state
        start = time.time() - st["seconds"]
        self.model.optimizer.build(self.model.trainable_variables)
        self.model.stop_training = False
        callbacks = self._schedule_callbacks() + self.callbacks
        for callback in callbacks:
            callback.set_model(self.model)
            callback.on_train_begin()
        self._open_tensorboard()
        # Why the loop ended early ("early stopped", "budget spent"), kept in the state
        # and so in the last checkpoint: a run killed after it resumes to the end.
        while st["epoch"] < s["epochs"] and not st.get("stopped"):
            epoch_start = time.time()
            for callback in callbacks:
                callback.on_epoch_begin(st["epoch"])
            logs = self._train_epoch(start, callbacks)
            st["epoch"] += 1
            st["batch"] = 0
            entry = {"epoch": st["epoch"], "step": st["step"],
                     "learning_rate": learning_rate_of(self.model.optimizer), **logs}
            if self.dev is not None:
                eval_start = time.time()
                entry.update(self.evaluate_dev())
                self._eval_seconds = time.time() - eval_start
            entry["seconds"] = round(time.time() - epoch_start, 2)
            st["history"].append(entry)
            self._epoch_summary(entry)
            stopped_early = self._after_epoch(entry)
            for callback in callbacks:
                callback.on_epoch_end(st["epoch"] - 1, {"loss": logs.get("train_loss"), **entry})
            out_of_time = bool(self.model.stop_training) and st["epoch"] < s["epochs"]
            st["stopped"] = ("early stopped" if stopped_early
                             else "budget spent" if out_of_time else None)
            st["seconds"] = time.time() - start
            self._save_checkpoint()
            self._write_record("running")
        self._keep_best_or_average()
        if self.out is not None:
            save_model(self.model, os.path.join(self.out, "model.keras"))
        self._write_record(st.get("stopped") or "completed")
        for callback in callbacks:
            callback.on_train_end()
        return st["history"]

    def _schedule_callbacks(self):
        """The budget, cosine schedule and weight averaging the settings ask for."""
        s = self.settings
        callbacks = []
        self._eval_seconds = 0.0
        if s["budget_minutes"] is not None:
            st = self.state
            self.budget = WallClockBudget(60 * s["budget_minutes"],
                                          reserve=self._evaluation_seconds,
                                          elapsed=st["seconds"], steps=st["step"],
                                          by=s["budget_schedule"],
                                          share=st.get("budget_share", 0.0),
                                          marks=st.setdefault("steps_by_minute", []))
            callbacks.append(self.budget)
        if s["schedule"] == "cosine":
            self.schedule = CosineSchedule(self.initial_learning_rate, s["final_lr_ratio"],
                                           total_steps=None if self.budget else self.total_steps,
                                           budget=self.budget)
            callbacks.append(self.schedule)
        if s["average_from"] is not None:
            progress = (self.schedule.progress if self.schedule else self.budget.share
                        if self.budget else lambda: self.state["step"] / max(self.total_steps, 1))
            self.averager = WeightAveraging(progress, s["average_from"], s["average_every"])
            if "averaging" in self.state:  # resumed: the snapshots taken before
                self.averager.set_state(self.state["averaging"], self._averaging_sums)
            callbacks.append(self.averager)
        return callbacks

    def _evaluation_seconds(self):
        """The time the last dev evaluations took: the trainer's and its callbacks' (such
        as `DevMonitor`'s `last_eval_seconds`); the budget keeps it in hand."""
        return self._eval_seconds + sum(getattr(c, "last_eval_seconds", 0.0)
                                        for c in self.callbacks)

    def _keep_best_or_average(self):
        """Ends on the best weights on dev (`restore_best`), or on their average if better.

        Without a dev set the average of the snapshots (`average_from`) is
        kept; with one, it is scored like an epoch and kept if it beats the
        best epoch on the monitored metric.
        """
        s, st = self.settings, self.state
        best = st["best"]
        if best is not None and s["restore_best"] and best["step"] != st["step"]:
            restore_model_weights(self.checkpoints.path(best["step"]), self.model)
            self.log(f"restored the best weights (epoch {best['epoch']}, "
                     f"{s['monitor']}={best['value']:.4f})")
        if self.averager is None or not self.averager.count:
            return
        kept = self.model.get_weights()
        self.model.set_weights(self.averager.average())
        name = f"average of {self.averager.count} snapshots"
        if self.dev is None:
            self.averaged = {"snapshots": self.averager.count}
            self.log(f"the model holds the {name} (no dev set to weigh it against the epochs)")
            return
        value = self.evaluate_dev()[s["monitor"]]
        self.averaged = {"snapshots": self.averager.count, "value": value}
        lower = s["monitor"] in LOWER_IS_BETTER
        if best is None or (value < best["value"] if lower else value > best["value"]):
            self.averaged["kept"] = True
            self.log(f"kept the {name} ({s['monitor']}={value:.4f})")
        else:
            self.model.set_weights(kept)
            self.log(f"the {name} ({s['monitor']}={value:.4f}) did not beat the best epoch")

    def _train_epoch(self, start, callbacks):
        s, st = self.settings, self.state
        self.batches.set_epoch(st["epoch"])
        n = len(self.batches)
        bar = keras.utils.Progbar(n, verbose=1 if self.verbose == 1 else 0,
                                  stateful_metrics=["loss", "token_accuracy", "perplexity"])
        if st["batch"]:
            bar.update(st["batch"])
        # The epoch's running sums live in the state, so a checkpoint in the middle
        # of an epoch carries them and a resumed epoch reports all its batches.
        sums = dict(st.get("epoch_sums") or {}) if st["batch"] else {}
        sums = {"loss": 0.0, "token_accuracy": 0.0, "weight": 0, **sums}
        for index in range(st["batch"], n):
            x, y = self.batches[index]
            for callback in callbacks:
                callback.on_train_batch_begin(index)
            logs = self.distribution.train_on_batch(self.model, x, y)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                self._stop_on_nan(loss)
            divergence.observe(st, loss, s["sane_loss_factor"])
            tokens = int(np.count_nonzero(y))
            sums["loss"] += loss * tokens
            sums["token_accuracy"] += float(logs.get("token_accuracy", float("nan"))) * tokens
            sums["weight"] += tokens
            st["step"] += 1
            st["batch"] = index + 1
            st["epoch_sums"] = dict(sums)
            running = _running(sums)
            bar.update(index + 1, list(running.items()))
            self._summary("train", {"loss": loss}, st["step"])
            for callback in callbacks:
                callback.on_train_batch_end(index, logs)
            every = s["checkpoint_every"]
            if every and st["step"] % every == 0 and index + 1 < n:
                st["seconds"] = time.time() - start
                self._save_checkpoint()
            if self.model.stop_training:
                break
        if sums["weight"] == 0:  # resumed at an epoch's end, from a checkpoint without sums
            return {}
        return {f"train_{k}": round(v, 6) for k, v in _running(sums).items()}

    def _stop_on_nan(self, loss):
        """Stops the run; names the last sane checkpoint (`seqzoo.training.divergence`)
        and marks the run so that `--resume` starts from it."""
        st = self.state
        sane = st.get("last_sane_step")
        if self.checkpoints is None:
            kept = ""
        elif sane is None:
            kept = (" No checkpoint was written while the loss was sane; --resume starts "
                    "again from the beginning.")
        else:
            kept = (f" The last good checkpoint (written while the loss was within "
                    f"sane_loss_factor={self.settings['sane_loss_factor']:g} of its lowest) "
                    f"is {self.checkpoints.path(sane)}; --resume goes on from it.")
        if self.checkpoints is not None:
            divergence.mark_diverged(self.checkpoints.directory, st, loss)
            self.record["last_good_checkpoint"] = sane and self.checkpoints.path(sane)
        self._write_record(f"stopped: loss {loss} at step {st['step'] + 1}")
        raise TrainingError(
            f"the training loss became {loss} at step {st['step'] + 1} (epoch "
            f"{st['epoch'] + 1}); stopped without saving.{kept} Try a lower learning_rate "
            "or clipnorm")

    def _after_epoch(self, entry):
        """Best-checkpoint bookkeeping, reduce-on-plateau, early stopping."""
        s, st = self.settings, self.state
        if self.dev is None:
            return False
        value = entry.get(s["monitor"])
        if value is None:
            return False
        lower = s["monitor"] in LOWER_IS_BETTER
        best = st["best"]
        if best is None or (value < best["value"] if lower else value > best["value"]):
            st["best"] = {"epoch": st["epoch"], "step": st["step"], "value": value}
            st["bad_epochs"] = st["plateau_wait"] = 0
            return False
        st["bad_epochs"] += 1
        st["plateau_wait"] += 1
        if s["schedule"] == "plateau" and st["plateau_wait"] > s["plateau_patience"]:
            lr = self.model.optimizer.learning_rate
            old = float(keras.ops.convert_to_numpy(lr))
            new = max(old * s["plateau_factor"], min(s["min_learning_rate"], old))
            lr.assign(new)
            st["plateau_wait"] = 0
            self.log(f"no improvement of {s['monitor']}: learning rate -> {new:.3g}")
        if s["early_stopping"] and st["bad_epochs"] >= s["patience"]:
            self.log(f"early stopping: {s['monitor']} has not improved for "
                     f"{st['bad_epochs']} epochs")
            return True
        return False

    def _save_checkpoint(self):
        if self.checkpoints is None:
            return
        st = self.state
        if self.budget is not None:  # a resumed run's schedule goes on where it was
            st["budget_share"] = self.budget.share()
        divergence.before_save(st, st["step"])
        sums = []
        if self.averager is not None:  # a resumed run averages the same snapshots
            st["averaging"], sums = self.averager.get_state()
        self.checkpoints.save(st["step"], self.model, self.model.optimizer, st,
                              protect=(st["best"] and st["best"]["step"],
                                       st.get("last_sane_step")), extra=sums)

    # -- evaluation -------------------------------------------------------------

    def evaluate_dev(self):
        """Teacher-forced loss, token accuracy, perplexity; decoded exact match, CER, WER, BLEU."""
        forced = self.distribution.evaluate(self.model, self.dev["batches"])
        result = {"dev_loss": forced["loss"], "dev_token_accuracy": forced["token_accuracy"],
                  "dev_perplexity": forced["perplexity"]}
        n = min(self.settings["dev_decode"], len(self.dev["sources"]))
        if n:
            result.update(self.decode_metrics(self.dev["sources"][:n], self.dev["targets"][:n]))
        self._summary("dev", result, self.state["step"])
        return {k: round(float(v), 6) for k, v in result.items()}

    def decode_metrics(self, source_ids, references):
        """Greedy-decodes `source_ids` and scores against reference texts."""
        from seqzoo.metrics import character_error_rate, word_error_rate

        outputs = []
        for i in range(0, len(source_ids), DECODE_BATCH):
            ids = self.model.search(pad_sequences(source_ids[i:i + DECODE_BATCH]),
                                    method="greedy")["ids"]
            outputs += [self.target_tokenizer.decode(row[0]) for row in ids]
        result = {
            "dev_exact_match": float(np.mean([o == r for o, r in zip(outputs, references)])),
            "dev_character_error_rate": character_error_rate(outputs, references),
            "dev_word_error_rate": word_error_rate(outputs, references),
        }
        if not isinstance(self.target_tokenizer, CharTokenizer):
            import sacrebleu

            result["dev_bleu"] = sacrebleu.corpus_bleu(outputs, [references]).score
        return result

    # -- records ----------------------------------------------------------------

    def _epoch_summary(self, entry):
        if not self.verbose:
            return
        keys = ("train_loss", "dev_loss", "dev_token_accuracy", "dev_exact_match",
                "dev_character_error_rate", "dev_bleu", "learning_rate")
        parts = [f"{k}={entry[k]:.4g}" for k in keys if k in entry]
        of = "" if self.settings["budget_minutes"] else f"/{self.settings['epochs']}"
        print(f"epoch {entry['epoch']}{of} (step {entry['step']}, "
              f"{entry['seconds']:.0f} s): " + ", ".join(parts), flush=True)

    def _write_record(self, status):
        if self.out is None:
            return
        st = self.state
        record = {
            "status": status, "preset": self.preset, "model_overrides": self.model_overrides,
            "settings": self.settings, **self.record, "steps": st["step"],
            "epochs_done": st["epoch"], "seconds": round(st["seconds"], 1), "best": st["best"],
            "history": st["history"], "backend": keras.backend.backend(),
            "averaged": self.averaged,
            **({"steps_by_minute": st["steps_by_minute"]} if "steps_by_minute" in st else {}),
            "versions": {"seqzoo": seqzoo.__version__, "keras": keras.__version__},
        }
        with atomic_write(os.path.join(self.out, "run.json")) as f:
            json.dump(record, f, indent=2)

    def _open_tensorboard(self):
        if not self.settings["tensorboard"] or self._writer is not None:
            return
        try:
            import tensorboard  # noqa: F401 (tf.summary needs it)
            import tensorflow as tf
        except ImportError as e:
            raise InputError(f"tensorboard=true needs the {e.name} package: pip install "
                             f"{e.name} (or seqzoo[tensorboard])") from None
        self._tf = tf
        self._writer = tf.summary.create_file_writer(os.path.join(self.out, "tensorboard"))

    def _summary(self, prefix, values, step):
        if self._writer is None:
            return
        with self._writer.as_default():
            for key, value in values.items():
                self._tf.summary.scalar(f"{prefix}/{key.removeprefix('dev_')}", value, step=step)
            if prefix == "train":
                self._tf.summary.scalar("train/learning_rate",
                                        learning_rate_of(self.model.optimizer), step=step)

    def _close_tensorboard(self):
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
