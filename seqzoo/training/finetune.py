"""Fine-tuning with a new vocabulary: where it comes from, and the vocabulary swap.

`load_vocabulary_source` and `train_vocabulary` turn what a user gives (a
SentencePiece `.model`, a tokenizer `.json`, a plain vocabulary file, or a
size to train on new text) into a seqzoo tokenizer. `swap_vocabulary` builds
a model like a trained one but with the new vocabulary, keeping what it
learned: every weight whose shape does not depend on the vocabulary is
copied, and the embedding and output-layer rows of the tokens both
vocabularies share are copied by token string.
"""

import dataclasses
import os
import tempfile

import numpy as np
from keras import ops

from seqzoo.errors import DataError, InputError
from seqzoo.io import check_file, read_lines
from seqzoo.models.base import ZooModel
from seqzoo.text import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    Vocabulary,
    WordTokenizer,
    load_tokenizer,
)
from seqzoo.text.specials import NUM_SPECIAL

INITS = ("mean", "random")
KINDS = ("char", "word", "sentencepiece")


def tokenizer_kind(tokenizer):
    """`"char"`, `"word"`, `"sentencepiece"`, or `None` for no tokenizer."""
    if tokenizer is None:
        return None
    for kind, cls in (("char", CharTokenizer), ("word", WordTokenizer),
                      ("sentencepiece", SentencePieceTokenizer)):
        if isinstance(tokenizer, cls):
            return kind
    raise TypeError(f"Expected a seqzoo tokenizer. Received: {tokenizer!r:.100}")


def _check_kind(kind, like):
    if kind is None:
        kind = tokenizer_kind(like)
    if kind is not None and kind not in KINDS:
        raise InputError(f"Expected kind in {list(KINDS)}. Received: kind={kind!r}")
    return kind


def load_vocabulary_source(spec, like=None, kind=None, add_specials=False):
    """Turns a vocabulary given by the user into a seqzoo tokenizer.

    Args:
        spec: a `Tokenizer` (returned as is) or a path: a SentencePiece
            `.model` file, a tokenizer `.json` written by `Tokenizer.save`,
            or any other file, read as a plain vocabulary: UTF-8, one token
            per line, the special tokens `<pad>`, `<unk>`, `<s>`, `</s>` on
            the first four lines (ids 0-3).
        like: the tokenizer of the model being fine-tuned. A plain
            vocabulary becomes a tokenizer of the same kind (a
            `CharTokenizer`, or a `WordTokenizer` with the same `lowercase`).
        kind: `"char"` or `"word"` to override `like` for a plain vocabulary.
        add_specials: accept a plain vocabulary that lists only the other
            tokens and prepend the special tokens. Off by default: a file
            without them is more likely the wrong file.

    Returns:
        A `Tokenizer`.

    Raises:
        FileNotFoundError: `spec` does not exist.
        DataError: a plain vocabulary lacks the special tokens, has a
            duplicate or empty line, or (for characters) a token longer than
            one character; the message gives the file and the line.
        TokenizerError: a `.model`/`.json` file is not a valid tokenizer.
        InputError: the kind of a plain vocabulary cannot be told (no `like`
            and no `kind`), or is SentencePiece, which needs a `.model` file.
    """
    if isinstance(spec, Tokenizer):
        return spec
    path = check_file(spec, "vocabulary file")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".model":
        return SentencePieceTokenizer(model_file=path)
    if extension == ".json":
        return load_tokenizer(path)
    kind = _check_kind(kind, like)
    if kind is None:
        raise InputError(
            f"{path}: cannot tell whether this plain vocabulary holds characters or words "
            "(the model has no tokenizer to copy the kind from); pass kind='char' or 'word'")
    if kind == "sentencepiece":
        raise InputError(
            f"{path}: the model's tokenizer is SentencePiece, which a plain vocabulary file "
            "cannot rebuild; give a SentencePiece .model file or train one on the new data")
    vocabulary = Vocabulary.load(path, add_specials=add_specials)
    lines = {token: number for number, token in read_lines(path, "vocabulary file")}
    if kind == "char":
        for token in vocabulary.tokens[NUM_SPECIAL:]:
            if len(token) != 1:
                raise DataError(
                    f"expected one character per line for a character vocabulary (the "
                    f"model's tokenizer reads characters), received {token!r}",
                    path=path, line=lines.get(token))
        return CharTokenizer(vocabulary)
    for token in vocabulary.tokens[NUM_SPECIAL:]:
        if len(token.split()) != 1 or token != token.strip():
            # A word tokenizer splits text at whitespace: such a token never occurs.
            raise DataError(
                f"expected one word per line for a word vocabulary, without spaces or tabs "
                f"(a count after the word?), received {token!r}",
                path=path, line=lines.get(token))
    return WordTokenizer(vocabulary, lowercase=getattr(like, "lowercase", False))


def train_vocabulary(texts, size, like=None, kind=None, model_prefix=None,
                     model_type="unigram", **options):
    """Builds a new vocabulary of at most `size` tokens from new text.

    A SentencePiece model is trained when the kind is `"sentencepiece"`;
    otherwise a character or word vocabulary keeps the `size - 4` most
    frequent tokens (ties by token string, so the result is reproducible).

    Args:
        texts: a list of strings (e.g. the sources and targets of the new
            training set, for a model that shares one tokenizer).
        size: the vocabulary size, the four special tokens included.
        like: the tokenizer of the model being fine-tuned; its kind (and a
            `WordTokenizer`'s `lowercase`) is used.
        kind: `"char"`, `"word"` or `"sentencepiece"`, to override `like`.
        model_prefix: where to write the SentencePiece `.model`/`.vocab`
            files; `None` keeps the model in memory only (it travels in the
            saved Keras model's config anyway).
        model_type: the SentencePiece model type (`"unigram"`, `"bpe"`, ...).
        **options: other `SentencePieceTokenizer.train` options.

    Returns:
        A `Tokenizer`.

    Raises:
        InputError: a bad `size`, or no kind given and no `like`.
        VocabularyError, TokenizerError: the text cannot give such a
            vocabulary (empty text; too large a SentencePiece size).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= NUM_SPECIAL:
        raise InputError(f"Expected a vocabulary size > {NUM_SPECIAL} (it counts the "
                         f"{NUM_SPECIAL} special tokens). Received: size={size!r}")
    kind = _check_kind(kind, like)
    if kind is None:
        raise InputError("Cannot tell which kind of vocabulary to train (the model has no "
                         "tokenizer); pass kind='char', 'word' or 'sentencepiece'")
    texts = list(texts)
    if kind == "char":
        return CharTokenizer.build(texts, max_size=size)
    if kind == "word":
        return WordTokenizer.build(texts, max_size=size,
                                   lowercase=getattr(like, "lowercase", False))
    if model_prefix is not None:
        return SentencePieceTokenizer.train_from_texts(
            texts, model_prefix, size, model_type=model_type, **options)
    with tempfile.TemporaryDirectory(prefix="seqzoo-vocab-") as directory:
        tokenizer = SentencePieceTokenizer.train_from_texts(
            texts, os.path.join(directory, "vocab"), size, model_type=model_type, **options)
    tokenizer.model_file = None
    return tokenizer


# -- the swap -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VocabularyChange:
    """How one vocabulary of a model changed.

    Counts include the four special tokens, which are always kept, so
    `kept + added == new_size` and `kept + dropped == old_size`.

    Attributes:
        side: `"source"`, `"target"` or `"tokens"` (single-vocabulary models).
        old_size, new_size: vocabulary sizes.
        kept: the number of tokens in both vocabularies.
        added: the new tokens, in new-id order.
        dropped: the old tokens not in the new vocabulary, in old-id order.
    """

    side: str
    old_size: int
    new_size: int
    kept: int
    added: tuple
    dropped: tuple

    def __str__(self):
        text = (f"{self.side} vocabulary: {self.old_size} -> {self.new_size} tokens: "
                f"{self.kept} kept, {len(self.added)} added, {len(self.dropped)} dropped")
        for name, tokens in (("added", self.added), ("dropped", self.dropped)):
            if tokens:
                shown = ", ".join(repr(t) for t in tokens[:8])
                text += f"; {name}: {shown}{', ...' if len(tokens) > 8 else ''}"
        return text


@dataclasses.dataclass(frozen=True)
class VocabularySwapReport:
    """What `swap_vocabulary` did: one `VocabularyChange` per side, and the init."""

    changes: dict
    init: str

    def __getitem__(self, side):
        return self.changes[side]

    def __str__(self):
        return "\n".join(str(change) for change in self.changes.values())


def token_mapping(old_tokenizer, new_tokenizer):
    """The old id of each new id, matched by token string; -1 for new tokens.

    Special tokens map to themselves. Tokens match only when the strings are
    equal, so a character `"a"` and a SentencePiece piece `"▁a"` differ.

    Returns:
        An int64 array of shape `[new_tokenizer.vocab_size]`.
    """
    mapping = np.full(new_tokenizer.vocab_size, -1, dtype=np.int64)
    mapping[:NUM_SPECIAL] = np.arange(NUM_SPECIAL)
    for new_id in range(NUM_SPECIAL, new_tokenizer.vocab_size):
        token = new_tokenizer.id_to_token(new_id)
        old_id = old_tokenizer.token_to_id(token)
        if NUM_SPECIAL <= old_id < old_tokenizer.vocab_size and \
                old_tokenizer.id_to_token(old_id) == token:
            mapping[new_id] = old_id
    return mapping


def _change(side, old, new, mapping):
    kept_old = set(mapping[mapping >= 0].tolist())
    return VocabularyChange(
        side=side, old_size=old.vocab_size, new_size=new.vocab_size,
        kept=int(np.sum(mapping >= 0)),
        added=tuple(new.id_to_token(i) for i in np.flatnonzero(mapping < 0)),
        dropped=tuple(old.id_to_token(i) for i in range(old.vocab_size) if i not in kept_old))


def _vocabulary_sides(model):
    """`{side: (tokenizer attribute, vocab-size hyperparameter, [vocabulary layers])}`."""
    if not isinstance(model, ZooModel):
        raise InputError(f"Expected a seqzoo model. Received: {type(model).__name__}")
    hp, parts = model.hyperparameters, model.parts
    if "source_vocab_size" in hp:
        target = [parts["target_embedding"], parts["head"]]
        return {"source": ("source_tokenizer", "source_vocab_size", [parts["source_embedding"]]),
                "target": ("target_tokenizer", "target_vocab_size", target)}
    if hp.get("vocab_size") is None:
        raise InputError(f"{type(model).__name__} reads feature vectors, not tokens "
                         "(vocab_size=None): it has no vocabulary to swap")
    layers = [parts["embedding"], parts["head"]] if "head" in parts else \
        [model.get_layer("embedding")]
    return {"tokens": ("tokenizer", "vocab_size", layers)}


def _row_variables(layer):
    """The variables of `layer` with one row per token (embeddings, untied kernel, bias)."""
    from seqzoo.layers import TokenEmbedding

    if isinstance(layer, TokenEmbedding):
        return [layer.embeddings]
    found = [] if layer.tied_embedding is not None else [layer._kernel]
    return found + ([layer.bias] if layer.use_bias else [])


def _remap_rows(old_value, new_value, mapping, init):
    """New rows: old rows of shared tokens; new tokens by `init`."""
    rows = np.array(new_value, copy=True)
    shared = mapping >= 0
    rows[shared] = old_value[mapping[shared]]
    if init == "mean" and not shared.all():
        content = mapping[NUM_SPECIAL:]
        source = content[content >= 0]
        if source.size == 0:  # nothing shared: the mean of every old content row
            source = np.arange(min(NUM_SPECIAL, len(old_value)), len(old_value))
        rows[~shared] = old_value[source].mean(axis=0)
    return rows


def swap_vocabulary(model, source_tokenizer=None, target_tokenizer=None, *, tokenizer=None,
                    init="mean"):
    """A copy of a trained model with new vocabularies, keeping what it learned.

    Builds a new model of the same class and hyperparameters with the new
    vocabulary sizes and tokenizers, then copies every weight whose shape does
    not depend on the vocabulary, and the embedding rows, output-kernel rows
    and output-bias entries of every token the old and new vocabularies share
    (matched by token string; the special tokens map to themselves).

    With `init="mean"` the rows of new tokens are the mean of the old rows
    of the shared non-special tokens (or of all old non-special rows when
    none is shared), the output bias included. A new token's logit is then
    the mean of the shared tokens' logits, never above their maximum, so
    before any training the greedy predictions on inputs made of shared
    tokens are unchanged (when the old prediction was a shared token).
    `init="random"` leaves the new rows as the new layers' initializers made
    them (a zero bias), without that guarantee. Optimizer state is not
    carried over: compile the returned model.

    Args:
        model: a trained `Seq2Seq`, `RNNLanguageModel`, `SequenceClassifier`
            or `SequenceTagger` (token inputs) whose tokenizers are attached.
        source_tokenizer, target_tokenizer: the new tokenizers of a
            `Seq2Seq`; `None` keeps that side as it is.
        tokenizer: the new tokenizer of a single-vocabulary model, or of both
            sides of a `Seq2Seq` (the new model then shares it, like the demo
            models).
        init: `"mean"` or `"random"`.

    Returns:
        `(new_model, report)`: an uncompiled model and a
        `VocabularySwapReport` (`print(report)` gives kept/added/dropped
        counts per side).

    Raises:
        InputError: a bad `init`, tokenizer arguments that do not fit the
            model, or a model side without a tokenizer to match tokens by.
    """
    if init not in INITS:
        raise InputError(f"Expected init in {list(INITS)}. Received: init={init!r}")
    sides = _vocabulary_sides(model)
    if "tokens" in sides:
        if source_tokenizer is not None or target_tokenizer is not None:
            raise InputError(f"{type(model).__name__} has one vocabulary: pass tokenizer=..., "
                             "not source_tokenizer/target_tokenizer")
        wanted = {"tokens": tokenizer}
    else:
        if tokenizer is not None and (source_tokenizer is not None
                                      or target_tokenizer is not None):
            raise InputError("Pass either tokenizer=... (both sides) or "
                             "source_tokenizer/target_tokenizer, not both")
        wanted = {"source": source_tokenizer if tokenizer is None else tokenizer,
                  "target": target_tokenizer if tokenizer is None else tokenizer}
    config = model.get_config()
    plans, changes = [], {}
    for side, (attribute, size_key, layers) in sides.items():
        old = getattr(model, attribute, None)
        new = wanted[side]
        if new is None:  # this side stays as it is
            config[attribute] = old
            plans.append((layers, np.arange(config[size_key])))
            continue
        if not isinstance(new, Tokenizer):
            raise InputError(f"Expected a seqzoo tokenizer for the {side} vocabulary. "
                             f"Received: {new!r:.100}")
        if old is None:
            raise InputError(f"The model has no {attribute}, so its tokens cannot be matched "
                             "with the new vocabulary's; attach the tokenizer it was trained with")
        mapping = token_mapping(old, new)
        changes[side] = _change(side, old, new, mapping)
        config[size_key] = new.vocab_size
        config[attribute] = new
        plans.append((layers, mapping))
    new_model = type(model).from_config(config)
    _copy_weights(model, new_model, plans, sides, init)
    return new_model, VocabularySwapReport(changes, init)


def _copy_weights(old_model, new_model, plans, sides, init):
    new_sides = _vocabulary_sides(new_model)
    remapped = {}
    for (old_layers, mapping), (_, _, new_layers) in zip(plans, new_sides.values()):
        for old_layer, new_layer in zip(old_layers, new_layers):
            for old_var, new_var in zip(_row_variables(old_layer), _row_variables(new_layer)):
                remapped[id(new_var)] = (old_var, mapping)
    old_vars, new_vars = old_model.variables, new_model.variables
    if len(old_vars) != len(new_vars):
        raise RuntimeError(f"The rebuilt model has {len(new_vars)} variables, the old one "
                           f"{len(old_vars)}; cannot copy the weights")
    for old_var, new_var in zip(old_vars, new_vars):
        if id(new_var) in remapped:
            source, mapping = remapped.pop(id(new_var))
            new_var.assign(_remap_rows(ops.convert_to_numpy(source),
                                       ops.convert_to_numpy(new_var), mapping, init))
        elif tuple(old_var.shape) != tuple(new_var.shape):
            raise RuntimeError(f"Variable {new_var.path} has shape {tuple(new_var.shape)}; the "
                               f"old model's {old_var.path} has {tuple(old_var.shape)}")
        else:
            # A copy, not a shared buffer: JAX may donate (delete) one model's buffers.
            new_var.assign(ops.copy(old_var.value))
    if remapped:
        raise RuntimeError("Some vocabulary variables of the rebuilt model were not found")
