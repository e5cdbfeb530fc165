import importlib

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.layers.rnn import RNNStack
from tests.helpers import BACKEND

# Runs on every backend (a second time on JAX in CI).
pytestmark = pytest.mark.backend_neutral


def _np(x):
    return ops.convert_to_numpy(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_lstm(x, kernel, recurrent, bias):
    """Reference LSTM with Keras' gate order (i, f, c, o)."""
    units = recurrent.shape[0]
    h = np.zeros((x.shape[0], units), "float32")
    c = np.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, 1), h, c


def _numpy_gru(x, kernel, recurrent, bias):
    """Reference GRU with Keras' reset_after=True and gate order (z, r, h)."""
    units = recurrent.shape[0]
    h = np.zeros((x.shape[0], units), "float32")
    outputs = []
    for t in range(x.shape[1]):
        xz = x[:, t] @ kernel + bias[0]
        hz = h @ recurrent + bias[1]
        z = _sigmoid(xz[:, :units] + hz[:, :units])
        r = _sigmoid(xz[:, units:2 * units] + hz[:, units:2 * units])
        hh = np.tanh(xz[:, 2 * units:] + r * hz[:, 2 * units:])
        h = z * h + (1 - z) * hh
        outputs.append(h)
    return np.stack(outputs, 1), h


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_exact_values_with_fixed_weights(cell):
    rng = np.random.default_rng(0)
    stack = RNNStack(3, cell=cell)
    x = rng.normal(size=(2, 4, 2)).astype("float32")
    stack.build(x.shape)
    rnn = stack.rnn_layers[0][0]
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in rnn.get_weights()]
    rnn.set_weights(weights)
    outputs, states = stack(x)
    if cell == "lstm":
        ref_out, ref_h, ref_c = _numpy_lstm(x, *weights)
        ref_states = [ref_h, ref_c]
    else:
        ref_out, ref_h = _numpy_gru(x, *weights)
        ref_states = [ref_h]
    np.testing.assert_allclose(_np(outputs), ref_out, atol=1e-5)
    for got, ref in zip(states[0][0], ref_states):
        np.testing.assert_allclose(_np(got), ref, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, size",
    [
        ({"cell": "lstm"}, 8),
        ({"cell": "gru", "bidirectional": True}, 16),
        ({"cell": "lstm", "bidirectional": True, "merge_mode": "sum"}, 8),
    ],
)
def test_shapes_and_state_structure(kwargs, size):
    stack = RNNStack(8, num_layers=2, **kwargs)
    outputs, states = stack(np.zeros((3, 5, 4), "float32"))
    assert stack.output_size == size
    assert tuple(outputs.shape) == (3, 5, size)
    assert len(states) == 2
    for layer_states in states:
        assert len(layer_states) == stack.num_directions
        for direction in layer_states:
            assert len(direction) == stack.num_states
            assert all(tuple(s.shape) == (3, 8) for s in direction)
    # A model's graph takes the same structure from compute_output_shape, which
    # does not run the loops; unknown sizes stay unknown.
    symbolic = stack(keras.Input((5, 4), batch_size=3))
    assert keras.tree.map_structure(lambda t: tuple(t.shape), symbolic) == \
        keras.tree.map_structure(lambda t: tuple(t.shape), (outputs, states))
    outputs, states = stack(keras.Input((None, 4)))
    assert tuple(outputs.shape) == (None, None, size)
    assert tuple(states[-1][-1][0].shape) == (None, 8)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_changes_neither_outputs_nor_final_states(cell, bidirectional):
    rng = np.random.default_rng(1)
    stack = RNNStack(6, num_layers=2, cell=cell, bidirectional=bidirectional, residual=True)
    lengths = [2, 5, 3]
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    x = np.where(mask[..., None], x, 9.0).astype("float32")  # junk in the padding
    # The stack runs compiled, in models (an eager JAX call compiles every scan anew).
    inputs = keras.Input((None, 4))
    mask_input = keras.Input((None,), dtype="bool")
    masked = keras.Model([inputs, mask_input], stack(inputs, mask=mask_input))
    unmasked = keras.Model(inputs, stack(inputs))
    outputs, states = masked.predict_on_batch([x, mask])
    for b, n in enumerate(lengths):
        alone_out, alone_states = unmasked.predict_on_batch(x[b:b + 1, :n])
        np.testing.assert_allclose(_np(outputs)[b, :n], _np(alone_out)[0], atol=1e-5)
        np.testing.assert_array_equal(_np(outputs)[b, n:], 0.0)
        for layer, alone_layer in zip(states, alone_states):
            for direction, alone_direction in zip(layer, alone_layer):
                for s, alone in zip(direction, alone_direction):
                    np.testing.assert_allclose(_np(s)[b], _np(alone)[0], atol=1e-5)


def test_backward_direction_outputs_are_in_forward_time_order():
    stack = RNNStack(4, bidirectional=True)
    x = np.random.default_rng(2).normal(size=(1, 3, 2)).astype("float32")
    outputs, states = stack(x)
    # The backward direction's final h is its output at the first step.
    np.testing.assert_allclose(_np(outputs)[0, 0, 4:], _np(states[0][1][0])[0], atol=1e-6)
    np.testing.assert_allclose(_np(outputs)[0, -1, :4], _np(states[0][0][0])[0], atol=1e-6)


def test_residual_adds_the_layer_input_where_sizes_match():
    stack = RNNStack(4, num_layers=2, residual=True)
    x = np.random.default_rng(3).normal(size=(2, 3, 3)).astype("float32")
    outputs, _ = stack(x)
    first, *_ = stack.rnn_layers[0][0](x)  # input size 3 != 4: no residual
    second, *_ = stack.rnn_layers[1][0](first)
    np.testing.assert_allclose(_np(outputs), _np(second) + _np(first), atol=1e-6)


def test_initial_state_is_used():
    stack = RNNStack(4, cell="gru")
    x = np.zeros((2, 3, 2), "float32")
    _, zero_states = stack(x)
    h0 = np.ones((2, 4), "float32")
    _, states = stack(x, initial_state=[[[h0]]])
    assert not np.allclose(_np(states[0][0][0]), _np(zero_states[0][0][0]))
    with pytest.raises(ValueError, match="one entry per layer"):
        stack(x, initial_state=[[[h0]], [[h0]]])


def test_dropout_between_layers_only_in_training():
    stack = RNNStack(8, num_layers=2, dropout=0.5)
    x = np.random.default_rng(4).normal(size=(2, 5, 8)).astype("float32")
    eval_a, _ = stack(x, training=False)
    eval_b, _ = stack(x, training=False)
    train, _ = stack(x, training=True)
    np.testing.assert_array_equal(_np(eval_a), _np(eval_b))
    assert not np.allclose(_np(train), _np(eval_a))
    # Stepping through time (decoders with input feeding) drops out the same way.
    states = stack.initial_states(2)
    step_eval, _ = stack.step(x[:, 0], states)
    np.testing.assert_allclose(_np(step_eval), _np(eval_a)[:, 0], atol=1e-5)
    step_train, _ = stack.step(x[:, 0], states, training=True)
    assert not np.allclose(_np(step_train), _np(step_eval))
    one_layer = RNNStack(8, num_layers=1, dropout=0.5)
    one_layer(x)
    np.testing.assert_array_equal(
        _np(one_layer.step(x[:, 0], one_layer.initial_states(2), training=True)[0]),
        _np(one_layer.step(x[:, 0], one_layer.initial_states(2))[0]))


def test_default_configuration_is_cudnn_eligible():
    """The layers the zoo builds by default meet every cuDNN condition."""
    for cell in ("lstm", "gru"):
        stack = RNNStack(8, num_layers=2, cell=cell, bidirectional=True)
        stack.build((None, None, 4))
        for directions in stack.rnn_layers:
            for rnn in directions:
                assert rnn.use_cudnn == "auto"
                assert rnn.cell.activation is keras.activations.tanh
                assert rnn.cell.recurrent_activation is keras.activations.sigmoid
                assert rnn.cell.recurrent_dropout == 0
                assert not rnn.unroll and rnn.cell.use_bias
                if cell == "gru":
                    assert rnn.cell.reset_after
                if BACKEND == "tensorflow":
                    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

                    args = dict(
                        activation=rnn.cell.activation,
                        recurrent_activation=rnn.cell.recurrent_activation,
                        unroll=rnn.unroll,
                        use_bias=rnn.cell.use_bias,
                    )
                    if cell == "gru":
                        assert tf_rnn._do_gru_arguments_support_cudnn(
                            reset_after=rnn.cell.reset_after, **args
                        )
                    else:
                        assert tf_rnn._do_lstm_arguments_support_cudnn(**args)


def test_config_round_trip():
    stack = RNNStack(5, num_layers=3, cell="gru", bidirectional=True, merge_mode="sum",
                     residual=True, dropout=0.1, use_cudnn=False, name="enc")
    restored = keras.layers.deserialize(keras.layers.serialize(stack))
    assert isinstance(restored, RNNStack)
    assert restored.get_config() == stack.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units=0"),
        ({"units": 4, "num_layers": 0}, "num_layers=0"),
        ({"units": 4, "cell": "rnn"}, "cell='rnn'"),
        ({"units": 4, "merge_mode": "mul"}, "merge_mode='mul'"),
        ({"units": 4, "dropout": 1.0}, "dropout=1.0"),
        ({"units": 4, "use_cudnn": "yes"}, "use_cudnn='yes'"),
        ({"units": 4, "loop": "fused"}, "loop='fused'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RNNStack(**kwargs)


def _stack_pair(cell, bidirectional, **kwargs):
    """The same stack twice, same weights: Keras' loop and the projected one."""
    x = np.random.default_rng(3).standard_normal((4, 7, 5)).astype("float32")
    keras_loop = RNNStack(6, num_layers=2, cell=cell, bidirectional=bidirectional,
                          loop="keras", **kwargs)
    projected = RNNStack(6, num_layers=2, cell=cell, bidirectional=bidirectional,
                         loop="projected", **kwargs)
    keras_loop.build(x.shape)
    projected.build(x.shape)
    # Not the initializers' small weights: gates away from 0.5 show a swapped gate.
    weights = [w * 3.0 for w in keras_loop.get_weights()]
    keras_loop.set_weights(weights)
    projected.set_weights(weights)
    return x, keras_loop, projected


MASK = np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4, [1] + [0] * 6], bool)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_projected_loop_equals_the_keras_layers(cell, bidirectional, padded):
    """Outputs, final states and gradients of the projected loop are those of
    Keras' own LSTM/GRU with the same weights, within 1e-5."""
    x, keras_loop, projected = _stack_pair(cell, bidirectional)
    mask = MASK if padded else None
    init = keras_loop.initial_states(4)
    init = [[[s + 0.5 for s in direction] for direction in layer] for layer in init]
    for kwargs in ({}, {"initial_state": init}):
        expected = keras_loop(x, mask=mask, **kwargs)
        got = projected(x, mask=mask, **kwargs)
        for a, b in zip(keras.tree.flatten(expected), keras.tree.flatten(got)):
            np.testing.assert_allclose(_np(b), _np(a), atol=1e-5, rtol=1e-5)
    if padded:
        # Padded steps output zeros, as Keras' layers with zero_output_for_mask.
        assert np.abs(_np(got[0])[3, 1:]).max() == 0.0
    # Gradients of a loss of the outputs against every weight.
    if BACKEND == "tensorflow":
        import tensorflow as tf

        grads = []
        for stack in (keras_loop, projected):
            with tf.GradientTape() as tape:
                out, _ = stack(x, mask=mask)
                loss = tf.reduce_sum(out * out)
            grads.append(tape.gradient(loss, stack.trainable_variables))
        for a, b in zip(*grads):
            np.testing.assert_allclose(_np(b), _np(a), atol=1e-4, rtol=1e-4)


def test_auto_takes_the_projected_loop_where_it_was_measured_faster_and_keeps_the_weights():
    """`loop="auto"` runs the projected loop on TensorFlow without a GPU (where
    the rnn suite measured it faster) for GRU layers and for LSTM layers reading
    more features than their units (above a bidirectional layer), and Keras'
    loop elsewhere; the weights (names, shapes) are the Keras layers' either
    way, so a model saved with one loop loads and computes alike with the other."""
    from seqzoo.layers import rnn as rnn_module

    tensorflow_cpu = BACKEND == "tensorflow" and not rnn_module.accelerator_present()
    for cell in ("gru", "lstm"):
        stack = RNNStack(4, cell=cell, num_layers=2, bidirectional=True)
        stack.build((None, None, 3))
        for i, directions in enumerate(stack.rnn_layers):
            # Layer 0 reads 3 features, layer 1 both directions' 2 x 4.
            for layer in directions:
                expected = tensorflow_cpu and (cell == "gru" or i == 1)
                assert stack._projected(layer) is expected, (cell, i)
        layer = stack.rnn_layers[0][0]
        assert RNNStack(4, loop="projected")._projected(layer)
        assert not RNNStack(4, loop="keras")._projected(layer)
    assert [rnn_module.auto_loop("lstm", width, 4) for width in (3, 4, 5, None)] == (
        ["keras", "keras", "projected", "keras"] if tensorflow_cpu else ["keras"] * 4)
    x, keras_loop, projected = _stack_pair("gru", True)
    # The same variables under the same names below each stack's own name.
    strip = lambda stack: [(w.path.split("/", 1)[1], w.shape) for w in stack.weights]  # noqa: E731
    assert strip(keras_loop) == strip(projected)
    assert len(strip(keras_loop)) == 2 * 2 * 3
    config = dict(keras_loop.get_config())
    # A config written before the option existed loads with the default.
    del config["loop"]
    restored = RNNStack.from_config(config)
    restored.build(x.shape)
    restored.set_weights(keras_loop.get_weights())
    np.testing.assert_allclose(_np(restored(x, mask=MASK)[0]), _np(keras_loop(x, mask=MASK)[0]),
                               atol=1e-5)


def test_unsupported_cells_keep_the_keras_loop():
    from seqzoo.layers import recurrence

    stateful = RNNStack(4, stateful=True)
    stateful.build((2, 3, 3))
    assert not recurrence.supports(stateful.rnn_layers[0][0])
    assert not RNNStack(4, loop="projected")._projected(stateful.rnn_layers[0][0])
    gru = keras.layers.GRU(4, reset_after=False)
    assert not recurrence.supports(gru)
    assert recurrence.supports(keras.layers.GRU(4)) and recurrence.supports(keras.layers.LSTM(4))
