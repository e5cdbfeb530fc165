"""Sampled softmax for large output vocabularies.

The sampled softmax loss with the math of `tf.nn.sampled_softmax_loss`, and
`SampledSoftmax`, an output projection that trains with the sampled loss and
evaluates with the full softmax. Everything is `keras.ops` / `keras.random`
with fixed shapes, so it runs under `jit` on every backend.
"""

import keras
import numpy as np
from keras import ops

from seqzoo.checks import check_positive_int
from seqzoo.errors import ArgumentError
from seqzoo.losses.samplers import (
    _candidate_sampler,
    _check_sampler,
)
from seqzoo.losses.sequence_loss import safe_divide, token_crossentropy
from seqzoo.text.specials import PAD_ID

# What TF's compute_accidental_hits adds to a hit: -FLT_MAX. Finite, so that
# `0 * logit` never meets an infinity; exp() of it is exactly 0.
_HIT_LOGIT = float(np.finfo("float32").min)


def _float32(x):
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) != "float32":
        x = ops.cast(x, "float32")
    return x


def sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=True,
    sampler="log_uniform",
    seed=None,
):
    """Sampled softmax cross-entropy, as `tf.nn.sampled_softmax_loss`.

    A fast training-time estimate of the full softmax loss: each example is
    scored against its true class(es) and a shared set of `num_sampled`
    candidates. The logits of true and sampled classes get `log` of their
    expected count subtracted (the correction that makes the estimate
    consistent), sampled candidates equal to one of the example's true
    classes ("accidental hits") are removed by a very large negative logit,
    and the loss is the softmax cross-entropy with target weight
    `1 / num_true` on each true class. Use it for training only; evaluate
    with the full softmax.

    Args:
        weights: float tensor of shape `[num_classes, dim]`, the output
            embeddings (note: transposed w.r.t. a `Dense` kernel).
        biases: float tensor of shape `[num_classes]`.
        labels: int tensor of shape `[batch_size, num_true]` (or
            `[batch_size]` when `num_true == 1`), the target classes.
        inputs: float tensor of shape `[batch_size, dim]`, the hidden states.
        num_sampled: int, the number of classes sampled per batch.
        num_classes: int, the number of possible classes.
        num_true: int, the number of target classes per example.
        sampled_values: optional tuple `(sampled_candidates,
            true_expected_count, sampled_expected_count)` as returned by a
            candidate sampler (TF's included); when given the sampler is not
            run. Gradients do not flow through it.
        remove_accidental_hits: whether to remove sampled classes that equal
            one of the example's target classes. Defaults to `True`.
        sampler: `"log_uniform"` (default, as TF) or `"uniform"`; always
            drawn with `unique=True`.
        seed: None, an int or a `keras.random.SeedGenerator` for the sampler.

    Returns:
        Float tensor of shape `[batch_size]`, the loss of each example.

    Raises:
        ValueError: on bad argument values or shapes, naming them.
    """
    num_sampled = check_positive_int("num_sampled", num_sampled)
    num_classes = check_positive_int("num_classes", num_classes)
    num_true = check_positive_int("num_true", num_true)
    _check_sampler(sampler)
    inputs = _float32(inputs)
    weights = _float32(weights)
    biases = _float32(biases)
    labels = ops.cast(ops.convert_to_tensor(labels), "int32")
    if len(labels.shape) == 1 and num_true == 1:
        labels = ops.expand_dims(labels, -1)
    if len(labels.shape) != 2 or labels.shape[1] not in (None, num_true):
        raise ArgumentError(
            "`labels` must have the shape `[batch_size, num_true]` with "
            f"num_true={num_true}. Received: labels.shape={tuple(labels.shape)}"
        )
    if len(inputs.shape) != 2:
        raise ArgumentError(
            "`inputs` must have the shape `[batch_size, dim]`. "
            f"Received: inputs.shape={tuple(inputs.shape)}"
        )
    if len(weights.shape) != 2:
        raise ArgumentError(
            "`weights` must have the shape `[num_classes, dim]`. "
            f"Received: weights.shape={tuple(weights.shape)}"
        )
    if len(biases.shape) != 1:
        raise ArgumentError(
            "`biases` must have the shape `[num_classes]`. "
            f"Received: biases.shape={tuple(biases.shape)}"
        )

    if sampled_values is None:
        if num_sampled > num_classes:
            raise ArgumentError(
                "`num_sampled` cannot exceed `num_classes`. Received: "
                f"num_sampled={num_sampled}, num_classes={num_classes}"
            )
        sampled_values = _candidate_sampler(
            sampler, labels, num_sampled, num_classes, True, seed
        )
    sampled, true_expected, sampled_expected = sampled_values
    sampled = ops.cast(ops.stop_gradient(sampled), "int32")
    true_expected = ops.stop_gradient(_float32(true_expected))
    sampled_expected = ops.stop_gradient(_float32(sampled_expected))
    if sampled.shape[0] is not None and sampled.shape[0] != num_sampled:
        raise ArgumentError(
            "`sampled_values` must hold `num_sampled` candidates. Received: "
            f"num_sampled={num_sampled}, sampled candidates of shape "
            f"{tuple(sampled.shape)}"
        )

    # [N, num_true]: each example against its own true classes.
    true_w = ops.take(weights, labels, axis=0)
    true_logits = ops.sum(ops.expand_dims(inputs, 1) * true_w, axis=-1)
    true_logits = true_logits + ops.take(biases, labels, axis=0)
    # [N, S]: every example against the shared candidates.
    sampled_w = ops.take(weights, sampled, axis=0)
    sampled_logits = ops.matmul(inputs, ops.transpose(sampled_w))
    sampled_logits = sampled_logits + ops.take(biases, sampled, axis=0)

    true_logits = true_logits - ops.log(true_expected)
    sampled_logits = sampled_logits - ops.log(
        ops.reshape(sampled_expected, (1, -1))
    )
    if remove_accidental_hits:
        hits = ops.any(
            ops.equal(
                ops.expand_dims(labels, -1), ops.reshape(sampled, (1, 1, -1))
            ),
            axis=1,
        )
        sampled_logits = ops.where(
            hits, ops.full_like(sampled_logits, _HIT_LOGIT), sampled_logits
        )

    # Cross-entropy with target 1/num_true on each true column:
    # -sum_j (1/num_true) * log_softmax(z)_j = logsumexp(z) - mean(z_true).
    all_logits = ops.concatenate([true_logits, sampled_logits], axis=1)
    return ops.logsumexp(all_logits, axis=1) - ops.mean(true_logits, axis=1)


@keras.saving.register_keras_serializable(package="seqzoo")
class SampledSoftmax(keras.layers.Layer):
    """Output projection to a large vocabulary, trained with sampled softmax.

    `call` computes the full logits. `compute_loss` computes the training
    loss from the hidden states directly: the sampled softmax loss when
    `training=True`, the exact softmax cross-entropy otherwise. Both are
    reduced to the mean over real (unmasked) tokens. The sampled loss costs
    O(num_sampled * H) per token instead of O(num_classes * H), plus
    O(num_classes) once per batch to draw the candidates (distinct ids,
    drawn with the layer's own `SeedGenerator`).

    Args:
        num_classes: int, the vocabulary size `V`.
        num_sampled: int in `[1, num_classes)`, the number of candidates
            sampled per batch, or `None` to train with the full softmax
            (the layer is then a plain output projection). Defaults to 512.
        sampler: `"log_uniform"` (default; for ids sorted by decreasing
            frequency) or `"uniform"`.
        remove_accidental_hits: see `sampled_softmax_loss`. Defaults to
            `True`.
        use_bias: whether the projection has a bias. Defaults to `True`.
        kernel_initializer: initializer of the `[V, H]` kernel. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of the `[V]` bias. Defaults to
            `"zeros"`.
        seed: optional int seeding the layer's own `SeedGenerator`.
        tied_embedding: optional `seqzoo.layers.TokenEmbedding` whose
            `[V, H]` matrix serves as the kernel (tied input and output
            embeddings); the layer then owns only its bias. The tie is not
            part of `get_config`: the model that ties the two rebuilds it.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor of shape `[..., H]`.

    Returns:
        Logits of shape `[..., num_classes]`.

    Example:

    ```python
    head = SampledSoftmax(num_classes=50_000, num_sampled=1024)
    logits = head(hidden)                          # [B, T, 50000]
    loss = head.compute_loss(hidden, targets, training=True)
    ```
    """

    def __init__(
        self,
        num_classes,
        num_sampled=512,
        sampler="log_uniform",
        remove_accidental_hits=True,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        tied_embedding=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        num_classes = check_positive_int("num_classes", num_classes)
        if tied_embedding is not None and tied_embedding.vocab_size != num_classes:
            raise ArgumentError(
                "A tied embedding must have one row per class. Received: "
                f"num_classes={num_classes}, tied_embedding.vocab_size={tied_embedding.vocab_size}"
            )
        # Not tracked as a sublayer: the embedding belongs to the model, and
        # its matrix must not be counted or saved twice.
        object.__setattr__(self, "tied_embedding", tied_embedding)
        if num_sampled is not None:
            num_sampled = check_positive_int("num_sampled", num_sampled)
        if num_sampled is not None and num_sampled >= num_classes:
            raise ArgumentError(
                "`num_sampled` must be smaller than `num_classes`. Received: "
                f"num_sampled={num_sampled}, num_classes={num_classes}"
            )
        _check_sampler(sampler)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
        ):
            raise ArgumentError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.num_classes = num_classes
        self.num_sampled = num_sampled
        self.sampler = sampler
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = None if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ArgumentError(
                "The last axis of the inputs of `SampledSoftmax` must be "
                f"known. Received: input_shape={tuple(input_shape)}"
            )
        if self.tied_embedding is None:
            self._kernel = self.add_weight(
                name="kernel",
                shape=(self.num_classes, dim),
                initializer=self.kernel_initializer,
            )
        elif dim != self.tied_embedding.embedding_dim:
            raise ArgumentError(
                "The inputs of a tied `SampledSoftmax` must have the embedding size "
                f"{self.tied_embedding.embedding_dim}. Received: input_shape={tuple(input_shape)}"
            )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.num_classes,),
                initializer=self.bias_initializer,
            )
        else:
            self.bias = None

    @property
    def kernel(self):
        """The `[num_classes, H]` output matrix (the embedding matrix when tied)."""
        if self.tied_embedding is not None:
            return self.tied_embedding.embeddings
        return self._kernel

    def call(self, inputs):
        logits = ops.matmul(inputs, ops.transpose(self.kernel))
        if self.use_bias:
            logits = logits + self.bias
        return logits

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def compute_loss(self, inputs, labels, mask=None, training=False):
        """Mean loss over the real tokens.

        Args:
            inputs: float tensor of shape `[..., H]`, e.g. `[B, T, H]`.
            labels: int tensor of shape `[...]`, e.g. `[B, T]`.
            mask: optional bool or float tensor of shape `[...]`; defaults to
                `labels != PAD_ID`.
            training: `True` for the sampled softmax loss, `False` for the
                full softmax cross-entropy.

        Returns:
            Scalar float32: `sum(mask * loss) / sum(mask)` (0 when the mask
            is all zero).
        """
        inputs = ops.convert_to_tensor(inputs)
        if not self.built:
            self.build(inputs.shape)
        labels = ops.cast(ops.convert_to_tensor(labels), "int32")
        if tuple(labels.shape) != tuple(inputs.shape[:-1]) and None not in (
            tuple(labels.shape) + tuple(inputs.shape[:-1])
        ):
            raise ArgumentError(
                "`labels` must have the shape of `inputs` without its last "
                f"axis. Received: labels.shape={tuple(labels.shape)}, "
                f"inputs.shape={tuple(inputs.shape)}"
            )
        if mask is None:
            mask = ops.not_equal(labels, PAD_ID)
        weights = ops.reshape(ops.cast(mask, "float32"), (-1,))
        flat_labels = ops.reshape(labels, (-1,))
        flat_inputs = ops.reshape(_float32(inputs), (-1, inputs.shape[-1]))
        kernel = _float32(self.kernel)
        if self.use_bias:
            bias = _float32(self.bias)
        else:
            bias = ops.zeros((self.num_classes,), dtype="float32")
        if training and self.num_sampled is not None:
            losses = sampled_softmax_loss(
                kernel,
                bias,
                flat_labels,
                flat_inputs,
                num_sampled=self.num_sampled,
                num_classes=self.num_classes,
                remove_accidental_hits=self.remove_accidental_hits,
                sampler=self.sampler,
                seed=self.seed_generator,
            )
        else:
            logits = ops.matmul(flat_inputs, ops.transpose(kernel)) + bias
            losses = token_crossentropy(flat_labels, logits)
        return safe_divide(ops.sum(losses * weights), ops.sum(weights))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "num_sampled": self.num_sampled,
                "sampler": self.sampler,
                "remove_accidental_hits": self.remove_accidental_hits,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "seed": self.seed,
            }
        )
        return config
