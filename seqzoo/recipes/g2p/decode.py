"""Decoding words with G2P models: batches of one shape, ensembles, rescoring both directions."""

import os

import numpy as np

from seqzoo.data import pad_sequences
from seqzoo.models.ensemble import Seq2SeqEnsemble
from seqzoo.recipes.g2p import dictionary
from seqzoo.recipes.g2p.settings import EXAMPLES


def transcribe(model, words, beam_size=1, max_length=32, width=None, batch_size=256,
               reverse=False, n_best=1):
    """The pronunciations (phone strings) a model gives `words`, in order.

    Every search call gets the shape `[batch_size, width]` (the last batch
    is filled up with repeats; `width` defaults to the longest word), so XLA
    and JAX compile it once per method. Words are decoded in order of
    length, so that batches end together. `reverse=True` is for a model
    trained on reversed phone sequences (right to left): its outputs are
    turned back. With `n_best > 1` each word gets the list of its `n_best`
    beam hypotheses, best first.
    """

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
                texts = [dictionary.reverse_phones(text) for text in texts]
            outputs[i] = texts if n_best > 1 else texts[0]
    return outputs


def rescore(members, words, candidates, width, max_length, batch_size=512):
    """The candidate of each word with the highest summed log-probability.

    Args:
        members: `(model, reverse)` pairs; a right-to-left model
            (`reverse=True`) scores the reversed phones.
        words: the source words.
        candidates: one list of candidate pronunciations per word (phone
            strings, left to right), e.g. the n-best lists of models that
            read in both directions.
        width, max_length: the fixed source width and the longest output,
            so that every call has one shape.

    Returns:
        One pronunciation per word: the candidate with the largest sum over
        the members of `log P(candidate | word)`; ties go to the first.
    """

    flat = [(i, c) for i, cands in enumerate(candidates) for c in dict.fromkeys(cands)]
    totals = np.zeros(len(flat))
    for model, reverse in members:
        sources = model.source_tokenizer.encode_batch(list(words))
        for start in range(0, len(flat), batch_size):
            chunk = flat[start:start + batch_size]
            rows = [sources[i] for i, _ in chunk]
            targets = [model.target_tokenizer.encode(dictionary.reverse_phones(c) if reverse else c)
                       for _, c in chunk]
            filler = batch_size - len(chunk)
            scores = model.sequence_log_probs(
                pad_sequences(rows + [rows[-1]] * filler, maxlen=width),
                targets + [targets[-1]] * filler, target_length=max_length + 1)
            totals[start:start + len(chunk)] += scores[:len(chunk)]
    best = {}
    for (i, candidate), total in zip(flat, totals):
        if i not in best or total > best[i][0]:
            best[i] = (total, candidate)
    return [best[i][1] for i in range(len(words))]


def ensemble_decoder(folders, reverse, max_length, width):
    """`decode(words, beam_size)` for the saved members in `folders`.

    Members that read the same way decode as one `Seq2SeqEnsemble` (the
    mean of their log-probabilities at every step). With members of both
    directions, each direction's ensemble proposes its `beam_size` best
    pronunciations (greedy: its one), and `rescore` picks the candidate
    with the highest log-probability summed over all members, the
    left-to-right and right-to-left models agreeing on a whole output.
    """

    models = [Seq2SeqEnsemble.load([os.path.join(f, "model.keras")]).models[0]
              for f in folders]
    groups = {}
    for model, rev in zip(models, reverse):
        groups.setdefault(rev, []).append(model)
    groups = {rev: Seq2SeqEnsemble(group) for rev, group in groups.items()}
    if len(groups) == 1:
        (rev, ensemble), = groups.items()
        return lambda words, beam: transcribe(ensemble, words, beam_size=beam,
                                              max_length=max_length, width=width, reverse=rev)

    def decode(words, beam):
        candidates = [[] for _ in words]
        for rev, ensemble in groups.items():
            found = transcribe(ensemble, words, beam_size=beam, max_length=max_length,
                               width=width, reverse=rev, n_best=beam)
            for mine, theirs in zip(candidates, found):
                mine.extend(theirs if beam > 1 else [theirs])
        return rescore(list(zip(models, reverse)), words, candidates, width, max_length)

    return decode


def lengths(lexicon, train_pairs):
    """`(max_length, width)`: the longest output to decode and the one source width."""
    max_length = max(len(p.split()) for _, p in train_pairs) + 4
    # One source width for every decoding call (see `transcribe`).
    width = max(len(w) for w in list(lexicon) + list(EXAMPLES))
    return max_length, width
