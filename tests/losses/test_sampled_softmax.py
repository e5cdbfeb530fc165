"""Tests for sampled_softmax_loss and the SampledSoftmax layer."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.losses import SampledSoftmax, sampled_softmax_loss
from tests.helpers import BACKEND, gradient, needs_tensorflow

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

# One set of sizes for the whole file: on JAX every new shape costs an
# eager compile, and the suite must stay fast.
V, H, N = 40, 8, 12
S = 5


@pytest.fixture
def params():
    rng = np.random.default_rng(0)
    return (
        rng.normal(scale=0.5, size=(V, H)).astype("float32"),
        rng.normal(size=(V,)).astype("float32"),
        rng.normal(size=(N, H)).astype("float32"),
    )


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_sampled_loss(w, b, labels, x, sampled, true_ec, sampled_ec, remove_hits):
    """Reference written from the definition, one example at a time."""
    out = []
    for i in range(len(x)):
        true_logits = w[labels[i]] @ x[i] + b[labels[i]] - np.log(true_ec[i])
        cols = []
        for j, c in enumerate(sampled):
            if remove_hits and c in labels[i]:
                continue  # an accidental hit gets probability 0
            cols.append(w[c] @ x[i] + b[c] - np.log(sampled_ec[j]))
        z = np.concatenate([true_logits, np.array(cols)])
        out.append(-np_log_softmax(z)[: len(labels[i])].mean())
    return np.array(out)


def _values(sampled, num_true, seed=0):
    rng = np.random.default_rng(seed)
    return (
        np.array(sampled, "int64"),
        rng.uniform(0.05, 0.9, size=(N, num_true)).astype("float32"),
        rng.uniform(0.05, 0.9, size=(len(sampled),)).astype("float32"),
    )


_rng = np.random.default_rng(42)
LABELS = {
    k: np.stack([_rng.choice(np.arange(1, 30), k, replace=False) for _ in range(N)])
    for k in (1, 2)
}
# Candidates that hit some example's true class, and ones that hit none.
WITH_HITS = [int(LABELS[1][0, 0]), int(LABELS[2][1, 1]), 30, 35, int(LABELS[2][3, 0])]
NO_HITS = [0, 30, 33, 36, 39]


@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("candidates", [WITH_HITS, NO_HITS], ids=["hits", "no_hits"])
@pytest.mark.parametrize("remove_hits", [True, False])
def test_matches_numpy_reference(params, num_true, candidates, remove_hits):
    w, b, x = params
    labels = LABELS[num_true]
    values = _values(candidates, num_true)
    loss = sampled_softmax_loss(
        w, b, labels, x, len(candidates), V, num_true=num_true,
        sampled_values=values, remove_accidental_hits=remove_hits,
    )
    expected = np_sampled_loss(w, b, labels, x, *values, remove_hits)
    assert tuple(loss.shape) == (N,)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss), expected, rtol=1e-5, atol=1e-6
    )


@needs_tensorflow
@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("candidates", [WITH_HITS, NO_HITS], ids=["hits", "no_hits"])
def test_matches_tf_nn_sampled_softmax_loss(params, num_true, candidates):
    import tensorflow as tf

    w, b, x = params
    labels = LABELS[num_true]
    values = _values(candidates, num_true)
    expected = tf.nn.sampled_softmax_loss(
        w, b, labels, x, len(candidates), V, num_true=num_true,
        sampled_values=values, remove_accidental_hits=True,
    ).numpy()
    loss = sampled_softmax_loss(
        w, b, labels, x, len(candidates), V, num_true=num_true, sampled_values=values
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss), expected, rtol=1e-5, atol=1e-5
    )


@needs_tensorflow
@pytest.mark.parametrize("num_true", [1, 2])
def test_matches_tf_with_tf_sampler_output(params, num_true):
    import tensorflow as tf

    w, b, x = params
    labels = LABELS[num_true]
    values = tf.random.log_uniform_candidate_sampler(
        labels, num_true, 8, True, V, seed=3
    )
    expected = tf.nn.sampled_softmax_loss(
        w, b, labels, x, 8, V, num_true=num_true, sampled_values=values
    ).numpy()
    loss = sampled_softmax_loss(
        w, b, labels, x, 8, V, num_true=num_true, sampled_values=values
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss), expected, rtol=1e-5, atol=1e-5
    )


def test_rank_one_labels_allowed_for_one_true_class(params):
    w, b, x = params
    values = _values(WITH_HITS, 1)
    a = sampled_softmax_loss(w, b, LABELS[1], x, S, V, sampled_values=values)
    c = sampled_softmax_loss(w, b, LABELS[1][:, 0], x, S, V, sampled_values=values)
    np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(c))


def _compiled(fn):
    # On JAX, one compiled function instead of dozens of eagerly compiled
    # ops (seconds faster), and a check that the loss traces under jit.
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def _cosine(a, b):
    a, b = a.ravel(), b.ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_gradient_with_all_but_one_class_sampled_follows_full_softmax():
    # Uniform sampler without replacement and num_sampled = V - 1: every
    # class has the same (exact) expected count (V - 1) / V, so the log-count
    # correction shifts all logits equally and cancels in the softmax. With
    # accidental hits removed, each example is scored against every class
    # but at most one (the one class the draw left out), so the sampled
    # gradient is the full one up to that class's small share. The
    # log-uniform sampler would instead subtract approximate, unequal
    # log-counts and bias the logits, so it is not the honest setup here.
    rng = np.random.default_rng(1)
    w = rng.normal(scale=0.5, size=(V, H)).astype("float32")
    b = np.zeros(V, "float32")
    x = rng.normal(size=(N, H)).astype("float32")
    labels = rng.integers(0, V, size=(N, 1)).astype("int32")

    def sampled(w, x):
        # `* 1.0` densifies TF's IndexedSlices gradient of the row gather.
        return ops.mean(
            sampled_softmax_loss(
                w * 1.0, b, labels, x, V - 1, V, sampler="uniform", seed=3
            )
        )

    def full(w, x):
        logits = ops.matmul(x, ops.transpose(w)) + b
        return ops.mean(
            ops.sparse_categorical_crossentropy(labels[:, 0], logits, from_logits=True)
        )

    gs_w, gs_x = gradient(_compiled(sampled), w, x)
    gf_w, gf_x = gradient(_compiled(full), w, x)
    assert _cosine(gs_w, gf_w) > 0.99
    assert _cosine(gs_x, gf_x) > 0.99
    # And with few samples the estimate is clearly not the full gradient.
    def few(w, x):
        return ops.mean(
            sampled_softmax_loss(w * 1.0, b, labels, x, S, V, sampler="uniform", seed=3)
        )

    (few_w, _) = gradient(_compiled(few), w, x)
    assert _cosine(few_w, gf_w) < 0.99


def test_plugs_into_sequence_loss_as_softmax_loss_function(params):
    from seqzoo.losses import sequence_loss

    w, b, _ = params
    rng = np.random.default_rng(8)
    hidden = rng.normal(size=(3, 4, H)).astype("float32")
    targets = np.array([[3, 25, 7, 2], [39, 1, 0, 0], [5, 0, 0, 0]], "int32")
    mask = (targets != 0).astype("float32")
    values = _values(NO_HITS, 1)

    def sampled(labels, logits):  # `logits` are the hidden states here
        flat = sampled_softmax_loss(
            w, b, ops.reshape(labels, (-1, 1)), ops.reshape(logits, (-1, H)),
            S, V, sampled_values=values,
        )
        return ops.reshape(flat, ops.shape(labels))

    loss = sequence_loss(hidden, targets, mask, softmax_loss_function=sampled)
    per_token = np_sampled_loss(
        w, b, targets.reshape(-1, 1), hidden.reshape(-1, H), *values, True
    ).reshape(3, 4)
    np.testing.assert_allclose(
        float(loss), (per_token * mask).sum() / mask.sum(), rtol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_sampled=0), "num_sampled=0"),
        (dict(num_sampled=V + 1, sampled_values=None), f"num_sampled={V + 1}"),
        (dict(num_sampled=4), "num_sampled=4"),  # S=5 candidates given
        (dict(num_true=2), rf"labels.shape=\({N}, 1\)"),
        (dict(sampler="zipf"), "sampler='zipf'"),
        (dict(inputs=np.zeros((N, H, 1))), "inputs.shape"),
    ],
)
def test_sampled_softmax_loss_bad_arguments(params, kwargs, match):
    w, b, x = params
    args = dict(
        weights=w, biases=b, labels=LABELS[1], inputs=x, num_sampled=S,
        num_classes=V, sampled_values=_values(WITH_HITS, 1),
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sampled_softmax_loss(**args)


# --- SampledSoftmax layer ---------------------------------------------------


@pytest.fixture
def batch():
    rng = np.random.default_rng(5)
    hidden = rng.normal(size=(3, 4, H)).astype("float32")
    labels = np.array([[3, 25, 7, 2], [39, 1, 0, 0], [0, 0, 0, 0]], "int32")
    return hidden, labels


def _built_layer(**kwargs):
    layer = SampledSoftmax(V, **{"num_sampled": S, "seed": 1, **kwargs})
    layer.build((None, None, H))
    rng = np.random.default_rng(9)
    weights = [rng.normal(size=(V, H)).astype("float32")]
    if layer.use_bias:
        weights.append(rng.normal(size=(V,)).astype("float32"))
    layer.set_weights(weights)
    return layer


def test_layer_logits_shape_and_values(batch):
    hidden, _ = batch
    layer = _built_layer()
    logits = ops.convert_to_numpy(layer(hidden))
    kernel, bias = layer.get_weights()
    assert logits.shape == (3, 4, V)
    assert layer.compute_output_shape((3, 4, H)) == (3, 4, V)
    np.testing.assert_allclose(logits, hidden @ kernel.T + bias, rtol=1e-5, atol=1e-5)
    no_bias = _built_layer(use_bias=False)
    assert len(no_bias.weights) == 1
    np.testing.assert_allclose(
        ops.convert_to_numpy(no_bias(hidden)),
        hidden @ no_bias.get_weights()[0].T, rtol=1e-5, atol=1e-5,
    )


def test_layer_eval_loss_is_masked_full_softmax_mean(batch):
    hidden, labels = batch
    layer = _built_layer()
    kernel, bias = layer.get_weights()
    ce = -np.take_along_axis(
        np_log_softmax(hidden @ kernel.T + bias), labels[..., None], -1
    )[..., 0]
    mask = labels != 0  # the last row is all padding
    loss = float(layer.compute_loss(hidden, labels, training=False))
    np.testing.assert_allclose(loss, ce[mask].mean(), rtol=1e-5)
    explicit = np.ones_like(labels, dtype=bool)
    loss_all = float(layer.compute_loss(hidden, labels, mask=explicit))
    np.testing.assert_allclose(loss_all, ce.mean(), rtol=1e-5)
    none = float(layer.compute_loss(hidden, labels, mask=np.zeros_like(explicit)))
    assert none == 0.0


def test_layer_training_loss_is_sampled(batch):
    hidden, labels = batch
    layer = _built_layer()
    eval_loss = float(layer.compute_loss(hidden, labels, training=False))
    train_loss = float(layer.compute_loss(hidden, labels, training=True))
    assert np.isfinite(train_loss)
    assert abs(train_loss - eval_loss) > 1e-3
    # With every class but one sampled (uniformly, so the log-count
    # correction cancels) the sampled loss is close to the full one.
    near_full = _built_layer(num_sampled=V - 1, sampler="uniform")
    near = float(near_full.compute_loss(hidden, labels, training=True))
    full = float(near_full.compute_loss(hidden, labels, training=False))
    assert near <= full + 1e-5 and full - near < 0.5


def test_layer_trains_in_a_compiled_model():
    vocab, dim = 30, 16
    rng = np.random.default_rng(0)
    x = rng.integers(1, vocab, size=(64, 5)).astype("int32")
    y = x.copy()  # copy task: predict the input token

    class CopyModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.embed = keras.layers.Embedding(vocab, dim)
            self.head = SampledSoftmax(vocab, num_sampled=8, seed=0)

        def call(self, tokens):
            return self.head(self.embed(tokens))

        def compute_loss(
            self, x=None, y=None, y_pred=None, sample_weight=None, training=True
        ):
            return self.head.compute_loss(self.embed(x), y, training=training)

    model = CopyModel()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after) and after < 0.5 * before


def test_layer_config_round_trip(batch):
    hidden, _ = batch
    layer = _built_layer(sampler="uniform", remove_accidental_hits=False)
    config = layer.get_config()
    clone = SampledSoftmax.from_config(config)
    assert clone.get_config() == config
    assert (clone.num_classes, clone.num_sampled, clone.sampler) == (V, S, "uniform")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, SampledSoftmax)
    assert restored.built  # build config travels with the layer
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(hidden)), ops.convert_to_numpy(layer(hidden))
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_sampled=0), "num_sampled=0"),
        (dict(num_sampled=V), f"num_sampled={V}, num_classes={V}"),
        (dict(num_sampled=V + 3), f"num_sampled={V + 3}, num_classes={V}"),
        (dict(num_classes=0), "num_classes=0"),
        (dict(sampler="zipf"), "sampler='zipf'"),
        (dict(seed=1.5), "seed=1.5"),
    ],
)
def test_layer_bad_arguments(kwargs, match):
    args = dict(num_classes=V, num_sampled=S)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SampledSoftmax(**args)


def test_full_softmax_mode_trains_with_the_exact_loss():
    layer = SampledSoftmax(9, num_sampled=None)
    rng = np.random.default_rng(11)
    hidden = rng.normal(size=(2, 3, 4)).astype("float32")
    labels = np.array([[1, 5, 0], [8, 0, 0]])
    train = float(ops.convert_to_numpy(layer.compute_loss(hidden, labels, training=True)))
    evaluation = float(ops.convert_to_numpy(layer.compute_loss(hidden, labels, training=False)))
    assert train == pytest.approx(evaluation, rel=1e-6)


def test_tied_layer_uses_the_embedding_matrix():
    from seqzoo.layers import TokenEmbedding

    embedding = TokenEmbedding(9, 4)
    embedding.build()
    layer = SampledSoftmax(9, num_sampled=3, tied_embedding=embedding)
    hidden = np.random.default_rng(12).normal(size=(2, 4)).astype("float32")
    logits = ops.convert_to_numpy(layer(hidden))
    expected = hidden @ ops.convert_to_numpy(embedding.embeddings).T
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)  # bias starts at 0
    assert [w.name for w in layer.weights] == ["bias"]
    with pytest.raises(ValueError, match="vocab_size=9"):
        SampledSoftmax(10, num_sampled=3, tied_embedding=embedding)
