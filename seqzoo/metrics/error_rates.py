"""Edit-distance error rates on lists of sequences (plain Python).

The distance is the Levenshtein distance (substitutions, insertions and
deletions all cost 1) computed by the `editdistance` package.
"""

import editdistance

from seqzoo.errors import ArgumentError


def edit_distance(hypothesis, reference):
    """Levenshtein distance between two sequences of hashable tokens (or strings)."""
    return int(editdistance.eval(list(hypothesis), list(reference)))


def error_rate(hypotheses, references):
    """Corpus error rate: total edit distance over total reference length.

    Use it on token lists for phone (PER) or subword error rates.

    Args:
        hypotheses: list of token sequences (lists, tuples or strings).
        references: list of token sequences, as many as `hypotheses`.

    Returns:
        A float: `sum(edit_distance(h, r)) / sum(len(r))`. It can exceed 1
        when hypotheses are much longer than references.
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ArgumentError(
            f"Expected as many hypotheses as references. Received: "
            f"{len(hypotheses)} hypotheses and {len(references)} references"
        )
    total = sum(len(r) for r in references)
    if total == 0:
        raise ArgumentError(
            "Expected at least one reference token; received "
            f"{len(references)} empty references"
        )
    return sum(edit_distance(h, r) for h, r in zip(hypotheses, references)) / total


def character_error_rate(hypotheses, references):
    """Error rate over the characters of strings (CER)."""
    return error_rate([str(h) for h in hypotheses], [str(r) for r in references])


def word_error_rate(hypotheses, references):
    """Error rate over whitespace-separated words of strings (WER, as in ASR)."""
    return error_rate([h.split() for h in hypotheses], [r.split() for r in references])

