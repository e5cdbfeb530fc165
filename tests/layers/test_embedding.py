import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.layers import TokenEmbedding

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral


def _layer(**kwargs):
    layer = TokenEmbedding(5, 3, **kwargs)
    layer.build((None, None))
    layer.embeddings.assign(np.arange(15, dtype="float32").reshape(5, 3))
    return layer


def test_lookup_returns_rows_of_the_matrix():
    out = ops.convert_to_numpy(_layer()(np.array([[1, 4, 0]])))
    np.testing.assert_array_equal(out[0], [[3, 4, 5], [12, 13, 14], [0, 1, 2]])


def test_mask_is_false_on_padding_only():
    layer = _layer()
    mask = ops.convert_to_numpy(layer.compute_mask(np.array([[3, 2, 0, 0], [1, 0, 0, 0]])))
    np.testing.assert_array_equal(mask, [[True, True, False, False], [True, False, False, False]])
    assert _layer(mask_padding=False).compute_mask(np.array([[1, 0]])) is None


def test_mask_reaches_the_next_layer():
    seen = {}

    class Probe(keras.layers.Layer):
        supports_masking = True

        def call(self, x, mask=None):
            seen["mask"] = mask
            return x

    ids = np.array([[1, 2, 0]])
    Probe()(_layer()(ids))
    np.testing.assert_array_equal(ops.convert_to_numpy(seen["mask"]), [[True, True, False]])


def test_scale_true_multiplies_by_sqrt_dim():
    plain = ops.convert_to_numpy(_layer()(np.array([[2]])))
    scaled = ops.convert_to_numpy(_layer(scale=True)(np.array([[2]])))
    np.testing.assert_allclose(scaled, plain * np.sqrt(3), rtol=1e-6)
    scaled = ops.convert_to_numpy(_layer(scale=0.5)(np.array([[2]])))
    np.testing.assert_allclose(scaled, plain * 0.5)


def test_project_gives_tied_logits():
    layer = _layer()
    hidden = np.array([[[1.0, 0.0, -1.0]]], dtype="float32")
    logits = ops.convert_to_numpy(layer.project(hidden))
    expected = hidden @ np.arange(15, dtype="float32").reshape(5, 3).T
    assert logits.shape == (1, 1, 5)
    np.testing.assert_allclose(logits, expected)
    with pytest.raises(ValueError, match="embedding_dim=3"):
        layer.project(np.zeros((1, 4), dtype="float32"))


def test_config_round_trip_and_serialization():
    layer = TokenEmbedding(7, 4, scale=True, name="emb")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, TokenEmbedding)
    assert restored.get_config() == layer.get_config()


def test_saved_model_with_embedding_loads_with_same_outputs(tmp_path):
    inputs = keras.Input((None,), dtype="int32")
    x = TokenEmbedding(10, 4)(inputs)
    outputs = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, outputs)
    ids = np.array([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(ids)), ops.convert_to_numpy(model(ids)), rtol=1e-6
    )


def test_padding_does_not_change_masked_pooling():
    """Appending padding leaves a mask-aware consumer's output unchanged."""
    layer = TokenEmbedding(10, 4)
    pool = keras.layers.GlobalAveragePooling1D()
    short = np.array([[1, 2, 3]])
    padded = np.array([[1, 2, 3, 0, 0, 0]])
    np.testing.assert_allclose(
        ops.convert_to_numpy(pool(layer(short))),
        ops.convert_to_numpy(pool(layer(padded))),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"vocab_size": 0, "embedding_dim": 3}, "vocab_size=0"),
        ({"vocab_size": 5, "embedding_dim": -1}, "embedding_dim=-1"),
        ({"vocab_size": 5, "embedding_dim": 3, "pad_id": 5}, "pad_id=5"),
        ({"vocab_size": 5, "embedding_dim": 3, "scale": -2}, "scale=-2"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenEmbedding(**kwargs)
