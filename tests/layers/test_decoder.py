"""`RNNDecoder`'s symbolic outputs (what a model's graph is built from) match its call."""

import keras
import numpy as np
import pytest

from seqzoo.layers.decoder import RNNDecoder

pytestmark = pytest.mark.backend_neutral


def _shapes(outputs):
    return keras.tree.map_structure(
        lambda t: (tuple(t.shape), keras.backend.standardize_dtype(t.dtype)), outputs)


def test_symbolic_outputs_match_the_call_without_attention():
    decoder = RNNDecoder(8, num_layers=2)
    real = decoder(np.ones((2, 3, 4), "float32"))
    assert _shapes(decoder(keras.Input((3, 4), batch_size=2))) == _shapes(real) == \
        ((2, 3, 8), "float32")


@pytest.mark.parametrize("options", [
    {"attention": "luong"},
    {"attention": "bahdanau", "attention_size": 6},
    {"attention": "luong", "input_feeding": True, "num_layers": 2},
])
@pytest.mark.parametrize("return_alignments", [False, True])
def test_symbolic_outputs_match_the_call_with_attention(options, return_alignments):
    decoder = RNNDecoder(8, **options)
    # The states a bridge gives (the stepwise decoder needs them).
    states = lambda make: [[[make() for _ in range(2)]] for _ in range(decoder.num_layers)]  # noqa: E731
    real = decoder(np.ones((2, 3, 4), "float32"), memory=np.ones((2, 5, 7), "float32"),
                   memory_mask=np.ones((2, 5), bool),
                   initial_state=states(lambda: np.zeros((2, 8), "float32")),
                   return_alignments=return_alignments)
    symbolic = decoder(keras.Input((3, 4), batch_size=2), memory=keras.Input((5, 7), batch_size=2),
                       memory_mask=keras.Input((5,), batch_size=2, dtype="bool"),
                       initial_state=states(lambda: keras.Input((8,), batch_size=2)),
                       return_alignments=return_alignments)
    assert _shapes(symbolic) == _shapes(real)
    # Unknown sizes stay unknown.
    symbolic = decoder(keras.Input((None, 4)), memory=keras.Input((None, 7)),
                       memory_mask=keras.Input((None,), dtype="bool"),
                       initial_state=states(lambda: keras.Input((8,))),
                       return_alignments=return_alignments)
    expected = ((None, None, decoder.output_size), "float32")
    assert _shapes(symbolic) == (
        (expected, ((None, None, None), "float32")) if return_alignments else expected)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_symbolic_dtypes_match_the_call_in_mixed_precision(input_feeding):
    # bfloat16 outputs, float32 alignments (`attend` computes in float32).
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        decoder = RNNDecoder(8, attention="luong", input_feeding=input_feeding)
        states = lambda make: [[[make(), make()]]]  # noqa: E731
        real = decoder(np.ones((2, 3, 4), "float32"), memory=np.ones((2, 5, 7), "float32"),
                       memory_mask=np.ones((2, 5), bool),
                       initial_state=states(lambda: np.zeros((2, 8), "float32")),
                       return_alignments=True)
        symbolic = decoder(keras.Input((3, 4), batch_size=2),
                           memory=keras.Input((5, 7), batch_size=2),
                           memory_mask=keras.Input((5,), batch_size=2, dtype="bool"),
                           initial_state=states(lambda: keras.Input((8,), batch_size=2)),
                           return_alignments=True)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert _shapes(symbolic) == _shapes(real) == (((2, 3, 8), "bfloat16"), ((2, 3, 5), "float32"))
