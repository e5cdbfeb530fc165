"""Settings of a training run: defaults, a JSON config file, and `--set key=value`.

A run's settings are one flat dict. Model hyperparameters go under
`model.<argument>` (e.g. `model.units=256`) and override the preset's.
Unknown keys, wrong types and bad values get an `InputError` that names the
key, where it came from and what is expected.
"""

import json
import math
import os

from seqzoo.errors import InputError

SCHEDULES = ("constant", "exponential", "warmup", "plateau", "cosine")
TOKENIZERS = ("char", "word", "sentencepiece")

DEFAULTS = {
    # tokenizers
    "tokenizer": "char",
    "target_tokenizer": None,
    "vocab_size": 8000,
    "min_freq": 1,
    "shared_vocabulary": False,
    "sentencepiece_type": "unigram",
    # data; pairs of more tokens on either side are skipped and counted in the
    # run's summary (null: no bound; a batch's memory grows with its longest pair)
    "max_length": 1000,
    "batch_size": 64,
    "num_buckets": 4,
    # optimization
    "epochs": 10,
    "learning_rate": 1e-3,
    "schedule": "constant",
    "decay_rate": 0.5,
    "decay_steps": 1000,
    "warmup_steps": 500,
    "plateau_factor": 0.5,
    "plateau_patience": 1,
    "min_learning_rate": 1e-6,
    "clipnorm": 5.0,
    "clipvalue": None,
    # average the gradients of this many batches before each update (1: none)
    "accumulate": 1,
    # null (float32), "auto", "float16" or "bfloat16": seqzoo.training.precision
    "mixed_precision": None,
    # cosine: decay to final_lr_ratio of the rate over the steps, or over the budget
    "final_lr_ratio": 0.02,
    # a wall-clock budget for training, dev evaluations included (minutes)
    "budget_minutes": None,
    # what the cosine schedule of a budget follows: "steps", the share of the steps the
    # budget will give at the pace measured as training goes, or "time", the share spent
    "budget_schedule": "steps",
    # the mean of the weights every average_every steps from this share of training on
    "average_from": None,
    "average_every": 200,
    # evaluation, early stopping, checkpoints
    "monitor": "dev_loss",
    "early_stopping": False,
    "patience": 3,
    "restore_best": True,
    "dev_decode": 500,
    "checkpoint_every": 0,
    "keep_checkpoints": 3,
    # a checkpoint is sane while the smoothed loss is within this factor of its lowest
    "sane_loss_factor": 10.0,
    "tensorboard": False,
    "seed": 0,
    "distribute": None,
}

# What each key must be; "opt" prefixes a type that also admits None.
_TYPES = {
    "tokenizer": ("choice", TOKENIZERS), "target_tokenizer": ("opt-choice", TOKENIZERS),
    "vocab_size": ("int", 5), "min_freq": ("int", 1), "shared_vocabulary": ("bool",),
    "sentencepiece_type": ("choice", ("unigram", "bpe", "char", "word")),
    "max_length": ("opt-int", 1), "batch_size": ("int", 1), "num_buckets": ("int", 1),
    "epochs": ("int", 1), "learning_rate": ("float",), "schedule": ("choice", SCHEDULES),
    "decay_rate": ("float",), "decay_steps": ("int", 1), "warmup_steps": ("int", 0),
    "plateau_factor": ("float",), "plateau_patience": ("int", 0),
    "min_learning_rate": ("float",), "clipnorm": ("opt-float",), "clipvalue": ("opt-float",),
    "accumulate": ("int", 1),
    "mixed_precision": ("opt-choice", ("auto", "float16", "bfloat16")),
    "final_lr_ratio": ("fraction",), "budget_minutes": ("opt-float",),
    "budget_schedule": ("choice", ("steps", "time")),
    "average_from": ("opt-fraction",), "average_every": ("int", 1),
    "monitor": ("str",), "early_stopping": ("bool",), "patience": ("int", 0),
    "restore_best": ("bool",), "dev_decode": ("int", 0), "checkpoint_every": ("int", 0),
    "keep_checkpoints": ("int", 1), "sane_loss_factor": ("float",), "tensorboard": ("bool",),
    "seed": ("int", 0),
    "distribute": ("opt-choice", ("mirrored", "multiworker")),
}

# Dev metrics a run can monitor; the ones where lower is better.
MONITORS = ("dev_loss", "dev_perplexity", "dev_token_accuracy", "dev_exact_match",
            "dev_character_error_rate", "dev_word_error_rate", "dev_bleu")
# The ones measured by decoding the first `dev_decode` dev sentences.
DECODED = ("dev_exact_match", "dev_character_error_rate", "dev_word_error_rate", "dev_bleu")
LOWER_IS_BETTER = ("dev_loss", "dev_perplexity", "dev_character_error_rate",
                   "dev_word_error_rate")


def parse_value(text):
    """`--set` values: JSON where they parse (numbers, true/false/null, lists), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignments(assignments):
    """`["a=1", "model.units=64"]` -> `{"a": 1, "model.units": 64}`."""
    result = {}
    for item in assignments or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=5")
        result[key.strip()] = parse_value(value.strip())
    return result


def parse_settings(assignments, types, where="--set"):
    """`["key=value", ...]` -> `{key: value}`, each value checked against `types`.

    The one `--set` parser of seqzoo's commands (`seqzoo train` and
    `finetune` go through `resolve`, which adds `model.<argument>` keys).

    Raises:
        InputError: not `KEY=VALUE`, an unknown key (the message lists the
            known ones), or a value of the wrong type (naming the key and the
            type expected).
    """
    values = parse_assignments(assignments)
    raw = {key.strip(): text.strip() for key, _, text in
           (item.partition("=") for item in assignments or ())}
    for key, value in values.items():
        if key not in types:
            raise InputError(f"{where} {key}=...: unknown setting {key!r}; expected one of "
                             f"{sorted(types)}")
        # A text setting is the text as given: `--set salt=1.50` is "1.50".
        values[key] = check_value(key, raw[key] if types[key][0] == "text" else value, where,
                                  types)
    return values


def read_config_file(path):
    """The settings of a JSON config file (a flat object; `"model": {...}` also accepted)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: config file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        line = getattr(e, "lineno", None)
        raise InputError(f"{path}{':' + str(line) if line else ''}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of settings")
    flat = {}
    for key, value in data.items():
        if key == "model" and isinstance(value, dict):
            flat.update({f"model.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def check_value(key, value, where, types=None):
    """`value` checked against the type of `key` in `types` (default: the run settings').

    Types: `("int", minimum)`, `("float",)` (finite and positive),
    `("fraction",)` (`0 <= x < 1`), `("number",)` (finite, `>= 0`), `("bool",)`, `("str",)`,
    `("text",)` (a string, or an integer from a JSON file, returned as a string),
    `("choice", options)`; an `"opt-"` prefix also admits `None`.

    Raises:
        InputError: naming `where`, the key, the value and what was expected.
    """
    kind, *extra = (types or _TYPES)[key]
    if value is None and kind.startswith("opt-"):
        return value
    kind = kind.removeprefix("opt-")
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= extra[0],
        "float": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                            and math.isfinite(v) and v > 0),
        "fraction": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                               and 0 <= v < 1),
        "number": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                             and math.isfinite(v) and v >= 0),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "text": lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
        "choice": lambda v: v in extra[0],
    }[kind](value)
    if not ok:
        expected = {"int": lambda: f"an integer >= {extra[0]}",
                    "float": lambda: "a positive number",
                    "fraction": lambda: "a number in [0, 1)",
                    "number": lambda: "a finite number >= 0", "bool": lambda: "true or false",
                    "str": lambda: "a string",
                    "text": lambda: "a string or an integer",
                    "choice": lambda: f"one of {list(extra[0])}"}[kind]()
        raise InputError(f"{where}: {key}={value!r}; expected {expected}")
    if kind == "text":
        return str(value)
    return float(value) if kind in ("float", "fraction", "number") else value


def resolve(sources, model_arguments=None):
    """Merges settings over the defaults and checks them.

    Args:
        sources: `[(where, {key: value})]`, later ones win; `where` names the
            origin in errors (a config file's path, `--set`, an option).
        model_arguments: the valid `model.<name>` arguments, or `None` to
            accept any.

    Returns:
        `(settings, model_overrides)`.
    """
    settings, overrides, given = dict(DEFAULTS), {}, set()
    for where, values in sources:
        given |= set(values)
        for key, value in values.items():
            if key.startswith("model."):
                name = key[len("model."):]
                if model_arguments is not None and name not in model_arguments:
                    raise InputError(f"{where}: unknown model argument {name!r}; expected one "
                                     f"of {sorted(model_arguments)}")
                overrides[name] = value
            elif key in DEFAULTS:
                settings[key] = check_value(key, value, where)
            else:
                raise InputError(f"{where}: unknown setting {key!r}; expected one of "
                                 f"{sorted(DEFAULTS)} or model.<argument>")
    if settings["monitor"] not in MONITORS:
        raise InputError(f"monitor={settings['monitor']!r}; expected one of {list(MONITORS)}")
    if settings["monitor"] in DECODED and not settings["dev_decode"]:
        raise InputError(f"monitor={settings['monitor']} is measured by decoding dev "
                         "sentences; dev_decode=0 decodes none (expected dev_decode >= 1)")
    if settings["clipvalue"] is not None and "clipnorm" not in given:
        settings["clipnorm"] = None  # clipping by value replaces the default norm clipping
    if settings["accumulate"] > 1 and settings["distribute"]:
        raise InputError("accumulate > 1 with distribute is not supported: on several "
                         "devices, raise batch_size instead")
    if settings["clipnorm"] is not None and settings["clipvalue"] is not None:
        raise InputError("clipnorm and clipvalue are both set; expected one (set the other "
                         "to null)")
    if settings["sane_loss_factor"] <= 1:
        raise InputError(f"sane_loss_factor={settings['sane_loss_factor']}; expected a "
                         "number > 1")
    if settings["schedule"] == "plateau" and not 0 < settings["plateau_factor"] < 1:
        raise InputError(f"plateau_factor={settings['plateau_factor']}; expected 0 < x < 1")
    return settings, overrides
