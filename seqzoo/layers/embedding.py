"""Token embedding with a padding mask and an optional tied output projection."""

import math

import keras
from keras import ops

from seqzoo.errors import ArgumentError
from seqzoo.text.specials import PAD_ID


@keras.saving.register_keras_serializable(package="seqzoo")
class TokenEmbedding(keras.layers.Layer):
    """Maps token ids to vectors and masks padding.

    The mask it produces (`ids != pad_id`) flows to the Keras layers that
    follow (RNNs skip padded steps). `project` reuses the embedding matrix as
    the output layer, so a model can tie its input and output embeddings.

    Args:
        vocab_size: number of token ids, `> 0`.
        embedding_dim: size of each vector, `> 0`.
        pad_id: the padding id; its positions are masked.
        mask_padding: whether to produce a mask.
        scale: `False` (no scaling), `True` (multiply by
            `sqrt(embedding_dim)`, as in Transformer-style tied embeddings),
            or a positive float factor.
        embeddings_initializer: initializer of the `[vocab_size, embedding_dim]`
            matrix.
        embeddings_regularizer: optional regularizer of that matrix.

    Call arguments:
        inputs: integer ids of shape `[B, T]` (any shape works).

    Returns:
        Vectors of shape `inputs.shape + [embedding_dim]`.
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        pad_id=PAD_ID,
        mask_padding=True,
        scale=False,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ArgumentError(
                    f"Expected a positive integer. Received: {name}={value!r}"
                )
        if not 0 <= pad_id < vocab_size:
            raise ArgumentError(
                f"Expected 0 <= pad_id < vocab_size={vocab_size}. Received: pad_id={pad_id}"
            )
        if isinstance(scale, bool):
            factor = math.sqrt(embedding_dim) if scale else 1.0
        elif isinstance(scale, (int, float)) and scale > 0:
            factor = float(scale)
        else:
            raise ArgumentError(f"Expected a bool or a positive number. Received: scale={scale!r}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.pad_id = pad_id
        self.mask_padding = mask_padding
        self.scale = scale
        self._factor = factor
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.supports_masking = mask_padding

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.embedding_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
        )
        self.built = True

    def call(self, inputs):
        ids = ops.convert_to_tensor(inputs)
        if "int" not in str(ids.dtype):
            ids = ops.cast(ids, "int32")
        vectors = ops.take(self.embeddings, ids, axis=0)
        if self._factor != 1.0:
            vectors = vectors * ops.cast(self._factor, vectors.dtype)
        return vectors

    def lookup(self, ids):
        """The vectors of `ids` without a mask, e.g. for one decoding step."""
        if not self.built:
            self.build()
        return self.call(ids)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_padding:
            return None
        return ops.not_equal(inputs, self.pad_id)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_dim,)

    def project(self, hidden):
        """Logits from the tied embedding matrix.

        Args:
            hidden: tensor of shape `[..., embedding_dim]`.

        Returns:
            Logits of shape `[..., vocab_size]`: `hidden @ embeddings^T`.
        """
        if hidden.shape[-1] is not None and hidden.shape[-1] != self.embedding_dim:
            raise ArgumentError(
                f"Expected inputs with last dimension embedding_dim={self.embedding_dim} "
                f"to project onto the vocabulary. Received: shape={tuple(hidden.shape)}"
            )
        return ops.matmul(hidden, ops.transpose(ops.cast(self.embeddings, hidden.dtype)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "pad_id": self.pad_id,
                "mask_padding": self.mask_padding,
                "scale": self.scale,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer
                ),
            }
        )
        return config
