"""The base of the zoo's models: hyperparameters in, a Keras model out."""

import os

import keras
import numpy as np
from keras import ops

from seqzoo.checks import check_positive_int, check_rate  # noqa: F401 (used by the models)
from seqzoo.errors import ArgumentError, InputError
from seqzoo.io import set_default_mode
from seqzoo.layers.embedding import TokenEmbedding
from seqzoo.text.embeddings import load_embeddings
from seqzoo.text.tokenizers import Tokenizer, tokenizer_from_config

DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_CLIPNORM = 5.0


def default_optimizer(learning_rate=DEFAULT_LEARNING_RATE, clipnorm=DEFAULT_CLIPNORM):
    """Adam with gradient clipping by global norm, the zoo's default."""
    return keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=clipnorm)


def serialize_tokenizer(tokenizer):
    """`{"class": ..., "config": ...}` of a tokenizer, or `None`."""
    if tokenizer is None:
        return None
    return {"class": type(tokenizer).__name__, "config": tokenizer.get_config()}


def deserialize_tokenizer(value, name="tokenizer"):
    """A tokenizer from a tokenizer object, its serialized dict, or `None`."""
    if value is None or isinstance(value, Tokenizer):
        return value
    if isinstance(value, dict):
        return tokenizer_from_config(value)
    raise TypeError(
        f"Expected a seqzoo tokenizer, its config dict or None. Received: {name}={value!r:.100}"
    )


class ZooModel(keras.Model):
    """A functional Keras model rebuilt from its hyperparameters.

    Subclasses build their graph in `__init__` from plain hyperparameters,
    call `super().__init__(inputs=..., outputs=...)`, store the
    hyperparameters in `self._hyperparameters` and define `default_loss`
    and `default_metrics`. Saving to `.keras` stores the hyperparameters
    (and the tokenizer, if any) in the archive's config; loading rebuilds the
    model from them and restores the weights, in Keras safe mode.
    """

    def __init__(self, *args, tokenizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tokenizer = deserialize_tokenizer(tokenizer)

    @property
    def hyperparameters(self):
        """A copy of the arguments the model was built from (its config without the tokenizer)."""
        return dict(self._hyperparameters)

    @property
    def parts(self):
        """The model's named sub-layers, e.g. `{"encoder": RNNStack, "head": Dense, ...}`.

        Absent parts (no bridge, no attention) are left out.
        """
        return {name: layer for name, layer in getattr(self, "_parts", {}).items()
                if layer is not None}

    def embedding_layer(self, side=None):
        """The `TokenEmbedding` of one vocabulary: `side="source"` or `"target"` for a
        `Seq2Seq`, `None` for the models with one vocabulary.

        Raises:
            InputError: `side` does not name an embedding of this model, or the
                model reads feature vectors (`vocab_size=None`).
        """
        parts = self.parts
        if "source_embedding" in parts:
            if side not in ("source", "target"):
                raise InputError(f"Expected side='source' or 'target' for a "
                                 f"{type(self).__name__}. Received: side={side!r}")
            return parts[f"{side}_embedding"]
        if side is not None:
            raise InputError(f"{type(self).__name__} has one vocabulary: pass side=None. "
                             f"Received: side={side!r}")
        layer = parts.get("embedding") or next(
            (lay for lay in self.layers if isinstance(lay, TokenEmbedding)), None)
        if layer is None:
            raise InputError(f"{type(self).__name__} reads feature vectors (vocab_size=None): "
                             "it has no token embedding")
        return layer

    def set_embeddings(self, embeddings, side=None, trainable=True, **options):
        """Starts an embedding from pre-trained vectors, frozen or trainable.

        Example:

        ```python
        model = seqzoo.create("lstm_classifier", vocab_size=tok.vocab_size, num_classes=2,
                              embedding_dim=100, tokenizer=tok)
        loaded = model.set_embeddings("glove.6B.100d.txt", trainable=False)
        print(loaded.summary())   # words found, by case, missing
        model.compile()
        ```

        Args:
            embeddings: a word-vector file (GloVe, word2vec text or binary,
                fastText `.vec`, optionally gzip-compressed), read with the
                model's tokenizer for that side by
                `seqzoo.text.embeddings.load_embeddings`; or a
                `PretrainedEmbeddings`; or a `[vocabulary size, embedding_dim]`
                array.
            side: `"source"` or `"target"` for a `Seq2Seq`; `None` otherwise.
            trainable: `False` freezes the embedding: call `set_embeddings`
                before `compile` then (the optimizer takes the trainable
                variables at `compile`). A tied output layer shares the target
                embedding's matrix, so freezing that freezes it too. The
                saved model holds the vectors; loaded, every layer trains again
                (and Keras skips the saved optimizer state, with a warning: its
                variables differ). `seqzoo.training.FreezeFor` freezes for a
                number of steps instead.
            **options: for a file, `load_embeddings` options (`format`, `oov`,
                `case_fallback`, `counts`, `seed`, or `vocabulary` to read
                with another vocabulary of the same ids).

        Returns:
            The `PretrainedEmbeddings` read (with its `report`), or the
            array given.

        Raises:
            InputError: the shape is not the embedding's (the message says
                which `embedding_dim` to build the model with), the model has
                no tokenizer to read a file with, or it is already compiled
                and `trainable=False`.
            DataError: the file is bad (see `load_embeddings`).
        """
        layer = self.embedding_layer(side)
        if isinstance(embeddings, (str, os.PathLike)):
            vocabulary = options.pop("vocabulary", None)
            if vocabulary is None:
                vocabulary = getattr(self, "tokenizer" if side is None else f"{side}_tokenizer")
            if vocabulary is None:
                raise InputError(f"{type(self).__name__} {self.name!r} has no tokenizer to read "
                                 f"{os.fspath(embeddings)} with: build it with a tokenizer, or "
                                 "pass vocabulary=...")
            embeddings = load_embeddings(embeddings, vocabulary, **options)
        elif options:
            raise InputError(f"Options {sorted(options)} apply to reading a file. Received: "
                             f"embeddings={type(embeddings).__name__}")
        matrix = np.asarray(getattr(embeddings, "matrix", embeddings), dtype="float32")
        expected = tuple(layer.embeddings.shape)
        if matrix.shape != expected:
            hint = (f"; build the model with embedding_dim={matrix.shape[1]}"
                    if matrix.ndim == 2 and matrix.shape[0] == expected[0] else "")
            raise InputError(f"Expected a [vocabulary size, embedding_dim] matrix of shape "
                             f"{expected} for {layer.name}. Received: shape {matrix.shape}{hint}")
        if not trainable and getattr(self, "optimizer", None) is not None:
            raise InputError(f"{self.name!r} is compiled: call set_embeddings(..., "
                             "trainable=False) before compile, or train with "
                             "seqzoo.training.FreezeFor(steps, parts=...)")
        layer.embeddings.assign(matrix)
        layer.trainable = trainable
        return embeddings

    def encode_texts(self, texts):
        """Token ids `[B, T]` (right padded) of raw texts, with the model's tokenizer.

        Raises:
            ValueError: the model has no tokenizer, or a text is empty.
        """
        from seqzoo.data.padding import pad_sequences

        if self.tokenizer is None:
            raise ValueError(
                f"Model {self.name!r} has no tokenizer: pass token ids, or build the "
                "model with tokenizer=... so that it can read text."
            )
        if isinstance(texts, str):
            raise TypeError("Expected a list of texts. Received: a single string")
        ids = self.tokenizer.encode_batch(list(texts))
        for index, row in enumerate(ids):
            if not row:
                raise ArgumentError("Expected non-empty texts. "
                                    f"Received: texts[{index}]={texts[index]!r}")
        return pad_sequences(ids)

    def predict_texts(self, texts, **kwargs):
        """`predict` on raw texts (see `encode_texts`); returns the model's outputs."""
        return self.predict(self.encode_texts(texts), verbose=0, **kwargs)

    def default_loss(self):
        raise NotImplementedError

    def default_metrics(self):
        return []

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configures training; `"auto"` picks the zoo's defaults.

        Defaults: Adam (learning rate 1e-3) with gradient clipping by global
        norm 5.0, the model's own loss (`default_loss()`) and metrics
        (`default_metrics()`). Any other Keras `compile` argument passes
        through.
        """
        if optimizer == "auto":
            optimizer = default_optimizer()
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = self.default_metrics()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        # Build the optimizer now so that a model saved before training
        # holds the same optimizer variables that loading creates.
        if self.built and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # What keras.Model does, which it skips for models that override compile().
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **self._hyperparameters,
            "tokenizer": serialize_tokenizer(self.tokenizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


# Temporary archives of `save_model`: a kill during a save can leave one behind.
TMP_PREFIX = ".tmp-"


def remove_partial_saves(directory):
    """Removes the temporary archives an interrupted `save_model` left in `directory`."""
    import os

    for name in os.listdir(directory):
        if name.startswith(TMP_PREFIX) and name.endswith(".keras"):
            os.remove(os.path.join(directory, name))


def save_model(model, path):
    """Saves a model to a `.keras` file atomically.

    The archive is written beside `path` under a temporary name and renamed
    over it only when complete, so a crash never leaves a half-written file
    in place of the last good one.
    """
    import os
    import tempfile

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".keras", dir=directory)
    os.close(fd)
    try:
        model.save(tmp)
        set_default_mode(tmp)  # mkstemp creates the file 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def sequence_inputs(vocab_size=None, embedding_dim=None, input_dim=None, mask_value=None,
                    batch_size=None, name="embedding"):
    """The input block shared by the RNN models: token ids or feature vectors.

    Exactly one of `vocab_size` (token ids through a `TokenEmbedding` that
    masks padding) and `input_dim` (real-valued feature vectors, masked where
    every feature equals `mask_value` when it is given) must be set.

    Returns:
        `(inputs, x)`: the `keras.Input` and the `[B, T, D]` tensor after it.
    """
    from seqzoo.layers import TokenEmbedding

    if (vocab_size is None) == (input_dim is None):
        raise ArgumentError(
            "Expected exactly one of vocab_size (token inputs) and input_dim (feature "
            f"inputs). Received: vocab_size={vocab_size!r}, input_dim={input_dim!r}"
        )
    if vocab_size is not None:
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("embedding_dim", embedding_dim)
        inputs = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="token_ids")
        return inputs, TokenEmbedding(vocab_size, embedding_dim, name=name)(inputs)
    check_positive_int("input_dim", input_dim)
    inputs = keras.Input(batch_shape=(batch_size, None, input_dim), name="features")
    x = inputs
    if mask_value is not None:
        x = keras.layers.Masking(mask_value=mask_value, name="masking")(x)
    return inputs, x


class SampledTraining:
    """Mixin: train a model's `SampledSoftmax` head with sampled softmax.

    In training (when `num_sampled` is set) the model's forward pass stops at
    the hidden states and the loss is the head's sampled softmax loss; only
    the loss is reported, since no full logits exist. Evaluation and
    prediction run the full graph and the compiled loss and metrics.
    Subclasses call `_init_sampled_training` after building their graph.
    """

    def _init_sampled_training(self, inputs, hidden, head, num_sampled):
        self.num_sampled = num_sampled
        self._sampled_head = head
        # Shares every layer with the model.
        self._hidden_model = keras.Model(inputs, hidden, name="hidden")
        self._emits_hidden = False

    def call(self, inputs, training=None, mask=None):
        self._emits_hidden = bool(training) and self.num_sampled is not None
        if self._emits_hidden:
            return self._hidden_model(inputs, training=training)
        return super().call(inputs, training=training, mask=mask)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training and self._emits_hidden:
            loss = self._sampled_head.compute_loss(y_pred, y, training=True)
            if self.losses:
                loss = loss + ops.sum(self.losses)
            return loss
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._emits_hidden:
            # No full logits exist in sampled training; evaluate() has the metrics.
            return {
                m.name: m.result()
                for m in self.metrics
                if m.name == "loss" and isinstance(m, keras.metrics.Mean)
            }
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_metrics_result(self):
        # Sampled training never builds the compiled metrics; skip them.
        results = {}
        for metric in self.metrics:
            if getattr(metric, "built", True):
                result = metric.result()
                results.update(result if isinstance(result, dict) else {metric.name: result})
        return results

