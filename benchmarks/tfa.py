"""Suite `tfa`: the `seqzoo.tfa` compatibility layer against the zoo-native `Seq2Seq`.

Two models of the same sizes and parameter count, timed in interleaved
rounds in one process:

- compat: TensorFlow Addons' NMT tutorial written on `seqzoo.tfa`:
  Embedding + LSTM encoder; the decoder an `AttentionWrapper(LSTMCell,
  LuongAttention(units), attention_layer_size=units)` in a `BasicDecoder`
  with a `TrainingSampler` and a `Dense(vocab)` output layer, started from
  `get_initial_state(...).clone(cell_state=encoder_state)`; beam search with
  `BeamSearchDecoder` on `tile_batch`'ed memory and state.
- native: preset `seq2seq_luong_feed` (Luong "general" attention with input
  feeding: the same computation and weights, but for a tanh on the attention
  layer, which TFA's lacks) with a unidirectional one-layer encoder and
  `bridge="copy"` (the decoder starts from the encoder's final state).

Training (kind "train"): target tokens per second of one teacher-forced
step (forward, backward, Adam). Compat: on TensorFlow the tutorial's
`tf.function` step with a `tf.GradientTape`; on other backends
`train_on_batch` of the same model compiled with the tutorial's loss.
Native: `train_on_batch` (Adam, the model's `SequenceLoss`, no metrics).

Beam search (kind "decode", per batch size): sequences per second of a
beam search of `beam_width` over exactly `target_length` steps (both
models' end-token logit is pushed to -1e9, so no hypothesis stops early).
`compat`: encoder, `tile_batch`, `setup_memory` and `BeamSearchDecoder` in
one compiled function (`tf.function` on TensorFlow, `predict_on_batch`
elsewhere); `compat_eager` (TensorFlow only): the tutorial's eager
`beam_evaluate_sentence`, whose `dynamic_decode` traces a new `tf.function`
every call; `native`: `Seq2Seq.search(method="beam")`.

Ratios are compat / native throughput, paired per round: 1.0 means the
compatibility layer costs nothing over the native model. A compat step or
search that the backend cannot run is recorded as not supported, with its
error, and the rest is timed.

Longer than 400 lines: the tutorial's model written out (training step and
beam search as its users write them), the native side, and two kinds of
records with their report.
"""

import numpy as np

from benchmarks import common
from benchmarks import seq2seq as shared

TITLE = "seqzoo.tfa (TFA's seq2seq API) against the native Seq2Seq: training and beam search"

TRAIN = ["compat", "native"]
DECODERS = ["compat", "compat_eager", "native"]
# The compat model's start and end tokens (the native model's are its own).
START_ID, END_ID = 1, 2

_FULL = {
    # Named apart from suites seq2seq's `train` and decode's `decoders`: a bare
    # `--set KEY=VALUE` applies to every suite that has KEY.
    "train_models": TRAIN,
    "decode_models": DECODERS,
    "decode_batches": [1, 64],
    "batch": 64,
    "source_length": 20,
    "target_length": 20,
    "vocab": 1000,
    "embedding_dim": 64,
    "units": 128,
    "beam_width": 4,
    "warmup": 2,
    "repeats": 7,
    "min_run_s": 0.05,
    "max_others": 0.5,
    # Per kind and batch size; see common.interleaved.
    "max_seconds": 120.0,
    "seed": 1234,
}
SETTINGS = {
    "full": _FULL,
    "quick": dict(_FULL, decode_batches=[1, 16], batch=32, source_length=10, target_length=10,
                  units=64, embedding_dim=32, repeats=3, max_seconds=8.0),
    "tiny": dict(_FULL, decode_batches=[2], batch=4, source_length=4, target_length=4,
                 vocab=20, units=8, embedding_dim=8, beam_width=2, warmup=0, repeats=1,
                 min_run_s=0.0, max_others=1000.0),
}


def _positive(s, key):
    try:
        value = int(s[key])
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise ValueError(f"tfa: {key} must be a positive int. Received: {key}={s[key]!r}")
    return value


def _batches(s):
    try:
        batches = [int(b) for b in s["decode_batches"]]
    except (TypeError, ValueError):
        batches = None
    if batches is None or any(b < 1 for b in batches):
        raise ValueError("tfa: expected positive batch sizes. "
                         f"Received: decode_batches={s['decode_batches']!r}")
    return batches


def check_settings(s):
    """Raises `ValueError` naming the first bad setting."""
    for key, known in (("train_models", TRAIN), ("decode_models", DECODERS)):
        for name in s[key]:
            if name not in known:
                raise ValueError(f"tfa: unknown entry {name!r} in {key}; expected some of {known}")
    if not s["train_models"] and not (s["decode_models"] and _batches(s)):
        raise ValueError("tfa: nothing to run (train_models and decode_models are both empty)")
    _batches(s)
    for key in ("batch", "source_length", "target_length", "vocab", "embedding_dim", "units",
                "beam_width"):
        _positive(s, key)
    if int(s["vocab"]) < 5:  # the data's ids are 4 and up, below them the special tokens
        raise ValueError(f"tfa: vocab must be at least 5. Received: vocab={s['vocab']!r}")


# --- the compat model: TFA's NMT tutorial on seqzoo.tfa ---------------------------------


def _compat_classes():
    """The tutorial's model as one `keras.Model`, made when Keras' backend is chosen."""
    import keras
    from keras import ops

    from seqzoo import tfa

    class CompatNMT(keras.Model):
        """Encoder (Embedding + LSTM) and attention decoder of TFA's NMT tutorial.

        Call: `(source_ids [B, S], decoder_input_ids [B, T])` -> logits `[B, T, V]`.
        """

        def __init__(self, vocab, embedding_dim, units, max_target_steps, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.encoder_embedding = keras.layers.Embedding(vocab, embedding_dim)
            self.encoder_lstm = keras.layers.LSTM(units, return_sequences=True,
                                                  return_state=True,
                                                  recurrent_initializer="glorot_uniform")
            self.decoder_embedding = keras.layers.Embedding(vocab, embedding_dim)
            self.fc = keras.layers.Dense(vocab)
            self.attention_mechanism = tfa.seq2seq.LuongAttention(units, memory=None)
            self.rnn_cell = tfa.seq2seq.AttentionWrapper(
                keras.layers.LSTMCell(units), self.attention_mechanism,
                attention_layer_size=units)
            # TensorFlow decodes with TensorArrays; other backends need a bound.
            bound = ({} if keras.backend.backend() == "tensorflow"
                     else {"maximum_iterations": max_target_steps})
            self.decoder = tfa.seq2seq.BasicDecoder(
                self.rnn_cell, sampler=tfa.seq2seq.sampler.TrainingSampler(),
                output_layer=self.fc, **bound)

        def encode(self, source_ids):
            output, h, c = self.encoder_lstm(self.encoder_embedding(source_ids))
            return output, [h, c]

        def call(self, inputs):
            source_ids, decoder_inputs = inputs
            memory, encoder_state = self.encode(source_ids)
            self.attention_mechanism.setup_memory(memory)
            batch, steps = source_ids.shape[0], decoder_inputs.shape[1]
            initial = self.rnn_cell.get_initial_state(batch_size=batch, dtype="float32")
            initial = initial.clone(cell_state=encoder_state)
            outputs, _, _ = self.decoder(self.decoder_embedding(decoder_inputs),
                                         initial_state=initial,
                                         sequence_length=batch * [steps])
            return outputs.rnn_output

        def beam_decoder(self, beam_width, steps):
            return tfa.seq2seq.BeamSearchDecoder(self.rnn_cell, beam_width=beam_width,
                                                 output_layer=self.fc, maximum_iterations=steps)

        def beam_search(self, source_ids, beam_width, steps, decoder=None):
            """The tutorial's `beam_evaluate_sentence`: `[B, steps, beam]` predicted ids.

            Without `decoder` a new `BeamSearchDecoder` is made, as the tutorial does.
            """
            batch = source_ids.shape[0]
            memory, (h, c) = self.encode(source_ids)
            memory = tfa.seq2seq.tile_batch(memory, multiplier=beam_width)
            self.attention_mechanism.setup_memory(memory)
            hidden = tfa.seq2seq.tile_batch([h, c], multiplier=beam_width)
            initial = self.rnn_cell.get_initial_state(batch_size=batch * beam_width,
                                                      dtype="float32")
            initial = initial.clone(cell_state=hidden)
            decoder = decoder or self.beam_decoder(beam_width, steps)
            outputs, _, _ = decoder(self.decoder_embedding.embeddings,
                                    start_tokens=ops.full((batch,), START_ID, "int32"),
                                    end_token=END_ID, initial_state=initial)
            return outputs.predicted_ids

    class BeamModel(keras.Model):
        """`CompatNMT.beam_search` as a model's call, for `predict_on_batch` (compiled)."""

        def __init__(self, nmt, beam_width, steps, **kwargs):
            super().__init__(**kwargs)
            self.nmt = nmt
            self.beam_width = beam_width
            self.steps = steps
            self.search = nmt.beam_decoder(beam_width, steps)

        def call(self, source_ids):
            return self.nmt.beam_search(source_ids, self.beam_width, self.steps, self.search)

    return CompatNMT, BeamModel


def loss_function(real, pred):
    """The tutorial's loss: cross-entropy of the logits, 0 on padding, mean over all positions."""
    import keras
    from keras import ops

    loss = keras.losses.sparse_categorical_crossentropy(real, pred, from_logits=True)
    mask = ops.cast(ops.not_equal(real, 0), loss.dtype)
    return ops.mean(mask * loss)


def compat_model(s, batch):
    """The tutorial's model with the shapes of settings `s`, built on a batch of `batch`."""
    import keras

    compat_cls, _ = _compat_classes()
    keras.utils.set_random_seed(s["seed"])
    model = compat_cls(s["vocab"], s["embedding_dim"], s["units"], s["target_length"] + 1)
    source, target = compat_data(s, batch)
    model((source, target[:, :-1]))
    return model


def compat_data(s, batch):
    """`(source [B, S], target [B, T + 2])` ids: `<start> + target + <end>` as the tutorial's."""
    source, target = shared.data(s, batch)
    starts = np.full((batch, 1), START_ID, "int32")
    ends = np.full((batch, 1), END_ID, "int32")
    return source, np.concatenate([starts, target, ends], axis=1)


def native_model(s):
    """`seq2seq_luong_feed` with the compat model's sizes, compiled like its step."""
    import keras

    import seqzoo

    keras.utils.set_random_seed(s["seed"])
    model = seqzoo.create("seq2seq_luong_feed", source_vocab_size=s["vocab"],
                          target_vocab_size=s["vocab"], units=s["units"],
                          embedding_dim=s["embedding_dim"], bidirectional=False, bridge="copy")
    model.compile(optimizer=keras.optimizers.Adam(), metrics=[])
    return model


def parameter_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _compat_train_fn(model, s, backend):
    import keras

    source, target = compat_data(s, s["batch"])
    if backend != "tensorflow":
        model.compile(optimizer=keras.optimizers.Adam(), loss=loss_function)
        dec_input, real = target[:, :-1], target[:, 1:]
        return lambda: model.train_on_batch((source, dec_input), real)
    import tensorflow as tf

    optimizer = keras.optimizers.Adam()
    # Built here, the step's variables exist before its first call: one trace instead of two.
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(inp, targ):
        with tf.GradientTape() as tape:
            dec_input = targ[:, :-1]  # without <end>
            real = targ[:, 1:]  # without <start>
            logits = model((inp, dec_input))
            loss = loss_function(real, logits)
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    inp, targ = tf.constant(source), tf.constant(target)
    return lambda: float(train_step(inp, targ))


def _native_train_fn(model, s):
    from seqzoo.data import decoder_io

    source, target = shared.data(s, s["batch"])
    dec_in, dec_out = decoder_io([list(t) for t in target])
    x = {"source_ids": source, "decoder_input_ids": dec_in}
    return lambda: model.train_on_batch(x, dec_out)


def _never_stop_compat(model):
    """Pushes the compat model's end-token logit to -1e9 (as decode._never_stop the native's)."""
    bias = model.fc.bias
    values = np.array(bias.numpy() if hasattr(bias, "numpy") else np.asarray(bias))
    values[END_ID] = -1e9
    bias.assign(values)


def _decode_fns(compat, native, s, batch, backend, decoders):
    """name -> function returning `[B, beam, steps]` host ids, for the decoders asked."""
    from keras import ops

    beam, steps = s["beam_width"], s["target_length"]
    source, _ = shared.data(s, batch)
    fns = {}
    if "compat" in decoders:
        if backend == "tensorflow":
            import tensorflow as tf

            search = compat.beam_decoder(beam, steps)
            # No Python control flow on tensors to convert: autograph only slows the trace.
            compiled = tf.function(lambda x: compat.beam_search(x, beam, steps, search),
                                   autograph=False)
            tensor = tf.constant(source)
            fns["compat"] = lambda: np.transpose(compiled(tensor).numpy(), (0, 2, 1))
        else:
            _, beam_cls = _compat_classes()
            wrapper = beam_cls(compat, beam, steps)
            fns["compat"] = lambda: np.transpose(wrapper.predict_on_batch(source), (0, 2, 1))
    if "compat_eager" in decoders and backend == "tensorflow":
        tensor = ops.convert_to_tensor(source)
        fns["compat_eager"] = lambda: np.transpose(
            ops.convert_to_numpy(compat.beam_search(tensor, beam, steps)), (0, 2, 1))
    if "native" in decoders:
        fns["native"] = lambda: native.search(source, method="beam", beam_size=beam,
                                              n_best=beam, max_length=steps)["ids"]
    return fns


def _ratios(rounds, names):
    """compat-side / native throughput per round, for every compat name timed with native."""
    if "native" not in rounds.seconds:
        return None
    return {f"{name}_over_native": common.paired_ratio(rounds, "native", name)
            for name in names if name != "native"} or None


def _first_line(error):
    return (f"{type(error).__name__}: {error}".strip().splitlines() or [""])[0]


def _train_record(compat, native, s, context, parameters, log):
    """The "train" record, or None when no step could be timed."""
    backend = context["backend"]
    fns, unsupported = {}, {}
    if "compat" in s["train_models"]:
        fns["compat"] = _compat_train_fn(compat, s, backend)
        try:
            fns["compat"]()
        except Exception as error:  # noqa: BLE001 - a limitation of the backend, recorded
            unsupported["compat"] = _first_line(error)
            del fns["compat"]
            log(f"tfa train: compat is not supported on {backend}: {unsupported['compat']}")
    if "native" in s["train_models"]:
        fns["native"] = _native_train_fn(native, s)
    if not fns:
        return None
    rounds = common.interleaved(fns, s["warmup"], s["repeats"], s["min_run_s"],
                                max_others=s["max_others"], max_seconds=s["max_seconds"])
    tokens = s["batch"] * (s["target_length"] + 1)
    out = shared.record("tfa", "train", "train", s, context, rounds, "target_tokens_per_s",
                        {n: tokens for n in fns})
    out["settings"]["beam_width"] = s["beam_width"]
    out["parameters"] = parameters
    out["ratio"] = _ratios(rounds, fns)
    if unsupported:
        out["unsupported"] = unsupported
    log("tfa train: " + ", ".join(
        f"{n} {common.format_rate(r['target_tokens_per_s']['median'])} tok/s"
        for n, r in out["results"].items()))
    return out


def _decode_record(compat, native, s, context, parameters, batch, decoders, log):
    """The "decode" record of one batch size, or None when no decoder could be timed."""
    fns = _decode_fns(compat, native, s, batch, context["backend"], decoders)
    steps, unsupported = {}, {}
    for name in list(fns):
        try:
            steps[name] = int(np.shape(fns[name]())[-1])
        except Exception as error:  # noqa: BLE001 - a compat limitation of the backend, recorded
            if name == "native":
                raise
            unsupported[name] = _first_line(error)
            del fns[name]
            log(f"tfa beam search: {name} is not supported on {context['backend']}: "
                f"{unsupported[name]}")
    if not fns:
        return None
    if set(steps.values()) != {s["target_length"]}:
        raise ValueError(f"tfa: expected {s['target_length']} decoding steps from every "
                         f"decoder. Received: {steps}")
    rounds = common.interleaved(fns, s["warmup"], s["repeats"], s["min_run_s"],
                                max_others=s["max_others"], max_seconds=s["max_seconds"])
    out = shared.record("tfa", "decode", f"batch-{batch}", s, context, rounds,
                        "sequences_per_s", {n: batch for n in fns})
    out["settings"] |= {"decode_batch": batch, "beam_width": s["beam_width"]}
    out["parameters"] = parameters
    out["ratio"] = _ratios(rounds, fns)
    if unsupported:
        out["unsupported"] = unsupported
    log(f"tfa beam{s['beam_width']} batch {batch}: " + ", ".join(
        f"{n} {common.format_rate(r['sequences_per_s']['median'])} seq/s"
        for n, r in out["results"].items()))
    return out


def run(settings, context, log=print):
    """Runs the suite; returns a "train" record and one "decode" record per batch size."""
    from benchmarks import decode

    s = dict(settings)
    check_settings(s)
    try:
        compat = compat_model(s, s["batch"])
    except Exception as error:  # noqa: BLE001 - the runner reports a ValueError in one line
        raise ValueError(f"the compat model does not run on {context['backend']}: "
                         f"{_first_line(error)}") from error
    native = native_model(s)
    parameters = {"compat": parameter_count(compat), "native": parameter_count(native)}
    log(f"tfa: trainable parameters: compat {parameters['compat']:,}, "
        f"native {parameters['native']:,}")
    records = []
    if s["train_models"]:
        train = _train_record(compat, native, s, context, parameters, log)
        records += [train] if train else []
    decoders = list(s["decode_models"])
    if "compat_eager" in decoders and context["backend"] != "tensorflow":
        log("tfa decode: compat_eager is TensorFlow only (dynamic_decode's per-call "
            "tf.function); skipped")
        decoders.remove("compat_eager")
    if decoders:
        _never_stop_compat(compat)
        decode._never_stop(native)
        for batch in _batches(s):
            record = _decode_record(compat, native, s, context, parameters, batch, decoders,
                                    log)
            records += [record] if record else []
    return records


def describe(rows):
    s = rows[0]["settings"]
    params = rows[0].get("parameters", {})
    count = (f"{params['native']:,} trainable parameters each"
             if params and len(set(params.values())) == 1
             else "trainable parameters " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
    return (
        f"Models: vocabulary {s['vocab']} (source and target), embeddings {s['embedding_dim']}, "
        f"one-layer unidirectional LSTM encoder and LSTM decoder of {s['units']} units, Luong "
        f"(general) attention with input feeding and an attention layer of {s['units']} units; "
        f"{count}. compat: TFA's NMT tutorial on `seqzoo.tfa` (AttentionWrapper + "
        "BasicDecoder(TrainingSampler), BeamSearchDecoder); native: `seq2seq_luong_feed` "
        "(bidirectional=False, bridge='copy'). Training: one teacher-forced step (forward, "
        f"backward, Adam) of batch {s['batch']}, source length {s['source_length']}, "
        f"target tokens = batch x (target length {s['target_length']} + 1); compat: the "
        "tutorial's tf.function GradientTape step on TensorFlow (`train_on_batch` elsewhere), "
        "native: `train_on_batch`. Beam search: width "
        f"{s.get('beam_width')}, exactly {s['target_length']} steps (end token disabled); "
        "compat: encoder, tile_batch and BeamSearchDecoder in one compiled function, "
        "compat_eager: the tutorial's eager call; native: `Seq2Seq.search`. Median of clean "
        "interleaved rounds (min-max in brackets); ratios are compat / native throughput, "
        "paired per round. " + common.rounds_note(rows)).rstrip()


def _ratio_text(ratio):
    return f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"


def table(rows):
    lines = []
    train = [r for r in rows if r.get("kind") == "train"]
    decodes = [r for r in rows if r.get("kind") == "decode"]
    for row in train:
        lines.append("| training step | target tokens/s | compat / native |\n| --- | --- | --- |")
        for name, r in row["results"].items():
            ratio = (row.get("ratio") or {}).get(f"{name}_over_native")
            lines.append(f"| {name} | {shared.cell(r['target_tokens_per_s'])} | "
                         f"{_ratio_text(ratio) if ratio else '-'} |")
        for name, reason in row.get("unsupported", {}).items():
            lines.append(f"| {name} | not supported: {reason.replace('|', '/')} | - |")
    if decodes:
        if lines:
            lines.append("")
        beam = decodes[0]["settings"].get("beam_width")
        lines.append(f"| beam search (width {beam}) | batch | sequences/s | compat / native |")
        lines.append("| --- | --- | --- | --- |")
        for row in decodes:
            for name, r in row["results"].items():
                ratio = (row.get("ratio") or {}).get(f"{name}_over_native")
                lines.append(f"| {name} | {row['settings']['decode_batch']} | "
                             f"{shared.cell(r['sequences_per_s'])} | "
                             f"{_ratio_text(ratio) if ratio else '-'} |")
            for name, reason in row.get("unsupported", {}).items():
                lines.append(f"| {name} | {row['settings']['decode_batch']} | not supported: "
                             f"{reason.replace('|', '/')} | - |")
    return "\n".join(lines)
