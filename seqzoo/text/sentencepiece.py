"""A SentencePiece subword tokenizer that keeps seqzoo's special ids."""

import base64
import binascii
import io
import operator
import os
import re
import tempfile

import numpy as np
import sentencepiece as spm

from seqzoo.errors import ArgumentError, TokenizerError
from seqzoo.io import atomic_write, check_file, read_lines
from seqzoo.text.specials import BOS, BOS_ID, EOS, EOS_ID, NUM_SPECIAL, PAD, SPECIAL_TOKENS, UNK
from seqzoo.text.tokenizers import Tokenizer, _as_paths, _check_text, _check_texts, _require

MODEL_TYPES = ("unigram", "bpe", "char", "word")

# Trainer options that would break the id contract or the file handling.
_FIXED_OPTIONS = {
    "pad_id": 0,
    "unk_id": 1,
    "bos_id": 2,
    "eos_id": 3,
    "pad_piece": PAD,
    "unk_piece": UNK,
    "bos_piece": BOS,
    "eos_piece": EOS,
}
_RESERVED_OPTIONS = {
    *_FIXED_OPTIONS,
    "input",
    "model_prefix",
    "model_writer",
    "sentence_iterator",
    "sentence_reader",
}
_SPECIAL_IDS = {token: i for i, token in enumerate(SPECIAL_TOKENS)}


class SentencePieceTokenizer(Tokenizer):
    """Subword tokenizer backed by a SentencePiece model.

    Models trained with `SentencePieceTokenizer.train` put `<pad>`, `<unk>`,
    `<s>`, `</s>` at ids 0-3, so seqzoo ids are the model's ids. Any other
    SentencePiece model (e.g. one trained with the defaults `unk=0, bos=1,
    eos=2`, no pad) is remapped: seqzoo ids 0-3 are PAD/UNK/BOS/EOS and the
    model's other pieces follow in their order. The mapping is applied in
    `encode`, `decode`, `token_to_id` and `id_to_token`.

    `decode` shows unknown pieces with the model's unknown surface: `<unk>`
    for models trained here, SentencePiece's default ` ⁇ ` for others.

    Args:
        model_file: path of a `.model` file.
        model_proto: the serialized model, as bytes. Give exactly one of
            `model_file` and `model_proto`.

    Raises:
        FileNotFoundError: `model_file` does not exist.
        TokenizerError: the file or bytes are not a SentencePiece model.
    """

    def __init__(self, model_file=None, model_proto=None):
        if (model_file is None) == (model_proto is None):
            raise ArgumentError(
                "Expected exactly one of `model_file` and `model_proto`. Received: "
                f"model_file={model_file!r}, model_proto={_describe_bytes(model_proto)}"
            )
        source = "model_proto"
        if model_file is not None:
            model_file = check_file(model_file, "SentencePiece model file")
            with open(model_file, "rb") as f:
                model_proto = f.read()
            source = model_file
        if not isinstance(model_proto, (bytes, bytearray)):
            raise TypeError(
                "Expected `model_proto` to be bytes. "
                f"Received: model_proto of type {type(model_proto).__name__}"
            )
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(bytes(model_proto))
        except RuntimeError as e:
            reason = str(e)
            if "Parse" in reason:
                reason = "it does not parse as a SentencePiece ModelProto"
            raise TokenizerError(f"{source}: not a SentencePiece model: {reason}") from None
        self.model_file = model_file
        self._proto = bytes(model_proto)
        self._processor = processor
        self._build_id_mapping()

    def _build_id_mapping(self):
        p = self._processor
        size = p.get_piece_size()
        model_specials = [p.pad_id(), p.unk_id(), p.bos_id(), p.eos_id()]  # -1 when absent
        taken = {i for i in model_specials if i >= 0}
        others = [i for i in range(size) if i not in taken]
        to_model = np.array(model_specials + others, dtype=np.int64)
        to_ours = np.empty(size, dtype=np.int64)
        present = to_model >= 0
        to_ours[to_model[present]] = np.flatnonzero(present)
        self._to_model = to_model
        self._to_ours = to_ours
        self._identity = to_model.size == size and np.array_equal(to_model, np.arange(size))

    @classmethod
    def train(
        cls,
        input_files,
        model_prefix,
        vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        **extra_trainer_options,
    ):
        """Trains a SentencePiece model on text files and returns its tokenizer.

        Writes `model_prefix + ".model"` and `model_prefix + ".vocab"`
        (atomically). Training is quiet and deterministic for the same input.

        Args:
            input_files: a path or a list of paths of UTF-8 text files, one
                sentence per line.
            model_prefix: where to write the model, without extension.
            vocab_size: the number of pieces, the four specials included.
            model_type: one of `"unigram"`, `"bpe"`, `"char"`, `"word"`.
            character_coverage: the share of characters covered by the model
                (1.0 keeps every character; ~0.9995 suits large alphabets).
            **extra_trainer_options: other SentencePiece trainer options, e.g.
                `user_defined_symbols=[...]` or `minloglevel=0` for the
                trainer's log. The special ids and pieces are fixed here.

        Returns:
            A `SentencePieceTokenizer`.

        Raises:
            ValueError: a bad `model_type`, `vocab_size`,
                `character_coverage`, or a reserved trainer option.
            FileNotFoundError: an input file is missing.
            DataError: an input line is not UTF-8 (the message gives file:line).
            TokenizerError: the text is empty, or SentencePiece cannot train
                the model as asked (e.g. `vocab_size` too large for the text).
        """
        if model_type not in MODEL_TYPES:
            raise ArgumentError(
                f"Expected `model_type` to be one of {MODEL_TYPES}. "
                f"Received: model_type={model_type!r}"
            )
        if not _is_int(vocab_size) or vocab_size <= NUM_SPECIAL:
            raise ArgumentError(
                f"Expected `vocab_size` to be an integer > {NUM_SPECIAL} (it counts the "
                f"{NUM_SPECIAL} special tokens). Received: vocab_size={vocab_size!r}"
            )
        if not isinstance(character_coverage, (int, float)) or not 0 < character_coverage <= 1:
            raise ArgumentError(
                "Expected `character_coverage` in (0, 1]. "
                f"Received: character_coverage={character_coverage!r}"
            )
        for key in sorted(_RESERVED_OPTIONS & set(extra_trainer_options)):
            raise ArgumentError(
                f"The trainer option `{key}` is set by seqzoo (special ids are fixed at 0-3; "
                f"files are given as `input_files`). Received: {key}={extra_trainer_options[key]!r}"
            )
        paths = [os.fspath(path) for path in _as_paths(input_files)]
        _check_training_text(paths)
        options = {"minloglevel": 2, "unk_surface": UNK, **extra_trainer_options, **_FIXED_OPTIONS}
        writer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                input=paths,
                model_writer=writer,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                **options,
            )
        except RuntimeError as e:
            raise _training_error(e, vocab_size, model_type, character_coverage) from None
        tokenizer = cls(model_proto=writer.getvalue())
        tokenizer.model_file = tokenizer._write_model_files(os.fspath(model_prefix))
        return tokenizer

    @classmethod
    def train_from_texts(cls, texts, model_prefix, vocab_size, **kwargs):
        """Like `train`, from a list of strings instead of files.

        The texts go through a temporary file, one text per line.

        Args:
            texts: an iterable of strings.
            model_prefix, vocab_size, **kwargs: as in `train`.
        """
        texts = [_check_text(text, f"texts[{i}]") for i, text in enumerate(_check_texts(texts))]
        with tempfile.TemporaryDirectory(prefix="seqzoo-spm-") as directory:
            path = os.path.join(directory, "train.txt")
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.writelines(text + "\n" for text in texts)
            return cls.train(path, model_prefix, vocab_size, **kwargs)

    def _write_model_files(self, model_prefix):
        model_file = model_prefix + ".model"
        with atomic_write(model_file, "wb") as f:
            f.write(self._proto)
        p = self._processor
        with atomic_write(model_prefix + ".vocab") as f:
            for i in range(p.get_piece_size()):
                f.write(f"{p.id_to_piece(i)}\t{p.get_score(i):g}\n")
        return model_file

    @property
    def serialized_model_proto(self):
        """The SentencePiece model as bytes (what a `.model` file holds)."""
        return self._proto

    @property
    def vocab_size(self):
        return int(self._to_model.size)

    def token_to_id(self, token):
        if token in _SPECIAL_IDS:
            return _SPECIAL_IDS[token]
        return int(self._to_ours[self._processor.piece_to_id(token)])

    def id_to_token(self, token_id):
        try:
            token_id = operator.index(token_id)
        except TypeError:
            raise TypeError(
                f"Expected an integer token id. Received: token_id={token_id!r}"
            ) from None
        if not 0 <= token_id < self.vocab_size:
            raise ArgumentError(
                f"Token id out of range: expected 0 <= id < {self.vocab_size} "
                f"(the vocabulary size). Received: token_id={token_id}"
            )
        if token_id < NUM_SPECIAL:
            return SPECIAL_TOKENS[token_id]
        return self._processor.id_to_piece(int(self._to_model[token_id]))

    def unknown_tokens(self, text):
        _check_text(text)
        ids = self._processor.encode(text)
        pieces = self._processor.encode(text, out_type=str)
        unk = self._processor.unk_id()
        found = (piece.replace("\u2581", " ").strip() for i, piece in zip(ids, pieces) if i == unk)
        return list(dict.fromkeys(piece for piece in found if piece))

    def _to_our_ids(self, model_ids):
        return model_ids if self._identity else self._to_ours[model_ids].tolist()

    def _encode_text(self, text):
        return self._to_our_ids(self._processor.encode(text))

    def encode_batch(self, texts, add_bos=False, add_eos=False):
        texts = [_check_text(text, f"texts[{i}]") for i, text in enumerate(_check_texts(texts))]
        batch = [self._to_our_ids(ids) for ids in self._processor.encode(texts)]
        prefix, suffix = [BOS_ID] * bool(add_bos), [EOS_ID] * bool(add_eos)
        return [prefix + ids + suffix for ids in batch]

    def _decode_ids(self, ids):
        model_ids = ids if self._identity else self._to_model[ids].tolist()
        return self._processor.decode(model_ids)

    def _detokenize(self, tokens):
        return self._processor.decode_pieces(tokens)

    def get_config(self):
        """Returns `{"model_proto": <base64 of the model>}`: the model travels in the config."""
        return {"model_proto": base64.b64encode(self._proto).decode("ascii")}

    @classmethod
    def from_config(cls, config):
        _require(config, ["model_proto"], cls.__name__)
        try:
            proto = base64.b64decode(config["model_proto"], validate=True)
        except (binascii.Error, TypeError, ValueError) as e:
            received = f"{config['model_proto']!r:.60}"
            raise TokenizerError(
                f"Expected `model_proto` to be base64 text ({e}). Received: model_proto={received}"
            ) from None
        return cls(model_proto=proto)

    def __repr__(self):
        return (
            f"SentencePieceTokenizer(vocab_size={self.vocab_size}, "
            f"model_file={self.model_file!r})"
        )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _describe_bytes(value):
    return repr(value) if value is None else f"<{type(value).__name__} of length {len(value)}>"


def _check_training_text(paths):
    """Reads every file once so bad files fail with file:line before training."""
    if not paths:
        raise ArgumentError("Expected at least one training file. Received: input_files=[]")
    non_empty = 0
    for path in paths:
        for _, text in read_lines(path, "training text file"):
            non_empty += bool(text.strip())
    if not non_empty:
        raise TokenizerError(
            f"Cannot train SentencePiece on empty text: the training files hold no "
            f"non-empty line. Received: input_files={paths!r}"
        )


def _training_error(error, vocab_size, model_type, character_coverage):
    message = str(error)
    too_big = re.search(r"(?:too high|too big).*?<=\s*(\d+)", message, re.S)
    if too_big:
        return TokenizerError(
            f"Received: vocab_size={vocab_size}; the training text supports at most "
            f"{too_big.group(1)} pieces for model_type={model_type!r}. Use a smaller "
            "vocab_size or more training text."
        )
    if re.search(r"too high|too big", message):
        return TokenizerError(
            f"Received: vocab_size={vocab_size}; the training text does not support that "
            f"many pieces for model_type={model_type!r} ({message})"
        )
    too_small = re.search(r"smaller than required_chars\D*(\d+) vs (\d+)", message)
    if too_small:
        return TokenizerError(
            f"Received: vocab_size={vocab_size}; the training text needs at least "
            f"{too_small.group(2)} pieces (its characters plus the special tokens) with "
            f"character_coverage={character_coverage}. Use a larger vocab_size or a lower "
            "character_coverage."
        )
    return TokenizerError(
        f"SentencePiece training failed (vocab_size={vocab_size}, "
        f"model_type={model_type!r}): {message}"
    )
