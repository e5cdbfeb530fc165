"""A seq2seq model as a TensorFlow SavedModel (`seqzoo export`).

The SavedModel holds the model's weights and compiled decoding graphs, so a
server (TF Serving, or `tf.saved_model.load` in any TensorFlow program) can
decode without seqzoo or Keras. TensorFlow backend only: the module imports
TensorFlow when it runs and refuses other backends with a clear error.

Signatures (all decode at most `max_length` tokens, fixed at export):

- `greedy`: `source_ids` int32 `[batch, time]` (right padded with 0) ->
  `ids` int32 `[batch, 1, max_length]`, `scores` float32 `[batch, 1]`.
- `beam` (when `beam_size > 1`): the same input -> `ids`
  `[batch, n_best, max_length]`, `scores` `[batch, n_best]`, best first.
- `serving_default`: `beam` when `beam_size > 1`, else `greedy`.
- `translate` (when both tokenizers are `CharTokenizer` or
  `WordTokenizer`): `texts` string `[batch]` -> `texts` string `[batch]`,
  `scores` `[batch]`, tokenized in the graph with a lookup table built from
  the vocabulary; beam search when `beam_size > 1`, else greedy. A
  SentencePiece tokenizer cannot run inside a plain TensorFlow graph
  (that needs the `tensorflow-text` package), so such models export the id
  signatures only.

Ids after the first `</s>` are 0 (padding), as in `Seq2Seq.search`.
"""

import contextlib
import json
import os
import shutil
import tempfile

from seqzoo.errors import InputError
from seqzoo.models.search import SEARCH_OPTIONS

DEFAULT_MAX_LENGTH = 100
INFO_FILE = "seqzoo_export.json"

# Every character Python's str.split() treats as whitespace; TensorFlow's own
# whitespace split knows only the ASCII ones.
_WHITESPACE = "".join(chr(c) for c in range(0x3000 + 1) if chr(c).isspace())


def check_tensorflow_backend():
    """The `tensorflow` module; an `InputError` on another Keras backend."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise InputError(
            "SavedModel export needs the TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Received: backend {backend!r}")
    import tensorflow as tf

    return tf


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"Expected {name} to be an integer >= {minimum}. "
                         f"Received: {name}={value!r}")
    return value


def in_graph_tokenizer_kind(tokenizer):
    """`"char"` or `"word"` when `tokenizer` can run inside a TF graph, else `None`."""
    from seqzoo.text import CharTokenizer, WordTokenizer

    if type(tokenizer) is CharTokenizer:
        return "char"
    if type(tokenizer) is WordTokenizer:
        return "word"
    return None


class _GraphTokenizer:
    """The TensorFlow-graph twin of a `CharTokenizer` or `WordTokenizer`."""

    def __init__(self, tf, tokenizer):
        from seqzoo.text.specials import NUM_SPECIAL, UNK_ID

        self.tf = tf
        self.kind = in_graph_tokenizer_kind(tokenizer)
        self.lowercase = getattr(tokenizer, "lowercase", False)
        tokens = list(tokenizer.vocabulary.tokens)
        self.tokens = tf.constant(tokens, tf.string)
        # Only real tokens are keys: text that spells "<s>" or "</s>" is
        # unknown, as in the Python tokenizers.
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(tokens[NUM_SPECIAL:], tf.string),
                tf.range(NUM_SPECIAL, len(tokens), dtype=tf.int32)),
            default_value=UNK_ID)

    def _split(self, texts):
        tf = self.tf
        if self.kind == "char":
            return tf.strings.unicode_split(texts, "UTF-8")
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf.strings.regex_replace(texts, f"[{_WHITESPACE}]+", " ")
        return tf.strings.split(texts)

    def encode(self, texts):
        """`[B]` strings -> `[B, S]` int32 ids, right padded with 0."""
        tf = self.tf
        tokens = self._split(texts)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        check = tf.debugging.assert_positive(
            ids.row_lengths(), message="expected non-empty texts (an input has no tokens)")
        with tf.control_dependencies([check]):
            return tf.identity(ids.to_tensor(default_value=0))

    def decode(self, ids):
        """`[B, T]` ids -> `[B]` strings, stopping at `</s>`, without `<pad>`/`<s>`."""
        from seqzoo.text.specials import BOS_ID, EOS_ID, PAD_ID

        tf = self.tf
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1), 0)
        keep = before_end & tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, BOS_ID)
        words = tf.ragged.boolean_mask(tf.gather(self.tokens, ids), keep)
        return tf.strings.reduce_join(words, axis=1, separator="" if self.kind == "char" else " ")


def _build_module(tf, model, beam_size, n_best, max_length, options=None):
    """A `tf.Module` whose tf.functions decode with `model`; returns (module, signatures)."""
    module = tf.Module()
    # Tracking the variables saves them with the module; the functions
    # capture the very same tf.Variables through the Keras layers.
    module.model_variables = [v.value for v in model.variables]
    ids_spec = tf.TensorSpec([None, None], tf.int32, name="source_ids")

    def search(source_ids, method, n):
        result = model.search_function(
            source_ids, None, method=method, max_length=max_length, beam_size=beam_size,
            n_best=n, **{**SEARCH_OPTIONS, **(options or {}), "alignments": False})
        return {"ids": tf.cast(result["ids"], tf.int32),
                "scores": tf.cast(result["scores"], tf.float32)}

    module.greedy = tf.function(lambda source_ids: search(source_ids, "greedy", 1),
                                input_signature=[ids_spec], autograph=False)
    signatures = {"greedy": module.greedy}
    if beam_size > 1:
        module.beam = tf.function(lambda source_ids: search(source_ids, "beam", n_best),
                                  input_signature=[ids_spec], autograph=False)
        signatures["beam"] = module.beam
    signatures["serving_default"] = signatures["beam" if beam_size > 1 else "greedy"]

    kinds = [in_graph_tokenizer_kind(t) for t in (model.source_tokenizer, model.target_tokenizer)]
    if all(kinds):
        source = _GraphTokenizer(tf, model.source_tokenizer)
        target = _GraphTokenizer(tf, model.target_tokenizer)
        module.source_table, module.target_table = source.table, target.table
        method = "beam" if beam_size > 1 else "greedy"

        def translate(texts):
            result = search(source.encode(texts), method, 1)
            return {"texts": target.decode(result["ids"][:, 0]), "scores": result["scores"][:, 0]}

        module.translate = tf.function(
            translate, input_signature=[tf.TensorSpec([None], tf.string, name="texts")],
            autograph=False)
        signatures["translate"] = module.translate
    return module, signatures


@contextlib.contextmanager
def _staging_directory(directory):
    """A fresh temporary folder beside `directory`, removed unless moved away."""
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".tmp",
                               dir=parent)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging, directory):
    """Renames `staging` to `directory`, moving an old `directory` aside first."""
    if not os.path.lexists(directory):
        os.rename(staging, directory)
        return
    backup = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".old",
                              dir=os.path.dirname(os.path.abspath(directory)))
    old = os.path.join(backup, "old")
    os.rename(directory, old)
    try:
        os.rename(staging, directory)
    except BaseException:
        os.rename(old, directory)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)


EXPORT_OPTIONS = ("length_penalty", "coverage_penalty", "length_normalization", "min_length",
                  "no_repeat_ngram_size")


def export_savedmodel(model, directory, beam_size=4, n_best=1, max_length=DEFAULT_MAX_LENGTH,
                      overwrite=False, **options):
    """Writes a `Seq2Seq` model as a TensorFlow SavedModel with decoding signatures.

    The folder is written under a temporary name beside `directory` and
    renamed into place only when complete.

    Args:
        model: a `seqzoo.models.Seq2Seq`.
        directory: the SavedModel folder to create.
        beam_size: beam width of the `beam` and `translate` signatures; 1
            exports greedy search only.
        n_best: hypotheses the `beam` signature returns (`<= beam_size`).
        max_length: the most target tokens decoded, `</s>` included.
        overwrite: replace an existing `directory`.
        **options: decoding options built into the signatures:
            `length_penalty`, `coverage_penalty`, `length_normalization` (beam
            search), `min_length`, `no_repeat_ngram_size` (both searches);
            see `Seq2Seq.search`.

    Returns:
        The list of signature names written.

    Raises:
        InputError: another Keras backend than TensorFlow, not a seq2seq
            model, bad arguments, or `directory` exists without `overwrite`.
    """
    from seqzoo.models import Seq2Seq

    tf = check_tensorflow_backend()
    if not isinstance(model, Seq2Seq):
        raise InputError(f"Expected a Seq2Seq model. Received: {type(model).__name__}")
    _check_int("beam_size", beam_size)
    _check_int("max_length", max_length)
    _check_int("n_best", n_best)
    if n_best > beam_size:
        raise InputError(f"Expected n_best <= beam_size. Received: n_best={n_best}, "
                         f"beam_size={beam_size}")
    unknown = sorted(set(options) - set(EXPORT_OPTIONS))
    if unknown:
        raise InputError(f"Unknown decoding options {unknown}; expected some of "
                         f"{list(EXPORT_OPTIONS)}")
    directory = os.fspath(directory)
    if os.path.lexists(directory) and not overwrite:
        raise InputError(f"{directory} exists; pass --overwrite (overwrite=True) to replace it")
    try:
        module, signatures = _build_module(tf, model, beam_size, n_best, max_length, options)
    except ValueError as e:  # a bad option value, named by the search
        raise InputError(str(e)) from None
    info = {
        "signatures": sorted(signatures),
        "beam_size": beam_size,
        "n_best": n_best if beam_size > 1 else 1,
        "max_length": max_length,
        "options": {**{k: SEARCH_OPTIONS[k] for k in EXPORT_OPTIONS}, **options},
        "source_tokenizer": type(model.source_tokenizer).__name__,
        "target_tokenizer": type(model.target_tokenizer).__name__,
        "text_signature": "translate" in signatures,
    }
    with _staging_directory(directory) as staging:
        tf.saved_model.save(module, staging, signatures=signatures)
        with open(os.path.join(staging, "assets", INFO_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        if os.path.lexists(directory) and not overwrite:  # appeared while exporting
            raise InputError(f"{directory} exists; pass --overwrite (overwrite=True) to replace it")
        _replace(staging, directory)
    return info["signatures"]

