"""One G2P model trained with the trainer and scored (the recipe without an ensemble).

The recipe trains a Seq2Seq preset on every (word, pronunciation) pair of the
training words, decodes a dev subset greedily after every epoch and keeps the
weights with the best dev word error rate (or, with `average_from`, the
average of the weights of the last part of training, if that is better on
dev), then scores the test words with greedy and beam search.

With `--budget MINUTES` the model size comes from `BUDGET_SIZES` and the
training loop (dev evaluations included) stops in time; the learning rate
follows a cosine decay over the steps the budget will give, measured as the
run goes (`budget_schedule=steps`; `time` follows the clock), so the schedule
ends when the budget does on any machine. Without a budget, `FULL` trains a
larger model for a fixed number of epochs (cosine decay over the steps).
"""

import os
import time

import keras

import seqzoo
from seqzoo.data import BucketedBatches
from seqzoo.errors import InputError
from seqzoo.losses import SequenceLoss
from seqzoo.models.base import save_model
from seqzoo.recipes.g2p import dictionary
from seqzoo.recipes.g2p.decode import lengths, transcribe
from seqzoo.recipes.g2p.fit import StepFloor
from seqzoo.recipes.g2p.report import (
    load_average,
    machine,
    plot_dev_curve,
    score_test,
    write_results,
)
from seqzoo.recipes.g2p.runs import init_model, prepare
from seqzoo.recipes.g2p.settings import ALPHABET, check_preset
from seqzoo.text import CharTokenizer, WordTokenizer
from seqzoo.training.callbacks import DevMonitor
from seqzoo.training.config import resolve
from seqzoo.training.trainer import Trainer


def build_model(preset, settings, source_tokenizer, target_tokenizer):

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

    multiple = int(settings["pad_multiple"] or (8 if backend == "jax" else 1))
    size, buckets = int(settings["batch_size"]), int(settings["num_buckets"])
    # A slice too small to lose its partial batches keeps them.
    drop = multiple > 1 and len(sources) >= 2 * size * buckets
    return BucketedBatches(sources, targets, batch_size=size, num_buckets=buckets,
                           seed=settings["seed"], pad_to_multiple=multiple, drop_remainder=drop)


def dev_monitor(words, references, max_length, width, reverse=False, score_start=False):
    """A `DevMonitor` that decodes dev words greedily and keeps the weights of the best WER."""

    def evaluate(model):
        result = dictionary.score(transcribe(model, words, max_length=max_length, width=width,
                                             reverse=reverse), references)
        return {"dev_wer": result["wer"], "dev_per": result["per"]}

    return DevMonitor(evaluate, "dev_wer", score_start=score_start,
                      describe=lambda e: f"dev WER {100 * e['dev_wer']:.2f}%, PER "
                      f"{100 * e['dev_per']:.2f}% on {len(words)} words")


def train(model, train_pairs, monitor, settings, budget_minutes, verbose):
    """Trains `model` on `(word, pronunciation)` pairs with the trainer.

    The cosine schedule runs over the budget (or the steps); with
    `average_from`, the average of the last snapshots is scored on dev like
    an epoch, and the best weights on dev are kept.

    With a budget and `min_steps`, raises `fit.TooFewSteps` as soon as the
    measured pace projects fewer steps (`fit.StepFloor`).

    Returns:
        `(seconds, steps, averaged, marks, check)`: `averaged` is the dev
        entry of the averaged weights, or `None`; `marks`, with a budget, the
        steps done at each minute (`WallClockBudget.marks`), else `None`;
        `check`, the `min_steps` check that let the size stay
        (`StepFloor.projection`), or `None`.
    """
    sources = model.source_tokenizer.encode_batch([w for w, _ in train_pairs])
    targets = model.target_tokenizer.encode_batch([p for _, p in train_pairs])
    batches = training_batches(sources, targets, settings, keras.backend.backend())
    run_settings, _ = resolve([("recipe g2p", {
        "epochs": int(settings["epochs"]), "schedule": "cosine",
        "final_lr_ratio": float(settings["final_lr_ratio"]),
        "budget_minutes": budget_minutes, "budget_schedule": settings["budget_schedule"],
        "average_from": settings["average_from"],
        "average_every": int(settings["average_every"]), "seed": int(settings["seed"]),
        "clipnorm": settings["clipnorm"]})])
    model.compile(optimizer=keras.optimizers.Adam(float(settings["learning_rate"]),
                                                  global_clipnorm=settings["clipnorm"]),
                  loss=SequenceLoss(label_smoothing=float(settings["label_smoothing"])),
                  metrics=[])
    # The budget's clock starts before the monitor's first call, so that a dev
    # evaluation of the starting weights (`score_start`) counts in the budget.
    callbacks, floor = [monitor], None
    if budget_minutes is not None and settings["min_steps"]:
        floor = StepFloor(lambda: trainer.budget, settings["min_steps"])
        callbacks.append(floor)
    trainer = Trainer.for_model(model, batches, run_settings, callbacks=callbacks,
                                verbose=verbose)
    start = time.time()
    trainer.fit()
    seconds = time.time() - start
    averaged = None
    if trainer.averaged is not None:
        # The trainer left the averaged weights in the model: scored on dev
        # like an epoch, the better of them and the best epoch's is kept.
        averaged = monitor.evaluate(f"average of {trainer.averaged['snapshots']} snapshots",
                                    None, force=True, record=False)
    if monitor.best_weights is not None:
        model.set_weights(monitor.best_weights)
    return (seconds, monitor.steps, averaged, trainer.budget and trainer.budget.marks,
            floor and floor.projection)


def run_single(args, settings, preset, started, size_fit=None):
    """Trains one model and scores it (the recipe without an ensemble).

    `size_fit`: where this model took over from a size that would have got
    too few steps, what was measured (recorded in results.json; the record's
    budget is then that of the whole run, `args.budget` the time left).
    """

    loads = {"start": load_average()}
    settings = {**settings, "model": preset}
    lexicon, splits, data = prepare(args, print, settings["split_salt"])
    train_pairs = dictionary.pairs(lexicon, splits["train"])
    source_tok = CharTokenizer.build([ALPHABET])
    target_tok = WordTokenizer.build([p for _, p in train_pairs])
    max_length, width = lengths(lexicon, train_pairs)
    init = None
    if getattr(args, "init", None):
        model, init = init_model(args.init, settings, data, target_tok)
        print(f"starting from the weights of {args.init} ({init['train_steps']} steps, "
              f"{init['train_seconds'] / 60:.1f} min, dev WER {100 * init['best_dev_wer']:.2f}%)")
    else:
        model = build_model(preset, settings, source_tok, target_tok)
    dev_words = splits["dev"][: int(settings["dev_words"])]
    monitor = dev_monitor(dev_words, [lexicon[w] for w in dev_words], max_length, width,
                          reverse=bool(settings["reverse"]), score_start=init is not None)
    if settings["reverse"]:
        # Right to left: the model learns (and outputs) the phones reversed.
        train_pairs = [(w, dictionary.reverse_phones(p)) for w, p in train_pairs]
    print(f"training {preset} ({model.count_params()} parameters) on {len(train_pairs)} "
          f"pairs; " + ", ".join(f"{k}={v}" for k, v in settings.items())
          + (f"; budget {args.budget:g} min" if args.budget else ""))
    seconds, steps, averaged, marks, check = train(model, train_pairs, monitor, settings,
                                                   args.budget, args.verbose)
    loads["end_of_training"] = load_average()
    best = monitor.best
    kept = (f"the {best['epoch']}" if best is averaged
            else f"epoch {best['epoch']} (step {best['step']})")
    print(f"trained {steps} steps in {seconds / 60:.1f} min; best dev WER "
          f"{100 * best['dev_wer']:.2f}% with {kept}")
    def decode(words, beam):
        return transcribe(model, words, beam_size=beam, max_length=max_length, width=width,
                          reverse=bool(settings["reverse"]))

    test, examples = score_test(decode, lexicon, splits, settings, args.out)
    loads["end"] = load_average()
    save_model(model, os.path.join(args.out, "model.keras"))
    plot_dev_curve(monitor.history, os.path.join(args.out, "dev_wer.png"),
                   f"G2P on CMUdict: {preset}, dev WER by training time", averaged)
    record = {
        "task": "g2p-cmudict", "model": preset, "parameters": int(model.count_params()),
        "budget_minutes": size_fit["budget_minutes"] if size_fit else args.budget,
        "settings": settings, "data": data, **({"size_fit": size_fit} if size_fit else {}),
        **({"init": init} if init else {}),
        "train_seconds": round(seconds, 1), "train_steps": steps,
        **({"steps_by_minute": marks} if marks else {}),
        **({"size_check": check} if check else {}),
        "best_dev": best, "dev_history": monitor.history, "averaged_dev": averaged,
        "test": test, "examples": examples, "load_average": loads, "machine": machine(),
        "total_seconds": round(time.time() - started, 1),
    }
    write_results(args.out, record, "model.keras", started)
    return 0
