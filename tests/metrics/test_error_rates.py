import pytest

from seqzoo.metrics import character_error_rate, edit_distance, error_rate, word_error_rate


def test_edit_distance_counts_substitutions_insertions_deletions():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance(["AH", "B"], ["AH", "B"]) == 0
    assert edit_distance([], ["K", "AE", "T"]) == 3


def test_corpus_rate_is_total_distance_over_total_reference_length():
    # distances 1 and 2 over reference lengths 4 and 6.
    assert error_rate(["abcx", "ab"], ["abcd", "abcdef"]) == pytest.approx((1 + 4) / 10)
    assert character_error_rate(["hallo"], ["hello"]) == pytest.approx(1 / 5)


def test_word_error_rate_splits_on_whitespace():
    wer = word_error_rate(["the cat sat", "hi"], ["the cat sat down", "hi"])
    assert wer == pytest.approx(1 / 5)


def test_phone_sequences_are_tokens_not_characters():
    assert error_rate([["HH", "AH", "L"]], [["HH", "EH", "L", "OW"]]) == pytest.approx(2 / 4)


def test_mismatched_counts_and_empty_references_are_errors():
    with pytest.raises(ValueError, match="2 hypotheses and 1 references"):
        error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty references"):
        error_rate(["a"], [""])
