"""The letter-sorting data: random lowercase words and their sorted letters.

Everything is generated from a seed with numpy's `Generator`, so the same
arguments always give the same files. The shipped data in `data/` was made
with `seqzoo demo sort --make-data` and its defaults.
"""

import os

import numpy as np

from seqzoo.errors import ArgumentError, DataError, InputError
from seqzoo.io import atomic_write

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
SPLITS = ("train", "dev", "test")
DEFAULT_SIZES = {"train": 10000, "dev": 1000, "test": 2000}


def sort_letters(word):
    """The target of a word: its letters in alphabetical order."""
    return "".join(sorted(word))


def random_words(count, min_length, max_length, rng, exclude=()):
    """`count` random lowercase words with lengths uniform in `[min_length, max_length]`.

    Words in `exclude` are redrawn while the words of that length are not
    nearly exhausted (fewer than 26**length / 4 distinct words excluded), so
    held-out sets hold unseen words wherever the length allows.
    """
    if not 1 <= min_length <= max_length:
        raise ArgumentError("Expected 1 <= min_length <= max_length. Received: "
                            f"min_length={min_length}, max_length={max_length}")
    exclude = set(exclude)
    excluded_by_length = {}
    for word in exclude:
        excluded_by_length[len(word)] = excluded_by_length.get(len(word), 0) + 1
    words = []
    while len(words) < count:
        length = int(rng.integers(min_length, max_length + 1))
        word = "".join(rng.choice(list(ALPHABET), size=length))
        can_avoid = excluded_by_length.get(length, 0) < 26**length / 4
        if word in exclude and can_avoid:
            continue
        words.append(word)
    return words


def split_paths(directory, split):
    """`(source, target)` file paths of a split: `letters_source.txt` for train,
    `letters_{split}_source.txt` otherwise."""
    prefix = "letters" if split == "train" else f"letters_{split}"
    return (os.path.join(directory, f"{prefix}_source.txt"),
            os.path.join(directory, f"{prefix}_target.txt"))


def make_data(directory, min_length=1, max_length=8, sizes=None, test_max_length=None,
              seed=0):
    """Writes train/dev/test files of words and their sorted forms.

    Args:
        directory: where to write (created if needed).
        min_length, max_length: word lengths of the training and dev sets.
        sizes: words per split, default `{"train": 10000, "dev": 1000,
            "test": 2000}`.
        test_max_length: longest test word (default `max_length`); longer
            test words measure how far a model generalises.
        seed: the random seed.

    Returns:
        A dict of split -> number of words written.
    """
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    test_max_length = test_max_length or max_length
    rng = np.random.default_rng(seed)
    train = random_words(sizes["train"], min_length, max_length, rng)
    dev = random_words(sizes["dev"], min_length, max_length, rng, exclude=train)
    test = random_words(sizes["test"], min_length, test_max_length, rng,
                        exclude=set(train) | set(dev))
    for split, words in zip(SPLITS, (train, dev, test)):
        source_path, target_path = split_paths(directory, split)
        with atomic_write(source_path) as f:
            f.write("".join(w + "\n" for w in words))
        with atomic_write(target_path) as f:
            f.write("".join(sort_letters(w) + "\n" for w in words))
    return {split: sizes[split] for split in SPLITS}


def load_split(directory, split):
    """Reads a split; checks every target is the sorted source.

    Returns:
        `(sources, targets)` lists of strings.

    Raises:
        FileNotFoundError: a file is missing (with a hint to make the data).
        DataError: mismatched files or a wrong target (file and line).
    """
    from seqzoo.data import read_parallel

    source_path, target_path = split_paths(directory, split)
    for path in (source_path, target_path):
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"letter-sorting {split} file not found: {path} "
                "(make it with: seqzoo demo sort --make-data --data-dir DIR)")
    corpus = read_parallel(source_path, target_path, on_empty="error")
    for source, target, line in zip(corpus.sources, corpus.targets, corpus.line_numbers):
        if sort_letters(source) != target:
            raise DataError(f"target {target!r} is not the sorted source {source!r}",
                            path=target_path, line=line)
    return corpus.sources, corpus.targets


def check_words(words, vocabulary):
    """Raises `InputError` naming each word with characters outside `vocabulary`."""
    problems = []
    for word in words:
        bad = sorted({c for c in word if c not in vocabulary})
        if not word:
            problems.append("an empty word")
        elif bad:
            problems.append(f"{word!r} has {', '.join(repr(c) for c in bad)}")
    if problems:
        raise InputError("cannot sort these words: " + "; ".join(problems) +
                         f". The model knows only the letters {''.join(sorted(vocabulary))!r}.")


__all__ = ["ALPHABET", "check_words", "load_split", "make_data", "random_words", "sort_letters",
           "split_paths"]
