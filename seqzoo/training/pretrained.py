"""Pre-trained word vectors for a training run: read, set, reported, frozen for a while.

A run's `embeddings` spec (what `seqzoo train` / `seqzoo finetune` store in
`config.json`) is a dict: `source` and `target` (a vectors file or `None`),
`format` (see `seqzoo.text.embeddings`), `freeze` (bool) and
`unfreeze_after` (epochs, or `None` to keep them frozen for the whole run).
"""

import collections

from seqzoo.errors import InputError
from seqzoo.text.embeddings import FORMATS
from seqzoo.training.freezing import FreezeFor

SIDES = ("source", "target")


def check_spec(spec):
    """Returns `spec` (a dict as above, or `None`) or raises `InputError` naming the flag."""
    if not spec:
        return None
    if not any(spec.get(side) for side in SIDES):
        if spec.get("freeze") or spec.get("unfreeze_after") is not None:
            raise InputError("--freeze-embeddings needs --source-embeddings or "
                             "--target-embeddings")
        return None
    if spec.get("format", "auto") not in FORMATS:
        raise InputError(f"--embeddings-format {spec['format']!r}: expected one of {FORMATS}")
    after = spec.get("unfreeze_after")
    if after is not None:
        if not spec.get("freeze"):
            raise InputError("--unfreeze-embeddings-after needs --freeze-embeddings")
        if isinstance(after, bool) or not isinstance(after, int) or after <= 0:
            raise InputError(f"--unfreeze-embeddings-after: expected a positive number of "
                             f"epochs. Received: {after!r}")
    return spec


def token_counts(tokenizer, id_lists):
    """`{token: count}` over the encoded training data, to rank missing words."""
    counts = collections.Counter(i for ids in id_lists for i in ids)
    return {tokenizer.id_to_token(i): n for i, n in counts.items()}


def load_pretrained(model, spec, data, log=print):
    """Sets the model's embeddings from the spec's files; returns `{side: report}`.

    Args:
        model: a `Seq2Seq` with its tokenizers.
        spec: the run's embeddings spec.
        data: `{side: encoded training sequences}`, for the missing words' counts.
        log: where the one-line reports go.
    """
    reports = {}
    for side in SIDES:
        path = spec.get(side)
        if not path:
            continue
        tokenizer = getattr(model, f"{side}_tokenizer")
        loaded = model.set_embeddings(path, side=side, format=spec.get("format", "auto"),
                                      counts=token_counts(tokenizer, data[side]))
        log(f"{side} {loaded.summary()}")
        reports[side] = loaded.report
    return reports


def freeze_callback(spec, batches_per_epoch, total_steps):
    """`(FreezeFor callback, {"parts", "steps"})` for the spec, or `(None, None)`."""
    if not spec or not spec.get("freeze"):
        return None, None
    after = spec.get("unfreeze_after")
    steps = total_steps if after is None else min(after * batches_per_epoch, total_steps)
    parts = [f"{side}_embedding" for side in SIDES if spec.get(side)]
    return FreezeFor(steps, parts), {"parts": parts, "steps": steps}
