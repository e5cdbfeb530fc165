"""The tokenizer interface, character and word tokenizers, and tokenizer files.

Every tokenizer maps text to ids that honour the special ids of
`seqzoo.text.specials` (PAD=0, UNK=1, BOS=2, EOS=3). Text never encodes to
PAD, BOS or EOS: those come only from `add_bos`/`add_eos` and from padding.
"""

import abc
import json
import os

import numpy as np

from seqzoo.errors import ArgumentError, SeqzooError, TokenizerError
from seqzoo.io import atomic_write, check_file, read_lines
from seqzoo.text.specials import BOS_ID, EOS_ID, NUM_SPECIAL, PAD_ID, UNK_ID
from seqzoo.text.vocabulary import Vocabulary

_REGISTRY = {}


def _check_text(text, name="text"):
    if not isinstance(text, str):
        raise TypeError(
            f"Expected `{name}` to be a string. "
            f"Received: {name}={text!r:.100} of type {type(text).__name__}"
        )
    return text


def _check_texts(texts):
    if isinstance(texts, str):
        raise TypeError(
            "Expected `texts` to be a list of strings, not a single string. "
            f"Received: texts={texts!r:.100}"
        )
    return texts


def _as_paths(paths):
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def _require(config, keys, owner):
    if not isinstance(config, dict) or any(key not in config for key in keys):
        raise TokenizerError(
            f"Expected a {owner} config dict with keys {list(keys)}. "
            f"Received: config={config!r:.200}"
        )


class Tokenizer(abc.ABC):
    """Base class of the seqzoo tokenizers: text <-> lists of ids.

    Subclasses implement `_encode_text`, `_decode_ids`, `vocab_size`,
    `token_to_id`, `id_to_token`, `unknown_tokens`, `get_config` and
    `from_config`. Concrete subclasses register themselves by class name so
    that `load_tokenizer` and `tokenizer_from_config` can rebuild them.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    @property
    @abc.abstractmethod
    def vocab_size(self):
        """The number of ids, specials included; ids are in `[0, vocab_size)`."""

    @abc.abstractmethod
    def token_to_id(self, token):
        """Returns the id of one token (`UNK_ID` when it is unknown)."""

    @abc.abstractmethod
    def id_to_token(self, token_id):
        """Returns the token string of one id; ids 0-3 give the special tokens."""

    @abc.abstractmethod
    def unknown_tokens(self, text):
        """Returns the parts of `text` that encode to `UNK_ID`.

        Args:
            text: a string.

        Returns:
            A list of strings, each listed once, in order of first appearance.
        """

    @abc.abstractmethod
    def get_config(self):
        """Returns a JSON-serializable dict from which `from_config` rebuilds the tokenizer."""

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config):
        """Rebuilds a tokenizer from the output of `get_config`."""

    @abc.abstractmethod
    def _encode_text(self, text):
        """Returns the ids of `text` (a string) as a list of ints, without BOS/EOS."""

    @abc.abstractmethod
    def _decode_ids(self, ids):
        """Returns the text of `ids`, a list of in-range ints without PAD/BOS/EOS."""

    def encode(self, text, add_bos=False, add_eos=False):
        """Encodes one string.

        Args:
            text: the string to encode.
            add_bos: prepend `BOS_ID`.
            add_eos: append `EOS_ID`.

        Returns:
            A list of ints.
        """
        ids = self._encode_text(_check_text(text))
        if add_bos:
            ids.insert(0, BOS_ID)
        if add_eos:
            ids.append(EOS_ID)
        return ids

    def encode_batch(self, texts, add_bos=False, add_eos=False):
        """Encodes a list of strings; returns a list of id lists (not padded)."""
        return [self.encode(text, add_bos=add_bos, add_eos=add_eos) for text in _check_texts(texts)]

    def decode(self, ids):
        """Decodes one id sequence to text.

        Decoding stops at the first `EOS_ID`; `PAD_ID` and `BOS_ID` are
        dropped, and `UNK_ID` shows as the tokenizer's unknown marker.

        Args:
            ids: a list of ints or a 1-D integer array.

        Returns:
            A string.

        Raises:
            ValueError: `ids` is not 1-D, or an id is outside `[0, vocab_size)`.
        """
        return self._decode_ids(self._content_ids(ids))

    def detokenize(self, tokens):
        """The text of a list of token strings (e.g. `id_to_token` of each id, some of them
        replaced): what `decode` gives for the tokens' ids."""
        return self._detokenize(list(tokens))

    @abc.abstractmethod
    def _detokenize(self, tokens):
        """Returns the text of a list of token strings."""

    def decode_batch(self, batch):
        """Decodes a batch: a list of id sequences or a 2-D integer array `[B, T]`.

        Returns:
            A list of `B` strings.
        """
        if hasattr(batch, "ndim"):
            batch = np.asarray(batch)
            if batch.ndim != 2:
                raise ArgumentError(
                    "Expected a 2-D batch of ids `[batch, time]`. "
                    f"Received: batch with shape {batch.shape}"
                )
        return [self.decode(ids) for ids in batch]

    def _content_ids(self, ids):
        array = np.asarray(ids)
        if array.ndim != 1:
            raise ArgumentError(
                "Expected a 1-D sequence of ids (use `decode_batch` for a batch). "
                f"Received: ids with shape {array.shape}"
            )
        if array.size == 0:
            return []
        if array.dtype.kind not in "iu":
            raise TypeError(
                f"Expected integer ids. Received: ids={ids!r:.100} with dtype {array.dtype}"
            )
        ends = np.flatnonzero(array == EOS_ID)
        if ends.size:
            array = array[: ends[0]]
        array = array[(array != PAD_ID) & (array != BOS_ID)]
        bad = array[(array < 0) | (array >= self.vocab_size)]
        if bad.size:
            raise ArgumentError(
                f"Token id out of range: expected 0 <= id < {self.vocab_size} "
                f"(the vocabulary size). Received: id={int(bad[0])}"
            )
        return array.tolist()

    def save(self, path):
        """Writes the tokenizer to one JSON file, atomically.

        The file holds `{"class": <class name>, "config": get_config()}`;
        read it back with `load_tokenizer`.
        """
        payload = {"class": type(self).__name__, "config": self.get_config()}
        with atomic_write(path) as f:
            json.dump(payload, f, ensure_ascii=False)
            f.write("\n")

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class _VocabularyTokenizer(Tokenizer):
    """A tokenizer that splits text into tokens looked up in a `Vocabulary`."""

    def __init__(self, vocabulary):
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError(
                "Expected `vocabulary` to be a seqzoo.text.Vocabulary. "
                f"Received: vocabulary={vocabulary!r:.100}"
            )
        self._vocabulary = vocabulary

    @abc.abstractmethod
    def _split(self, text):
        """Returns the list of token strings of `text`."""

    @abc.abstractmethod
    def _join(self, tokens):
        """Returns the text of a list of token strings."""

    def _detokenize(self, tokens):
        return self._join(tokens)

    @classmethod
    def build(cls, texts, min_freq=1, max_size=None, **options):
        """Builds the tokenizer and its vocabulary from a list of strings.

        Args:
            texts: an iterable of strings.
            min_freq: keep only tokens seen at least this many times.
            max_size: the largest vocabulary size, counting the four special
                tokens; `None` for no limit.
            **options: the other constructor arguments (e.g. `lowercase` of
                `WordTokenizer`).

        Returns:
            A tokenizer of this class. See `Vocabulary.build` for the id order
            and the errors.
        """
        splitter = cls(Vocabulary(), **options)
        token_lists = (
            splitter._split(_check_text(text, f"texts[{number}]"))
            for number, text in enumerate(_check_texts(texts))
        )
        return cls(Vocabulary.build(token_lists, min_freq=min_freq, max_size=max_size), **options)

    @classmethod
    def from_files(cls, paths, min_freq=1, max_size=None, **options):
        """Builds the tokenizer from UTF-8 text files, one text per line.

        Args:
            paths: a path or a list of paths.
            min_freq, max_size, **options: as in `build`.

        Raises:
            FileNotFoundError: a file is missing.
            DataError: a line is not UTF-8 (the message gives file:line).
        """
        texts = (text for path in _as_paths(paths) for _, text in read_lines(path, "text file"))
        return cls.build(texts, min_freq=min_freq, max_size=max_size, **options)

    @property
    def vocabulary(self):
        """The `Vocabulary` of this tokenizer."""
        return self._vocabulary

    @property
    def vocab_size(self):
        return len(self._vocabulary)

    def token_to_id(self, token):
        return self._vocabulary.token_to_id(token)

    def id_to_token(self, token_id):
        return self._vocabulary.id_to_token(token_id)

    def unknown_tokens(self, text):
        tokens = self._split(_check_text(text))
        found = [t for t in tokens if self._vocabulary.token_to_id(t) < NUM_SPECIAL]
        return list(dict.fromkeys(found))

    def _encode_text(self, text):
        # Literal "<s>", "</s>", "<pad>" in text are unknown words, not controls.
        ids = self._vocabulary.encode(self._split(text))
        return [i if i >= NUM_SPECIAL else UNK_ID for i in ids]

    def _decode_ids(self, ids):
        tokens = self._vocabulary.tokens
        return self._join([tokens[i] for i in ids])

    def get_config(self):
        return {"vocabulary": self._vocabulary.get_config()}

    @classmethod
    def from_config(cls, config):
        _require(config, ["vocabulary"], cls.__name__)
        options = {key: value for key, value in config.items() if key != "vocabulary"}
        return cls(Vocabulary.from_config(config["vocabulary"]), **options)


class CharTokenizer(_VocabularyTokenizer):
    """A tokenizer whose tokens are single characters, spaces included.

    Example:

    >>> tokenizer = CharTokenizer.build(["hello", "world"])
    >>> tokenizer.decode(tokenizer.encode("hold", add_eos=True))
    'hold'

    Args:
        vocabulary: a `Vocabulary` of single characters. Build one from text
            with `CharTokenizer.build(texts)` or `CharTokenizer.from_files(paths)`.
    """

    def _split(self, text):
        return list(text)

    def _join(self, tokens):
        return "".join(tokens)


class WordTokenizer(_VocabularyTokenizer):
    """A tokenizer that splits text on whitespace; decoding joins with single spaces.

    Args:
        vocabulary: a `Vocabulary` of words. Build one from text with
            `WordTokenizer.build(texts)` or `WordTokenizer.from_files(paths)`.
        lowercase: lowercase text before splitting (when building too).
    """

    def __init__(self, vocabulary, lowercase=False):
        super().__init__(vocabulary)
        if not isinstance(lowercase, bool):
            raise TypeError(f"Expected `lowercase` to be a bool. Received: lowercase={lowercase!r}")
        self.lowercase = lowercase

    def _split(self, text):
        return (text.lower() if self.lowercase else text).split()

    def _join(self, tokens):
        return " ".join(tokens)

    def get_config(self):
        return {**super().get_config(), "lowercase": self.lowercase}

    def __repr__(self):
        return f"WordTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"


def tokenizer_from_config(config):
    """Rebuilds a tokenizer from `{"class": name, "config": tokenizer.get_config()}`.

    Raises:
        TokenizerError: the dict is malformed or names an unknown class.
    """
    _require(config, ["class", "config"], "tokenizer")
    name = config["class"]
    cls = _REGISTRY.get(name)
    if cls is None:
        raise TokenizerError(
            f"Unknown tokenizer class. Received: class={name!r}; "
            f"expected one of {sorted(_REGISTRY)}"
        )
    return cls.from_config(config["config"])


def load_tokenizer(path):
    """Reads a tokenizer written by `Tokenizer.save`.

    Raises:
        FileNotFoundError: `path` does not exist.
        TokenizerError: the file is not a valid tokenizer file (the message
            names the file).
    """
    path = check_file(path, "tokenizer file")
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
    except UnicodeDecodeError:
        raise TokenizerError(f"{path}: not a tokenizer file: expected UTF-8 JSON text") from None
    except json.JSONDecodeError as e:
        raise TokenizerError(
            f"{path}:{e.lineno}: not a tokenizer file: invalid JSON ({e.msg})"
        ) from None
    try:
        return tokenizer_from_config(payload)
    except (SeqzooError, TypeError) as e:
        raise TokenizerError(f"{path}: not a valid tokenizer file: {e}") from e
