"""Constraints on the next token, shared by greedy search, sampling and beam search.

- `min_length`: `</s>` cannot come before `min_length` tokens have been
  generated (so an output has at least `min_length` tokens before `</s>`).
- `no_repeat_ngram_size = n`: a token that would complete an n-gram the
  hypothesis already holds is banned (fairseq's and OpenNMT's
  `no_repeat_ngram_size`; `n = 1` bans every token already generated).
- `prefix`: `[N, P]` token ids each output must start with (right padded
  with `PAD_ID`: a row's prefix ends at its first pad): at step `t < P` every
  other token is banned.

Banned tokens get a log-probability of `-inf` (`-1e9` for logits); the
others keep theirs, as in fairseq and OpenNMT: the scores stay the model's.
"""

import numbers

from keras import ops

from seqzoo.errors import ArgumentError

BANNED = -1e9


def check_constraint_args(min_length, no_repeat_ngram_size):
    for name, value in (("min_length", min_length),
                        ("no_repeat_ngram_size", no_repeat_ngram_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ArgumentError(
                f"Expected {name} to be an integer >= 0. Received: {name}={value!r}")


def has_constraints(min_length, no_repeat_ngram_size, prefix=None):
    return bool(min_length) or bool(no_repeat_ngram_size) or prefix is not None


def constrain(scores, t, history, min_length=0, no_repeat_ngram_size=0, eos_id=3,
              banned=BANNED, prefix=None):
    """Sets the scores of banned next tokens to `banned`.

    Args:
        scores: `[N, V]` log-probabilities or logits of the next token.
        t: the step (tokens generated so far), a scalar tensor.
        history: `[N, T]` int, the tokens generated so far at positions `< t`
            (anything after).
        min_length, no_repeat_ngram_size, prefix: as in the module docstring
            (0 or `None`: off).
        eos_id: the end token.
        banned: the score a banned token gets.

    Returns:
        `[N, V]` scores.
    """
    vocab = ops.shape(scores)[-1]
    tokens = ops.arange(vocab, dtype="int32")
    t = ops.convert_to_tensor(t, "int32")
    if min_length:
        early = ops.logical_and(t < min_length, tokens == eos_id)[None, :]
        scores = ops.where(early, banned, scores)
    if no_repeat_ngram_size:
        scores = ops.where(_repeating(history, t, int(no_repeat_ngram_size), vocab), banned,
                           scores)
    if prefix is not None:
        scores = _forced(scores, t, prefix, tokens, banned)
    return scores


def _forced(scores, t, prefix, tokens, banned):
    """Only the prefix token at steps inside a row's prefix."""
    prefix = ops.cast(prefix, "int32")
    width = ops.shape(prefix)[1]  # a tensor where the graph is traced for any width
    position = ops.reshape(ops.clip(t, 0, width - 1), (1,))
    forced = ops.take(prefix, position, axis=1)  # [N, 1]
    # A row's prefix ends at its first pad: later tokens of the row are not forced.
    inside = ops.logical_and(t < width, ops.all(
        ops.where(ops.arange(width)[None, :] <= t, prefix != 0, True), axis=1, keepdims=True))
    return ops.where(ops.logical_and(inside, tokens[None, :] != forced), banned, scores)


def _repeating(history, t, n, vocab):
    """`[N, V]` bool: the tokens that would repeat an n-gram of `history[:, :t]`."""
    history = ops.cast(history, "int32")
    rows, length = ops.shape(history)[0], history.shape[1]
    starts = length - n + 1  # n-grams that fit: they start at p = 0 .. length - n
    if starts <= 0:
        return ops.zeros((rows, vocab), "bool")
    p = ops.arange(starts, dtype="int32")
    # The n-gram at p ends (its last token at p + n - 1) before step t.
    match = ops.broadcast_to((p + n - 1 < t)[None, :], (rows, starts))
    for j in range(n - 1):
        # Token j of the n-gram at p against token j of the current (n-1)-gram prefix.
        window = history[:, j:j + starts]
        position = ops.clip(t - (n - 1) + j, 0, length - 1)
        current = ops.take(history, ops.reshape(position, (1,)), axis=1)
        match = ops.logical_and(match, window == current)
    nexts = history[:, n - 1:n - 1 + starts]  # the token that followed each n-1 prefix
    row = ops.broadcast_to(ops.arange(rows, dtype="int32")[:, None], (rows, starts))
    indices = ops.stack([ops.reshape(row, (-1,)), ops.reshape(nexts, (-1,))], axis=1)
    counts = ops.scatter(indices, ops.reshape(ops.cast(match, "float32"), (-1,)),
                         (rows, vocab))
    return counts > 0
