import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.layers import TokenEmbedding
from seqzoo.layers.attention import BahdanauAttention, BaseAttention, LuongAttention
from tests.helpers import gradient

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral

B, T, S, M, U = 2, 3, 4, 4, 5
LENGTHS = np.array([4, 2])

# name -> (factory, query size). Memory size is M throughout; "general" and
# Bahdanau take a query of another size to show the sizes may differ.
MECHANISMS = {
    "dot": (lambda: LuongAttention(score="dot"), M),
    "general": (lambda: LuongAttention(score="general"), 3),
    "scaled": (lambda: LuongAttention(score="scaled"), M),
    "learned_scale": (lambda: LuongAttention(score="general", learned_scale=True), 3),
    "bahdanau": (lambda: BahdanauAttention(U), 3),
    "bahdanau_normalized": (lambda: BahdanauAttention(U, normalize=True), 3),
}
NAMES = list(MECHANISMS)


def _fixed_weights(layer, rng):
    """Small known weights for every variable of `layer` (g of learned_scale is not 1)."""
    weights = {}
    for var in layer.weights:
        name = var.path.split("/")[-1]
        if name in ("scale", "g"):
            value = np.array(1.7 if name == "scale" else 0.6, dtype="float32")
        else:
            value = rng.uniform(-0.5, 0.5, size=tuple(var.shape)).astype("float32")
        var.assign(value)
        weights[name] = value
    return weights


def _layer(name, seed=0):
    factory, q_size = MECHANISMS[name]
    layer = factory()
    layer.build((None, q_size), (None, None, M))
    return layer, _fixed_weights(layer, np.random.default_rng(seed)), q_size


def _inputs(q_size, seed=1, steps=T, junk=10.0):
    """Query [B, T, Q], memory [B, S, M] with junk on padding, mask [B, S]."""
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, steps, q_size)).astype("float32")
    memory = rng.normal(size=(B, S, M)).astype("float32")
    mask = np.arange(S)[None, :] < LENGTHS[:, None]
    memory[~mask] = junk * rng.normal(size=memory[~mask].shape)
    return query, memory, mask


def _np(x):
    return ops.convert_to_numpy(x)


def _reference(name, w, query, memory, mask):
    """Context and weights in plain numpy, one (batch, step, position) at a time."""
    ctx = np.zeros(query.shape[:2] + (memory.shape[-1],))
    att = np.zeros(query.shape[:2] + (memory.shape[1],))
    for b in range(query.shape[0]):
        real = np.flatnonzero(mask[b])
        for t in range(query.shape[1]):
            q = query[b, t].astype("float64")
            scores = []
            for s in real:
                m = memory[b, s].astype("float64")
                if name == "dot":
                    e = q @ m
                elif name == "scaled":
                    e = q @ m / np.sqrt(len(q))
                elif name in ("general", "learned_scale"):
                    e = q @ (w["kernel"].T @ m)
                    if name == "learned_scale":
                        e *= w["scale"]
                else:
                    v = w["v"]
                    pre = w["query_kernel"].T @ q + w["memory_kernel"].T @ m
                    if name == "bahdanau_normalized":
                        v = w["g"] * v / np.linalg.norm(v)
                        pre = pre + w["bias"]
                    e = v @ np.tanh(pre)
                scores.append(e)
            if len(real):
                p = np.exp(np.array(scores) - max(scores))
                p /= p.sum()
                att[b, t, real] = p
                ctx[b, t] = p @ memory[b, real]
    return ctx, att


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_for_step_and_all_step_queries(name):
    layer, _, q_size = _layer(name)
    query, memory, mask = _inputs(q_size)
    keys = layer.compute_keys(memory)
    assert keys.shape[:2] == (B, S)
    context, weights = layer.attend(query[:, 0], keys, memory, mask)
    assert tuple(context.shape) == (B, M) and tuple(weights.shape) == (B, S)
    context, weights = layer.attend(query, keys, memory, mask)
    assert tuple(context.shape) == (B, T, M) and tuple(weights.shape) == (B, T, S)
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"


@pytest.mark.parametrize("name", NAMES)
def test_weights_sum_to_one_on_real_positions_and_are_zero_on_padding(name):
    layer, _, q_size = _layer(name)
    query, memory, mask = _inputs(q_size)
    _, weights = layer(query, memory, mask=mask)
    weights = _np(weights)
    np.testing.assert_allclose(weights.sum(-1), np.ones((B, T)), rtol=1e-6)
    assert np.all(weights[np.broadcast_to(~mask[:, None], weights.shape)] == 0.0)
    assert np.all(weights[np.broadcast_to(mask[:, None], weights.shape)] > 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_matches_numpy_with_fixed_weights(name):
    layer, w, q_size = _layer(name)
    query, memory, mask = _inputs(q_size)
    context, weights = layer(query, memory, mask=mask)
    ref_context, ref_weights = _reference(name, w, query, memory, mask)
    np.testing.assert_allclose(_np(weights), ref_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(context), ref_context, rtol=1e-5, atol=1e-5)
    # Without a mask every position is real.
    context, weights = layer(query, memory)
    ref_context, ref_weights = _reference(name, w, query, memory, np.ones((B, S), bool))
    np.testing.assert_allclose(_np(weights), ref_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(context), ref_context, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_fully_padded_memory_row_gives_zeros_and_finite_gradients(name):
    layer, _, q_size = _layer(name)
    query, memory, mask = _inputs(q_size)
    mask[1] = False
    context, weights = layer(query, memory, mask=mask)
    context, weights = _np(context), _np(weights)
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    assert np.all(context[1] == 0.0) and np.all(weights[1] == 0.0)
    np.testing.assert_allclose(weights[0].sum(-1), np.ones(T), rtol=1e-6)

    rng = np.random.default_rng(2)
    c_probe = rng.normal(size=(B, T, M)).astype("float32")
    w_probe = rng.normal(size=(B, T, S)).astype("float32")

    def loss(q, m):
        c, a = layer(q, m, mask=mask)
        return ops.sum(c * c_probe) + ops.sum(a * w_probe)

    g_query, g_memory = gradient(loss, query, memory)
    assert np.all(np.isfinite(g_query)) and np.all(np.isfinite(g_memory))
    # Padded positions (the whole second row) do not influence anything.
    assert np.all(g_query[1] == 0.0)
    assert np.all(g_memory[~mask] == 0.0)
    assert np.any(g_memory[mask] != 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_appending_padded_positions_changes_nothing(name):
    layer, _, q_size = _layer(name)
    query, memory, mask = _inputs(q_size)
    context, weights = layer(query, memory, mask=mask)
    rng = np.random.default_rng(3)
    junk = (100.0 * rng.normal(size=(B, 2, M))).astype("float32")
    longer_memory = np.concatenate([memory, junk], axis=1)
    longer_mask = np.concatenate([mask, np.zeros((B, 2), bool)], axis=1)
    longer_context, longer_weights = layer(query, longer_memory, mask=longer_mask)
    longer_weights = _np(longer_weights)
    np.testing.assert_allclose(_np(longer_context), _np(context), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(longer_weights[..., :S], _np(weights), rtol=1e-6, atol=1e-7)
    assert np.all(longer_weights[..., S:] == 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_all_steps_at_once_equals_stacked_single_steps(name):
    layer, _, q_size = _layer(name)
    query, memory, mask = _inputs(q_size)
    keys = layer.compute_keys(memory)
    context, weights = layer.attend(query, keys, memory, mask)
    steps = [layer.attend(query[:, t], keys, memory, mask) for t in range(T)]
    np.testing.assert_allclose(
        _np(context), np.stack([_np(c) for c, _ in steps], axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        _np(weights), np.stack([_np(a) for _, a in steps], axis=1), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_keeps_class_config_and_outputs(name):
    layer, _, q_size = _layer(name)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    assert restored.built  # serialize() records the build shapes
    restored.set_weights(layer.get_weights())
    query, memory, mask = _inputs(q_size)
    for got, want in zip(restored(query, memory, mask=mask), layer(query, memory, mask=mask)):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)


def test_memory_mask_attached_by_keras_is_used_when_no_mask_is_given():
    ids = np.array([[3, 1, 2, 4], [2, 5, 0, 0]])
    memory = TokenEmbedding(6, M)(ids)
    layer, _, q_size = _layer("dot")
    query = np.random.default_rng(4).normal(size=(B, T, q_size)).astype("float32")
    _, implicit = layer(query, memory)
    _, explicit = layer(query, memory, mask=ids != 0)
    np.testing.assert_array_equal(_np(implicit), _np(explicit))
    assert np.all(_np(implicit)[1, :, 2:] == 0.0)


def test_learned_scale_and_normalized_bahdanau_parameters_are_trainable():
    luong, _, _ = _layer("learned_scale")
    assert {v.path.split("/")[-1] for v in luong.trainable_weights} == {"kernel", "scale"}
    fresh = LuongAttention(learned_scale=True)
    fresh.build((None, 3), (None, None, M))
    assert float(_np(fresh.scale)) == 1.0
    bahdanau = BahdanauAttention(U, normalize=True)
    bahdanau.build((None, 3), (None, None, M))
    names = {v.path.split("/")[-1] for v in bahdanau.trainable_weights}
    assert names == {"query_kernel", "memory_kernel", "v", "g", "bias"}
    np.testing.assert_allclose(float(_np(bahdanau.g)), np.sqrt(1 / U), rtol=1e-6)
    assert len(BahdanauAttention(U).weights) == 0  # nothing before build
    assert all(isinstance(x, BaseAttention) for x in (luong, bahdanau))


def test_symbolic_call_gives_output_shapes():
    query = keras.Input((T, 3))
    memory = keras.Input((None, M))
    context, weights = LuongAttention()(query, memory)
    assert tuple(context.shape) == (None, T, M)
    assert tuple(weights.shape) == (None, T, None)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LuongAttention(score="cosine"), "score='cosine'"),
        (lambda: LuongAttention(units=0), "units=0"),
        (lambda: LuongAttention(learned_scale="yes"), "learned_scale='yes'"),
        (lambda: BahdanauAttention(0), "units=0"),
        (lambda: BahdanauAttention(-3), "units=-3"),
        (lambda: BahdanauAttention(None), "units=None"),
        (lambda: BahdanauAttention(4, normalize=1), "normalize=1"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("score", ["dot", "scaled"])
def test_dot_scores_with_different_sizes_raise_naming_both_sizes(score):
    with pytest.raises(ValueError, match="query size=3, memory size=4"):
        LuongAttention(score=score).build((None, 3), (None, None, 4))
    query, memory, _ = _inputs(3)
    with pytest.raises(ValueError, match="query size=3, memory size=4"):
        LuongAttention(score=score)(query, memory)


def test_luong_units_must_match_the_query_size():
    with pytest.raises(ValueError, match="units=5.*query size=3"):
        LuongAttention(units=5).build((None, 3), (None, None, M))


def test_attend_rejects_bad_query_rank_and_unbuilt_layer():
    layer, _, q_size = _layer("general")
    memory = np.zeros((B, S, M), "float32")
    with pytest.raises(ValueError, match=r"query.shape=\(2, 1, 1, 3\)"):
        layer.attend(np.zeros((B, 1, 1, q_size), "float32"), layer.compute_keys(memory), memory)
    with pytest.raises(ValueError, match="not built"):
        LuongAttention().compute_keys(memory)
