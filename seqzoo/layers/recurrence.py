"""The recurrent loop of `RNNStack` off the GPU: LSTM/GRU with the input
projection of every step done before the loop.

Keras' generic loop multiplies each step's input by the input kernel inside
the loop: `T` small matrix products forwards and `T` more for the kernel's
gradient. Here the whole sequence is projected at once (one `[B*T, D] x [D,
G]` product, and one for its gradient), so the loop only does the recurrent
product and the gate arithmetic. The loop itself is the backend's (a
`while_loop` on TensorFlow, `lax.scan` on JAX), with Keras' masking: padded
steps output zeros and carry the states unchanged, and `go_backwards` reads
the sequence from its end and emits outputs in reversed order, as the Keras
layers do.

The functions read the weights of a built `keras.layers.LSTM`/`GRU` (default
activations, biases, `reset_after=True` for GRU, no dropout in the cell), so
a stack computes the same function with the same variables either way.
"""

import keras
from keras import ops
from keras.src import backend as keras_backend


def supports(rnn):
    """Whether `rnn` (a Keras LSTM/GRU layer) is one these loops compute."""
    cell = rnn.cell
    if getattr(rnn, "stateful", False) or cell.dropout or cell.recurrent_dropout:
        return False
    if not cell.use_bias:
        return False
    if getattr(cell.activation, "__name__", "") != "tanh":
        return False
    if getattr(cell.recurrent_activation, "__name__", "") != "sigmoid":
        return False
    if isinstance(rnn, keras.layers.GRU) and not cell.reset_after:
        return False
    return isinstance(rnn, (keras.layers.LSTM, keras.layers.GRU))


def run(rnn, inputs, mask=None, initial_state=None):
    """Runs `rnn` over `inputs [B, T, D]` as `rnn(inputs, mask, initial_state)` would.

    Returns `[outputs, *final_states]`, as the Keras layer with
    `return_sequences=True, return_state=True, zero_output_for_mask=True`.
    """
    cell = rnn.cell
    dtype = inputs.dtype
    kernel = ops.cast(cell.kernel, dtype)
    recurrent = ops.cast(cell.recurrent_kernel, dtype)
    bias = ops.cast(cell.bias, dtype)
    batch = ops.shape(inputs)[0]
    if initial_state is None:
        zeros = ops.zeros((batch, cell.units), dtype)
        initial_state = [zeros] * (2 if isinstance(rnn, keras.layers.LSTM) else 1)
    if isinstance(rnn, keras.layers.LSTM):
        projected = ops.matmul(inputs, kernel) + bias
        step = _lstm_step(recurrent)
    else:
        input_bias, recurrent_bias = bias[0], bias[1]
        projected = ops.matmul(inputs, kernel) + input_bias
        step = _gru_step(recurrent, recurrent_bias, cell.units)
    if mask is not None:
        mask = ops.cast(mask, "bool")
    _, outputs, states = keras_backend.rnn(
        step,
        projected,
        list(initial_state),
        go_backwards=rnn.go_backwards,
        mask=mask,
        unroll=rnn.unroll,
        input_length=inputs.shape[1],
        zero_output_for_mask=True,
        return_all_outputs=True,
    )
    return [outputs, *states]


def _lstm_step(recurrent):
    def step(z, states):
        h, c = states
        z = z + ops.matmul(h, recurrent)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    return step


def _gru_step(recurrent, recurrent_bias, units):
    def step(x, states):
        (h,) = states
        inner = ops.matmul(h, recurrent) + recurrent_bias
        xz, xr, xh = ops.split(x, 3, axis=-1)
        rz, rr, rh = ops.split(inner, 3, axis=-1)
        z = ops.sigmoid(xz + rz)
        r = ops.sigmoid(xr + rr)
        candidate = ops.tanh(xh + r * rh)
        h = z * h + (1.0 - z) * candidate
        return h, [h]

    return step
