"""An estimate of the memory a run's largest batch needs, made before training starts.

The estimate counts the two tensors of a seq2seq training step that grow
with the product of lengths: the output logits (`batch x target_length x
vocabulary`, or the sampled classes with `num_sampled`) and the attention
scores (`batch x target_length x source_length`), for the batch that holds
the pair with the largest product of lengths, at `batch_size` rows. These
are float32 values, kept for the backward pass along with their gradients
and softmax outputs, so a training step needs about `KEPT` times them.

The trainer refuses to start when the forward tensors alone would exceed
the machine's physical memory (the step could not finish), and warns, in the
log and in `run.json`, when the estimate exceeds half of the memory
available now.
"""

import os

from seqzoo.errors import InputError

KEPT = 3
BYTES = 4


def physical_memory():
    """`(total, available)` bytes of this machine's memory, or `(None, None)`."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None, None


def largest_batch_bytes(source_ids, target_ids, settings, model_config):
    """The forward tensors' bytes (logits and attention) of the largest batch, its rows,
    and the `(source, target)` lengths of its longest pair.

    The longest pair's batch holds `batch_size` rows, or fewer when its bucket (the
    longest `1 / num_buckets` of the pairs) holds fewer pairs.
    """
    if not source_ids:
        return 0, 0, (0, 0)
    index = max(range(len(source_ids)),
                key=lambda i: len(source_ids[i]) * (len(target_ids[i]) + 1))
    source, target = len(source_ids[index]), len(target_ids[index]) + 1
    classes = model_config.get("num_sampled") or model_config["target_vocab_size"]
    attention = source if model_config.get("attention") else 0
    rows = min(settings["batch_size"], -(-len(source_ids) // settings["num_buckets"]))
    return rows * target * (classes + attention) * BYTES, rows, (source, target - 1)


def check(source_ids, target_ids, settings, model_config, log=print, memory=None):
    """Refuses (`InputError`) a run whose largest batch cannot fit in memory; returns the
    estimate for the run's record, with a warning line logged when it is large."""
    forward, rows, (source, target) = largest_batch_bytes(source_ids, target_ids, settings,
                                                          model_config)
    total, available = memory or physical_memory()
    estimate = {"bytes": KEPT * forward, "longest_pair": [source, target]}
    if total is None or not forward:
        return estimate
    gib = 2**30
    what = (f"the largest batch ({rows} rows as long as the pair of "
            f"{source} source and {target} target tokens) needs about "
            f"{KEPT * forward / gib:.1f} GiB for its logits and attention")
    if forward > total:
        raise InputError(f"{what}, more than this machine's {total / gib:.1f} GiB; lower "
                         f"max_length (now {settings['max_length'] or 'null'}) or batch_size")
    if KEPT * forward > available / 2:
        estimate["warning"] = f"{what}, over half of the {available / gib:.1f} GiB available"
        log(f"warning: {estimate['warning']}; lower max_length or batch_size if it runs "
            "out of memory")
    return estimate
