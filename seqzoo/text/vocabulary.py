"""A fixed token <-> id mapping whose first four ids are the special tokens."""

import collections
import operator

from seqzoo.errors import ArgumentError, DataError, VocabularyError
from seqzoo.io import atomic_write, read_lines
from seqzoo.text.specials import NUM_SPECIAL, SPECIAL_TOKENS, UNK_ID

_SPECIAL_IDS = {token: i for i, token in enumerate(SPECIAL_TOKENS)}


def _token_problem(token):
    """Returns why `token` cannot be a vocabulary entry, or `None` if it can."""
    if not isinstance(token, str):
        return f"expected a string token, got {type(token).__name__}"
    if not token:
        return "expected a non-empty token"
    if "\n" in token or "\r" in token:
        return "expected a token without line breaks (vocabularies are saved one token per line)"
    return None


class Vocabulary:
    """An immutable list of tokens, with `<pad>`, `<unk>`, `<s>`, `</s>` at ids 0-3.

    Unknown tokens map to `UNK_ID`. A vocabulary is saved as a UTF-8 text
    file with one token per line, specials first, so line `n` holds id `n - 1`.

    Example:

    >>> vocab = Vocabulary(["a", "b"])
    >>> vocab.encode(["b", "a", "z"])
    [5, 4, 1]
    >>> vocab.decode([4, 5])
    ['a', 'b']

    Args:
        tokens: the non-special tokens, in id order (the first gets id 4).
            Tokens must be unique non-empty strings without line breaks and
            must not be one of the special tokens.

    Raises:
        VocabularyError: a token is duplicated, empty, contains a line break
            or is a special token.
    """

    def __init__(self, tokens=()):
        if isinstance(tokens, str):
            raise TypeError(
                "Expected `tokens` to be a list of token strings, not a single "
                f"string. Received: tokens={tokens!r}"
            )
        tokens = tuple(tokens)
        index = dict(_SPECIAL_IDS)
        for position, token in enumerate(tokens):
            problem = _token_problem(token)
            if problem is not None:
                raise VocabularyError(
                    f"Invalid token at position {position}: {problem}. Received: token={token!r}"
                )
            if token in _SPECIAL_IDS:
                raise VocabularyError(
                    f"Special tokens are added automatically at ids 0-{NUM_SPECIAL - 1}; "
                    f"pass only the other tokens. Received: token={token!r} at position {position}"
                )
            if token in index:
                first = index[token] - NUM_SPECIAL
                raise VocabularyError(
                    f"Duplicate token at positions {first} and {position}. "
                    f"Received: token={token!r}"
                )
            index[token] = len(index)
        self._tokens = SPECIAL_TOKENS + tokens
        self._index = index

    @classmethod
    def build(cls, token_lists, min_freq=1, max_size=None):
        """Builds a vocabulary from the token counts of a corpus.

        Tokens are ordered by descending count, ties broken by the token
        string, so the same corpus always gives the same ids. Tokens equal to
        a special token are not counted (the specials are always present).

        Args:
            token_lists: an iterable of token lists (e.g. one list per
                sentence). Each list is an iterable of string tokens; a bare
                string is rejected to avoid counting characters by mistake.
            min_freq: keep only tokens seen at least this many times.
            max_size: the largest vocabulary size, counting the four special
                tokens; `None` for no limit.

        Returns:
            A `Vocabulary`.

        Raises:
            VocabularyError: bad `min_freq` or `max_size`, an empty corpus, or
                no token seen `min_freq` times.
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise VocabularyError(
                f"Expected `min_freq` to be an integer >= 1. Received: min_freq={min_freq!r}"
            )
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < NUM_SPECIAL
        ):
            raise VocabularyError(
                f"Expected `max_size` to be None or an integer >= {NUM_SPECIAL} (it counts the "
                f"{NUM_SPECIAL} special tokens). Received: max_size={max_size!r}"
            )
        counts = collections.Counter()
        num_lists = 0
        for number, tokens in enumerate(token_lists):
            if isinstance(tokens, str):
                raise TypeError(
                    "Expected each item of `token_lists` to be a list of tokens, "
                    f"not a string. Received: token_lists[{number}]={tokens!r}"
                )
            num_lists += 1
            for token in tokens:
                problem = _token_problem(token)
                if problem is not None:
                    raise VocabularyError(
                        f"Invalid token in token_lists[{number}]: {problem}. "
                        f"Received: token={token!r}"
                    )
                if token not in _SPECIAL_IDS:
                    counts[token] += 1
        if not counts:
            raise VocabularyError(
                "Cannot build a vocabulary from an empty corpus: it holds no tokens "
                f"besides special tokens. Received: {num_lists} token lists"
            )
        kept = sorted(
            (item for item in counts.items() if item[1] >= min_freq),
            key=lambda item: (-item[1], item[0]),
        )
        if not kept:
            raise VocabularyError(
                f"No token occurs at least min_freq={min_freq} times: the corpus has "
                f"{len(counts)} distinct tokens and the most frequent occurs "
                f"{counts.most_common(1)[0][1]} times. Received: min_freq={min_freq}"
            )
        if max_size is not None:
            kept = kept[: max_size - NUM_SPECIAL]
        return cls(token for token, _ in kept)

    @property
    def tokens(self):
        """All tokens in id order, specials included, as a tuple."""
        return self._tokens

    def token_to_id(self, token):
        """Returns the id of `token`, or `UNK_ID` when it is not in the vocabulary."""
        return self._index.get(token, UNK_ID)

    def id_to_token(self, token_id):
        """Returns the token with id `token_id`.

        Raises:
            ValueError: `token_id` is not in `[0, len(self))`.
        """
        try:
            token_id = operator.index(token_id)
        except TypeError:
            raise TypeError(
                f"Expected an integer token id. Received: token_id={token_id!r}"
            ) from None
        if not 0 <= token_id < len(self._tokens):
            raise ArgumentError(
                f"Token id out of range: expected 0 <= id < {len(self._tokens)} "
                f"(the vocabulary size). Received: token_id={token_id}"
            )
        return self._tokens[token_id]

    def encode(self, tokens):
        """Maps a sequence of tokens to a list of ids (unknown tokens -> `UNK_ID`)."""
        get = self._index.get
        return [get(token, UNK_ID) for token in tokens]

    def decode(self, ids):
        """Maps a sequence of ids to a list of tokens."""
        return [self.id_to_token(i) for i in ids]

    def save(self, path):
        """Writes the vocabulary to `path`, one token per line, specials first.

        The file is replaced atomically: a failed save leaves any old file intact.
        """
        with atomic_write(path) as f:
            for token in self._tokens:
                f.write(token + "\n")

    @classmethod
    def load(cls, path, add_specials=False):
        """Reads a vocabulary file with one token per line.

        Args:
            path: a UTF-8 text file.
            add_specials: if `False` (the default) the first four lines must be
                `<pad>`, `<unk>`, `<s>`, `</s>` (as written by `save`). If
                `True`, the file lists only the other tokens and the specials
                are prepended; a file that does start with the four specials
                is also accepted, but a special token anywhere else is an error.

        Returns:
            A `Vocabulary`.

        Raises:
            FileNotFoundError: `path` does not exist.
            DataError: the file is empty, not UTF-8, has an empty line, a
                duplicate token, or misplaced special tokens. The message
                gives the file and the 1-based line number.
        """
        lines = list(read_lines(path, "vocabulary file"))
        path = str(path)
        if not lines:
            raise DataError("empty vocabulary file; expected one token per line", path=path)
        head = tuple(text for _, text in lines[:NUM_SPECIAL])
        has_specials = head == SPECIAL_TOKENS
        if not add_specials and not has_specials:
            cls._raise_missing_specials(path, lines)
        body = lines[NUM_SPECIAL:] if has_specials else lines
        seen = {}
        for number, token in body:
            if not token:
                raise DataError("empty line; expected one token per line", path=path, line=number)
            problem = _token_problem(token)
            if problem is not None:
                raise DataError(f"{problem}. Received: {token!r}", path=path, line=number)
            if token in _SPECIAL_IDS:
                raise DataError(
                    f"special token {token!r} out of place; the special tokens may only "
                    f"appear as the first {NUM_SPECIAL} lines, in the order "
                    f"{', '.join(SPECIAL_TOKENS)}",
                    path=path,
                    line=number,
                )
            if token in seen:
                raise DataError(
                    f"duplicate token {token!r} (first on line {seen[token]})",
                    path=path,
                    line=number,
                )
            seen[token] = number
        return cls(seen)

    @staticmethod
    def _raise_missing_specials(path, lines):
        for (number, text), expected in zip(lines, SPECIAL_TOKENS):
            if text != expected:
                raise DataError(
                    f"expected the special token {expected!r} (the first {NUM_SPECIAL} lines "
                    f"must be {', '.join(SPECIAL_TOKENS)}), received {text!r}. "
                    "Pass add_specials=True to load a file that lists only the other tokens",
                    path=path,
                    line=number,
                )
        raise DataError(
            f"the file has only {len(lines)} lines; expected the {NUM_SPECIAL} special tokens "
            f"{', '.join(SPECIAL_TOKENS)} first. Pass add_specials=True to load a file "
            "that lists only the other tokens",
            path=path,
        )

    def get_config(self):
        """Returns a JSON-serializable dict: the non-special tokens."""
        return {"tokens": list(self._tokens[NUM_SPECIAL:])}

    @classmethod
    def from_config(cls, config):
        """Builds a vocabulary from the output of `get_config`."""
        if not isinstance(config, dict) or "tokens" not in config:
            raise VocabularyError(
                f"Expected a dict with a 'tokens' list. Received: config={config!r:.200}"
            )
        return cls(config["tokens"])

    def __len__(self):
        return len(self._tokens)

    def __contains__(self, token):
        return token in self._index

    def __iter__(self):
        return iter(self._tokens)

    def __eq__(self, other):
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._tokens == other._tokens

    def __hash__(self):
        return hash(self._tokens)

    def __repr__(self):
        shown = [repr(token) for token in self._tokens[: NUM_SPECIAL + 4]]
        if len(self._tokens) > len(shown):
            shown.append("...")
        return f"Vocabulary(size={len(self)}, tokens=[{', '.join(shown)}])"
