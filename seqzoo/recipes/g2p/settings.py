"""The settings of `seqzoo recipe g2p`: model sizes by budget, `--set` types, presets."""

from seqzoo.errors import InputError
from seqzoo.models.registry import PRESETS
from seqzoo.training.config import parse_settings

ALPHABET = "abcdefghijklmnopqrstuvwxyz'"
EXAMPLES = ("hello", "machine", "sequence", "zoo", "keras", "phoneme", "tensorflow",
            "pronunciation")


# (largest budget in minutes, settings); a budget above the last row gets
# the last. On a 2-core CPU (docs/results/g2p.md#one-model-or-two-members-by-budget)
# the one small model and the two members below scored level on dev at 10
# minutes (27.85% and 28.00% WER) and the members 2.7 points better at 20.
BUDGET_SIZES = (
    (10, dict(units=128, embedding_dim=64, decoder_units=128, num_layers=1, dropout=0.1,
              batch_size=64, learning_rate=3e-3)),
    # Over 10 minutes: two members side by side, one per core where there
    # are two (`ensemble`), one reading left to right and one right to left,
    # decoded by rescoring; each a two-layer encoder and a one-layer decoder
    # (a second encoder layer scores better on dev in the same time), with
    # dropout on the embeddings, between the encoder layers and on the
    # decoder output, label smoothing and weight averaging. Dev-set
    # comparisons of these choices: docs/results/g2p.md.
    # The members need steps: level with the one model at about 5,900 steps
    # each, 2.7 points ahead at 10,400. Where the pace they measure as they
    # train projects fewer than `min_steps`, the recipe trains the first
    # row's model for the time left instead (`seqzoo.recipes.g2p.fit`).
    (float("inf"), dict(ensemble=2, reversed_members=1, units=192, embedding_dim=96,
                        decoder_units=192, num_layers=2, decoder_layers=1, dropout=0.2,
                        embedding_dropout=0.1, label_smoothing=0.1, average_from=0.8,
                        batch_size=64, learning_rate=3e-3, min_steps=6000)),
)

# The settings that choose a model's size: overriding one (or `--model`,
# `--init`) keeps the size chosen, with no `min_steps` check unless set too.
SIZE = ("model", "ensemble", "reversed_members", "cell", "units", "embedding_dim",
        "decoder_units", "num_layers", "decoder_layers")


# No budget: the full model for a fixed number of epochs.
FULL = dict(units=384, embedding_dim=256, decoder_units=384, num_layers=2, dropout=0.3,
            embedding_dropout=0.2, label_smoothing=0.1, average_from=0.8,
            batch_size=64, learning_rate=2e-3, epochs=40)


# Settings every run has (a budget's or `FULL`'s come over them).
COMMON = dict(model="seq2seq_luong", ensemble=1, reverse=False, reversed_members=0, cell="lstm",
              final_lr_ratio=0.02, epochs=None, dev_words=2000, beam_size=5, seed=0,
              clipnorm=5.0, num_buckets=8, embedding_dropout=0.0, decoder_layers=None,
              label_smoothing=0.0, average_from=None, average_every=200, pad_multiple=None,
              budget_schedule="steps", split_salt="", min_steps=0)


# The type of every setting, for `--set KEY=VALUE` (`seqzoo.training.config.check_value`).
TYPES = {
    "model": ("str",), "ensemble": ("int", 1), "reverse": ("bool",),
    "reversed_members": ("int", 0), "cell": ("choice", ("lstm", "gru")),
    "final_lr_ratio": ("fraction",), "epochs": ("opt-int", 1), "dev_words": ("int", 1),
    "beam_size": ("int", 1), "seed": ("int", 0), "clipnorm": ("opt-float",),
    "num_buckets": ("int", 1), "embedding_dropout": ("fraction",),
    "decoder_layers": ("opt-int", 1), "label_smoothing": ("fraction",),
    "average_from": ("opt-fraction",), "average_every": ("int", 1),
    "pad_multiple": ("opt-int", 1), "units": ("int", 1), "embedding_dim": ("int", 1),
    "decoder_units": ("int", 1), "num_layers": ("int", 1), "dropout": ("fraction",),
    "batch_size": ("int", 1), "learning_rate": ("number",),
    "budget_schedule": ("choice", ("steps", "time")), "split_salt": ("text",),
    "min_steps": ("int", 0),
}


def settings_for(budget_minutes, overrides=(), size_chosen=False):
    """The training settings for a budget (or `FULL`), with `KEY=VALUE` overrides (`TYPES`).

    `size_chosen`: the size was chosen outside the settings (`--model`,
    `--init`); like an override of a `SIZE` key, it turns the `min_steps`
    check off unless `min_steps` is given too.
    """
    if budget_minutes is None:
        row = FULL
    else:
        if not budget_minutes > 0:
            raise InputError(f"expected --budget > 0 minutes. Received: {budget_minutes}")
        row = next(s for limit, s in BUDGET_SIZES if budget_minutes <= limit)
    chosen, given = _with_overrides(row, budget_minutes is not None, overrides)
    if "min_steps" not in given and (size_chosen or any(key in given for key in SIZE)):
        chosen["min_steps"] = 0
    if chosen["min_steps"] and (budget_minutes is None or budget_minutes <= BUDGET_SIZES[0][0]):
        raise InputError(f"--set min_steps={chosen['min_steps']}: the check of the steps a "
                         f"budget gives needs --budget over {BUDGET_SIZES[0][0]:g} minutes, "
                         "where a smaller model can take over")
    return chosen


def smallest_settings(overrides=()):
    """The settings of the budgets' smallest model (`BUDGET_SIZES`' first row) with the
    overrides, as one model trained until the clock stops it, with no `min_steps`."""
    chosen, _ = _with_overrides(BUDGET_SIZES[0][1], True, overrides)
    chosen.update(ensemble=1, reversed_members=0, reverse=False, min_steps=0)
    return chosen


def _with_overrides(row, budgeted, overrides):
    """`COMMON` under a row of settings under the overrides (with a budget, the
    clock stops training); returns them and the overrides parsed."""
    chosen = {**COMMON, **row}
    if budgeted and chosen["epochs"] is None:
        chosen["epochs"] = 10000
    given = parse_settings(overrides, TYPES)
    return {**chosen, **given}, given


# The settings that make up a model's architecture: a run started from
# another run's weights (`--init`) must have the same.
ARCHITECTURE = ("model", "cell", "units", "embedding_dim", "decoder_units", "num_layers",
                "decoder_layers", "dropout", "embedding_dropout", "reverse")


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

    if PRESETS.get(preset, {}).get("class") != "Seq2Seq":
        names = sorted(name for name, p in PRESETS.items() if p["class"] == "Seq2Seq")
        raise InputError(f"expected a seq2seq preset, one of {names}. Received: --model {preset}")
