"""Where one training step of the zoo's recurrent stack spends its time, piece by piece.

    python -m benchmarks.rnn_profile [--cell lstm] [--loop projected] [--rounds 7] [--tiny]
                                     [--shape B,T,I,H]

At suite `rnn`'s shapes (batch 64, length 50, input 128, hidden 256, one
unidirectional layer; `--shape` sets others), in interleaved rounds,
milliseconds per call:

- the input projection of every step at once (`[B*T, D] x [D, G]`);
- the recurrent loop alone, forwards, on inputs already projected;
- the same loop with nothing but its recurrent matrix product per step;
- the stack's forward pass (projection and loop);
- a whole training step (`train_on_batch`: forward, backward, SGD update);
- on TensorFlow, for the LSTM: an SGD step through Keras' LSTM layer against
  one through TensorFlow's fused `BlockLSTM` op (one kernel for all steps,
  forwards and backwards), both by a gradient tape on the same weights.

The training step minus the forward pass is the backward pass and the
update. Each piece also gets its arithmetic rate: the multiply-adds of its
matrix products (2 FLOPs each) over its time, against the rate of one large
matrix product of the same total size, which is about what the CPU gives.
"""

import argparse

import keras
import numpy as np
from keras import ops
from keras.src import backend as keras_backend

from benchmarks import common
from benchmarks import rnn as suite
from seqzoo.decoding import CompiledFunction
from seqzoo.layers import recurrence
from seqzoo.layers.rnn import RNNStack


def _gates(cell):
    return 4 if cell == "lstm" else 3


def pieces(s, cell, loop):
    """`({name: fn}, {name: flops})` of the timed pieces."""
    keras.utils.set_random_seed(s["seed"])
    batch, length, width, hidden = s["batch"], s["length"], s["input"], s["hidden"]
    gates = _gates(cell)
    stack = RNNStack(hidden, num_layers=1, cell=cell, bidirectional=False, loop=loop)
    inputs = keras.Input((length, width), batch_size=batch)
    model = keras.Model(inputs, stack(inputs)[0])
    model.compile(optimizer=keras.optimizers.SGD(s["learning_rate"]), loss="mse",
                  jit_compile=suite._jit_compile(s["jit_compile"]))
    rng = np.random.default_rng(s["seed"])
    x = ops.convert_to_tensor(rng.standard_normal((batch, length, width), dtype="float32"))
    y = ops.zeros((batch, length, hidden))
    rnn = stack.rnn_layers[0][0]
    layer_cell = rnn.cell
    step = (recurrence._lstm_step if cell == "lstm" else
            lambda r: recurrence._gru_step(r, layer_cell.bias[1], hidden))(
        layer_cell.recurrent_kernel)
    states = [ops.zeros((batch, hidden))] * (2 if cell == "lstm" else 1)

    def project(x):
        bias = layer_cell.bias if cell == "lstm" else layer_cell.bias[0]
        return ops.matmul(x, layer_cell.kernel) + bias

    def products_only(projected):
        # The loop with nothing but its recurrent product in each step.
        def product(z, states):
            h = ops.matmul(states[0], layer_cell.recurrent_kernel)[:, :hidden]
            return h, [h]

        return keras_backend.rnn(product, projected, [states[0]], input_length=length,
                                 return_all_outputs=True)[1]

    def loop_only(projected):
        return keras_backend.rnn(step, projected, list(states), input_length=length,
                                 return_all_outputs=True)[1]

    variables = lambda: model.variables  # noqa: E731
    projected = ops.convert_to_tensor(
        rng.standard_normal((batch, length, gates * hidden), dtype="float32"))
    project_fn = CompiledFunction(project, variables)
    loop_fn = CompiledFunction(loop_only, variables)
    products_fn = CompiledFunction(products_only, variables)
    forward_fn = CompiledFunction(lambda x: model(x), variables)
    big = ops.convert_to_tensor(rng.standard_normal((batch * length, hidden), dtype="float32"))
    square = ops.convert_to_tensor(rng.standard_normal((hidden, gates * hidden), dtype="float32"))
    matmul_fn = CompiledFunction(lambda a, b: ops.matmul(a, b), lambda: [])
    projection = 2 * batch * length * width * gates * hidden
    recurrent = 2 * batch * length * hidden * gates * hidden
    fns = {
        "input projection, all steps at once": lambda: project_fn(x),
        "recurrent loop alone, forward": lambda: loop_fn(projected),
        "the loop's recurrent products alone": lambda: products_fn(projected),
        "forward pass (projection + loop)": lambda: forward_fn(x),
        "training step (forward, backward, SGD)": lambda: model.train_on_batch(x, y),
        "reference, one [B*T, H] x [H, G] product": lambda: matmul_fn(big, square),
    }
    # The backward pass does about twice the forward's products (for the
    # inputs' and the weights' gradients).
    flops = {
        "input projection, all steps at once": projection,
        "recurrent loop alone, forward": recurrent,
        "the loop's recurrent products alone": recurrent,
        "forward pass (projection + loop)": projection + recurrent,
        "training step (forward, backward, SGD)": 3 * (projection + recurrent),
        "reference, one [B*T, H] x [H, G] product": recurrent,
    }
    if cell == "lstm" and keras.backend.backend() == "tensorflow":
        for name, fn in _fused_lstm_pieces(rnn, x).items():
            fns[name], flops[name] = fn, 3 * (projection + recurrent)
    return fns, flops


def _fused_lstm_pieces(rnn, x):
    """TensorFlow only: one SGD step (gradients of `mean(h^2)` by a tape, in a
    `tf.function`) through the Keras LSTM layer `rnn` and through TensorFlow's
    fused `BlockLSTM` op, one kernel over all steps forwards and one backwards,
    on the same weights. Checks first that both give the same loss and gradients."""
    import tensorflow as tf

    kernel, recurrent_kernel, bias = rnn.cell.kernel, rnn.cell.recurrent_kernel, rnn.cell.bias
    weights = [kernel, recurrent_kernel, bias]

    def icfo(w):
        # BlockLSTM's gates are (i, c, f, o); Keras' (i, f, c, o). (BlockLSTMV2 takes
        # Keras' order, but TensorFlow registers BlockLSTM's gradient for it, which
        # reads the gates in BlockLSTM's order: its gradients are wrong.)
        i, f, c, o = tf.split(w, 4, axis=-1)
        return tf.concat([i, c, f, o], axis=-1)

    def block_lstm(x):
        batch, units = tf.shape(x)[0], recurrent_kernel.shape[0]
        zeros, peephole = tf.zeros([batch, units]), tf.zeros([units])
        h = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(tf.shape(x)[1], tf.int64), x=tf.transpose(x, [1, 0, 2]),
            cs_prev=zeros, h_prev=zeros,
            w=icfo(tf.concat([kernel.value, recurrent_kernel.value], 0)),
            wci=peephole, wcf=peephole, wco=peephole, b=icfo(bias.value),
            forget_bias=0.0, cell_clip=-1.0, use_peephole=False)[6]
        return tf.transpose(h, [1, 0, 2])

    def gradients(forward):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(forward(x)))
        return loss, tape.gradient(loss, [w.value for w in weights])

    def sgd_step(forward):
        @tf.function
        def step():
            loss, grads = gradients(forward)
            for w, g in zip(weights, grads):
                w.assign_sub(0.01 * g)
            return loss
        return step

    keras_forward = lambda x: rnn(x)[0]  # noqa: E731
    (loss_a, grads_a), (loss_b, grads_b) = gradients(keras_forward), gradients(block_lstm)
    np.testing.assert_allclose(loss_b.numpy(), loss_a.numpy(), rtol=1e-5)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-7)
    return {"SGD step by a tape, Keras' LSTM layer": sgd_step(keras_forward),
            "SGD step by a tape, TensorFlow's fused BlockLSTM op": sgd_step(block_lstm)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--loop", choices=("projected", "keras"), default="projected")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tiny", action="store_true",
                        help="suite rnn's tiny shapes, one call per piece: tests the script")
    parser.add_argument("--shape", metavar="B,T,I,H",
                        help="batch, length, input and hidden size instead of the suite's")
    args = parser.parse_args(argv)
    s = dict(suite.SETTINGS["tiny" if args.tiny else "full"])
    if args.shape:
        try:
            sizes = [int(v) for v in args.shape.split(",")]
        except ValueError:
            sizes = []
        if len(sizes) != 4 or min(sizes) < 1:
            parser.error(f"--shape {args.shape}: expected four positive integers B,T,I,H")
        s.update(zip(("batch", "length", "input", "hidden"), sizes))
    run_s = 0.0 if args.tiny else 0.3
    fns, flops = pieces(s, args.cell, args.loop)
    times = common.milliseconds_per_call(fns, args.rounds, run_s)
    print(f"backend {keras.backend.backend()}, {args.cell}, loop {args.loop}, batch "
          f"{s['batch']}, length {s['length']}, input {s['input']}, hidden {s['hidden']}, "
          f"{args.rounds} rounds; ms per call: median (min-max), GFLOP/s at the median")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name}: {median:.2f} ({min(values):.2f}-{max(values):.2f}), "
              f"{flops[name] / median / 1e6:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
