"""The RNN decoder of the seq2seq models: plain, attention, attention with input feeding."""

import keras
import numpy as np
from keras import ops

from seqzoo.errors import ArgumentError
from seqzoo.layers.rnn import RNNStack, step_dropout_masks

ATTENTIONS = (None, "luong", "bahdanau")


def make_attention(kind, score="general", units=None, normalize=False, coverage=False,
                   name="attention"):
    """Builds the attention mechanism layer named by `kind`."""
    from seqzoo.layers.attention import BahdanauAttention, LuongAttention

    if kind == "luong":
        # Luong scores with the query as it is: no size of its own.
        return LuongAttention(score=score, coverage=coverage, name=name)
    if kind == "bahdanau":
        return BahdanauAttention(units, normalize=normalize, coverage=coverage, name=name)
    raise ArgumentError(f"Expected attention in {list(ATTENTIONS)}. Received: attention={kind!r}")


@keras.saving.register_keras_serializable(package="seqzoo")
class RNNDecoder(keras.layers.Layer):
    """A unidirectional RNN stack that reads target embeddings, with optional attention.

    Three shapes of decoder, sharing one step function for inference:

    - no attention: the classic fixed-vector decoder; the whole target runs
      through the fused RNN layers at once.
    - attention without input feeding (Luong et al. 2015 without eq. 5's
      feeding): the RNN runs fused over all steps, then every step attends
      to the memory at once; output `tanh(W_c [h_t; c_t])`.
    - attention with input feeding: the previous step's attentional output
      is concatenated to the next input, so training steps through time
      (`keras.ops.scan` over the same step function used at inference).

    The attention mechanism scores with the decoder output `h_t` (as in
    `tfa.seq2seq.AttentionWrapper`); Luong and Bahdanau differ in the score.

    Args:
        units: RNN size.
        num_layers, cell, residual, dropout, use_cudnn: the `RNNStack`.
        attention: `None`, `"luong"` or `"bahdanau"`.
        attention_score: Luong score: `"dot"`, `"general"` or `"scaled"`.
        attention_units: Bahdanau hidden size (default `units`); Luong
            attention has none.
        attention_normalize: Bahdanau's normalized form.
        attention_size: size of the attentional output (default `units`).
        input_feeding: feed the attentional output to the next step.
        coverage: give the attention the sum of its previous weights
            (Tu et al., 2016); needs `input_feeding` (the stepwise decoder).

    Call arguments:
        inputs: target embeddings `[B, T, E]` (their Keras mask is used).
        memory: encoder outputs `[B, S, M]`.
        memory_mask: `[B, S]` bool, True on real source positions.
        initial_state: decoder RNN states as a `Bridge` returns them.
        training: dropout switch.
        return_alignments: also return the attention weights.

    Returns:
        Outputs `[B, T, output_size]`; with `return_alignments=True` the
        tuple `(outputs, alignments)` with `[B, T, S]` attention weights
        (`None` without attention).
    """

    def __init__(self, units, num_layers=1, cell="lstm", residual=False, dropout=0.0,
                 use_cudnn="auto", attention=None, attention_score="general",
                 attention_units=None, attention_normalize=False, attention_size=None,
                 input_feeding=False, coverage=False, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ArgumentError(f"Expected attention in {list(ATTENTIONS)}. "
                                f"Received: attention={attention!r}")
        if input_feeding and attention is None:
            raise ArgumentError("input_feeding=True needs an attention mechanism. "
                                "Received: attention=None")
        if coverage and not input_feeding:
            raise ArgumentError(
                "coverage=True needs the stepwise decoder. Received: coverage=True, "
                "input_feeding=False")
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.residual = residual
        self.dropout = dropout
        self.use_cudnn = use_cudnn
        self.attention = attention
        self.attention_score = attention_score
        self.attention_units = attention_units
        self.attention_normalize = attention_normalize
        self.attention_size = attention_size or units
        self.input_feeding = input_feeding
        # The stepwise (input-feeding) training loop does not compile with XLA on
        # TensorFlow (its scan's gradient keeps lists of unknown length): Keras'
        # jit_compile="auto", which takes XLA where there is a GPU, leaves it off
        # there. JAX compiles it (and without XLA would run eagerly).
        if input_feeding and keras.backend.backend() == "tensorflow":
            self.supports_jit = False
        self.coverage = coverage
        self.stack = RNNStack(units, num_layers=num_layers, cell=cell, residual=residual,
                              dropout=dropout, use_cudnn=use_cudnn, name="rnn")
        self.attention_layer = None
        self.combine = None
        if attention is not None:
            self.attention_layer = make_attention(
                attention, attention_score, attention_units or units, attention_normalize,
                coverage)
            self.combine = keras.layers.Dense(
                self.attention_size, activation="tanh", use_bias=False, name="combine")
        self.output_dropout = keras.layers.Dropout(dropout) if dropout else None

    @property
    def output_size(self):
        return self.units if self.attention is None else self.attention_size

    def build(self, inputs_shape, memory_shape=None, *args):
        embed = inputs_shape[-1]
        feed = self.attention_size if self.input_feeding else 0
        self.stack.build((None, None, embed + feed))
        if self.attention is not None:
            self.attention_layer.build((None, self.units), memory_shape)
            self.combine.build((None, self.units + memory_shape[-1]))
        self.built = True

    # -- inference -----------------------------------------------------------

    def initial_step_state(self, initial_state, memory=None, memory_mask=None):
        """The state of `step`, from the RNN's initial states and the memory."""
        state = {"rnn": initial_state}
        if self.attention is not None:
            batch = ops.shape(memory)[0]
            state.update(
                memory=memory,
                keys=self.attention_layer.compute_keys(memory),
                mask=memory_mask,
                alignment=ops.zeros((batch, ops.shape(memory)[1]), "float32"),
            )
            if self.input_feeding:
                state["feed"] = ops.zeros((batch, self.attention_size), memory.dtype)
            if self.coverage:
                state["coverage"] = ops.zeros((batch, ops.shape(memory)[1]), "float32")
        return state

    @property
    def beam_shared(self):
        """The step-state entries `step` accepts with one row per batch item while the
        input has `K` rows per item (the beams of a beam search): the encoder memory,
        its keys and mask. Empty with coverage, whose attention is per row."""
        return () if self.attention is None or self.coverage else ("memory", "keys", "mask")

    def _attend_rows(self, h, state):
        """Attention of `[N, Q]` queries, `N` a multiple `K * B` of the memory's `B` rows:
        item `b`'s rows `b * K .. b * K + K - 1` attend to its memory as one `[B, K, Q]`
        query, with no copy of the memory per row (`K = 1`: the usual step)."""
        keys = state["keys"]
        query = ops.reshape(h, (ops.shape(keys)[0], -1, ops.shape(h)[-1]))
        context, weights = self.attention_layer.attend(query, keys, state["memory"],
                                                       state["mask"])
        return (ops.reshape(context, (-1, ops.shape(context)[-1])),
                ops.reshape(weights, (-1, ops.shape(weights)[-1])))

    def step_noise(self, batch, steps, training):
        """The dropout masks of `steps` training steps, drawn before a loop over time
        (`RNNStack.step_noise`): `{"layers": [T, B, (L - 1) * units], "output": [T, B,
        output_size]}`, the keys of the dropouts there are; `{}` when not training."""
        if not training or not self.dropout:
            return {}
        noise = {}
        layers = self.stack.step_noise(batch, steps)
        if layers is not None:
            noise["layers"] = layers
        if self.output_dropout is not None:
            noise["output"] = step_dropout_masks(self.output_dropout, steps, batch,
                                                 self.output_size)
        return noise

    def step(self, inputs, state, training=False, noise=None):
        """One decoder step: `([B, E] input, state) -> ([B, output_size], state)`.

        The memory entries (`beam_shared`) may have `B / K` rows, one per item
        of `K` consecutive input rows. `noise`: this step's slice of
        `step_noise`, the dropout masks to apply instead of drawing them."""
        noise = noise or {}
        x = inputs
        if self.input_feeding:
            x = ops.concatenate([x, ops.cast(state["feed"], x.dtype)], axis=-1)
        h, rnn_states = self.stack.step(x, state["rnn"], training=training,
                                        noise=noise.get("layers"))
        new_state = dict(state, rnn=rnn_states)
        if self.attention is None:
            return h, new_state
        if self.coverage:
            context, weights = self.attention_layer.attend(
                h, state["keys"], state["memory"], state["mask"], coverage=state["coverage"])
        else:
            context, weights = self._attend_rows(h, state)
        output = self.combine(ops.concatenate([h, ops.cast(context, h.dtype)], axis=-1))
        if "output" in noise:
            output = output * ops.cast(noise["output"], output.dtype)
        elif self.output_dropout is not None:
            output = self.output_dropout(output, training=training)
        new_state["alignment"] = ops.cast(weights, "float32")
        if self.input_feeding:
            new_state["feed"] = output
        if self.coverage:
            new_state["coverage"] = state["coverage"] + new_state["alignment"]
        return output, new_state

    # -- training ------------------------------------------------------------

    def call(self, inputs, memory=None, memory_mask=None, initial_state=None, training=False,
             mask=None, return_alignments=False):
        outputs, alignments = self._decode(inputs, memory, memory_mask, initial_state, training,
                                           mask)
        return (outputs, alignments) if return_alignments else outputs

    def _decode(self, inputs, memory, memory_mask, initial_state, training, mask):
        if self.input_feeding:
            return self._call_stepwise(inputs, memory, memory_mask, initial_state, training)
        sequence, _ = self.stack(inputs, mask=mask, initial_state=initial_state,
                                 training=training)
        if self.attention is None:
            return sequence, None
        keys = self.attention_layer.compute_keys(memory)
        context, weights = self.attention_layer.attend(sequence, keys, memory, memory_mask)
        output = self.combine(ops.concatenate([sequence, ops.cast(context, sequence.dtype)], -1))
        if self.output_dropout is not None:
            output = self.output_dropout(output, training=training)
        return output, weights

    def _call_stepwise(self, inputs, memory, memory_mask, initial_state, training):
        state = self.initial_step_state(initial_state, memory, memory_mask)
        constants = {k: state.pop(k) for k in ("memory", "keys", "mask")}

        def scan_step(carry, xs):
            x, noise = unpack_steps(xs, parts)
            _, new = self.step(ops.cast(x, inputs.dtype), {**carry, **constants},
                               training=training, noise=noise)
            carry = {k: v for k, v in new.items() if k not in constants}
            # Keras' TensorFlow scan wants outputs shaped like the carry; the
            # step's output is the carry's "feed".
            return carry, carry

        time_major = ops.transpose(inputs, (1, 0, 2))
        shape = ops.shape(inputs)
        noise = self.step_noise(shape[0], shape[1], training)
        xs, parts = pack_steps(time_major, noise)
        _, history = ops.scan(scan_step, state, xs)
        return (ops.transpose(history["feed"], (1, 0, 2)),
                ops.transpose(history["alignment"], (1, 0, 2)))

    def compute_mask(self, inputs, mask=None, *args, **kwargs):
        return mask

    def compute_output_spec(self, inputs, memory=None, *args, return_alignments=False,
                            **kwargs):
        """What `call` returns, as `KerasTensor`s, without running its loops (see
        `RNNStack.compute_output_shape`); alignments are float32, as `attend` gives."""
        outputs = keras.KerasTensor((*inputs.shape[:-1], self.output_size),
                                    dtype=self.compute_dtype)
        if not return_alignments:
            return outputs
        if self.attention is None:
            return outputs, None
        return outputs, keras.KerasTensor((*inputs.shape[:-1], memory.shape[1]),
                                          dtype="float32")

    def get_config(self):
        return {
            **super().get_config(), "units": self.units, "num_layers": self.num_layers,
            "cell": self.cell, "residual": self.residual, "dropout": self.dropout,
            "use_cudnn": self.use_cudnn, "attention": self.attention,
            "attention_score": self.attention_score, "attention_units": self.attention_units,
            "attention_normalize": self.attention_normalize,
            "attention_size": self.attention_size, "input_feeding": self.input_feeding,
            "coverage": self.coverage,
        }


def pack_steps(first, named):
    """One `[T, B, W]` float32 tensor of `first` (`[T, B, w]`) and the `[T, B, w_k]`
    tensors of `named` side by side, for `ops.scan`: Keras' TensorFlow scan cannot
    take several sequences whose length is unknown when traced (batches of varying
    lengths). Returns `(packed, parts)`; `unpack_steps(step, parts)` undoes it for
    one step's `[B, W]` slice."""
    keys = sorted(named)
    widths = [int(first.shape[-1])] + [int(named[k].shape[-1]) for k in keys]
    if not keys:
        return first, (keys, widths)
    packed = ops.concatenate([ops.cast(first, "float32")]
                             + [ops.cast(named[k], "float32") for k in keys], axis=-1)
    return packed, (keys, widths)


def unpack_steps(step, parts):
    """`(first [B, w], {key: [B, w_k]})` of one step of `pack_steps`' tensor."""
    keys, widths = parts
    if not keys:
        return step, {}
    edges = np.cumsum(widths)[:-1].tolist()
    pieces = ops.split(step, edges, axis=-1)
    return pieces[0], dict(zip(keys, pieces[1:]))
