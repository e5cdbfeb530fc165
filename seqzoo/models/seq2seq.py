"""Encoder-decoder models: basic (fixed vector) and attention (Luong, Bahdanau)."""

import keras
import numpy as np
from keras import ops

from seqzoo.data.padding import pad_sequences
from seqzoo.errors import InputError
from seqzoo.decoding import CompiledFunction, beam_search, greedy_search, sample
from seqzoo.layers import TokenEmbedding
from seqzoo.layers.bridge import BRIDGES, Bridge
from seqzoo.layers.decoder import ATTENTIONS, RNNDecoder
from seqzoo.layers.rnn import RNNStack
from seqzoo.losses import SampledSoftmax, SequenceLoss
from seqzoo.metrics import MaskedTokenAccuracy, Perplexity, SequenceExactMatch
from seqzoo.models.base import (
    SampledTraining,
    ZooModel,
    check_positive_int,
    check_rate,
    deserialize_tokenizer,
    serialize_tokenizer,
)
from seqzoo.text.specials import BOS_ID, PAD_ID
from seqzoo.layers.scheduled_sampling import check_schedule, sampling_probability

SOURCE_LENGTH_MULTIPLE = 8


@keras.saving.register_keras_serializable(package="seqzoo")
class Seq2Seq(SampledTraining, ZooModel):
    """An RNN encoder-decoder, with or without attention.

    Inputs are a dict `{"source_ids": [B, S], "decoder_input_ids": [B, T]}`
    (right padded with 0; decoder inputs start with `<s>`, see
    `seqzoo.data.decoder_io`), the output is `[B, T, target_vocab_size]`
    logits of the decoder targets (`target + </s>`), trained with teacher
    forcing and the masked `SequenceLoss`.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes.
        embedding_dim: source (and, by default, target) embedding size.
        target_embedding_dim: target embedding size, if different.
        units, num_layers, cell, bidirectional, merge_mode, residual,
            dropout, use_cudnn: the encoder `RNNStack`.
        embedding_dropout: dropout on the source and target embeddings in
            training (the `dropout` of a one-layer stack only acts on the
            decoder output, so this is the main regularizer of small models).
        decoder_units: decoder RNN size (default: the encoder output size).
        decoder_layers: decoder depth (default: `num_layers`).
        attention: `None` (the classic fixed-vector model), `"luong"` or
            `"bahdanau"`.
        attention_score: Luong score `"dot"`, `"general"` or `"scaled"`.
        attention_units: Bahdanau hidden size.
        attention_normalize: Bahdanau's normalized form.
        input_feeding: feed the previous attentional output to the next
            decoder step (steps through time in training); without it the
            decoder RNN runs fused over the whole target.
        coverage: the attention also sees how much it attended to each
            source position so far (Tu et al., 2016); needs `input_feeding`.
        bridge: `"dense"`, `"copy"` or `"zero"`: how encoder final states
            become decoder initial states.
        tie_embeddings: share the target embedding with the output layer.
        num_sampled: train with sampled softmax over this many candidates.
        scheduled_sampling: `None` (teacher forcing) or a schedule of
            `seqzoo.layers.sampling_probability` (`"linear"`,
            `"exponential"`, `"inverse_sigmoid"`): in training the decoder
            then steps through time and, with a probability that grows with
            the training step (counted by the model's `sampling_step`
            variable, saved with the weights), reads its own previous
            prediction.
        sampling_steps, max_sampling_probability: the schedule's scale in
            steps and its ceiling.
        source_tokenizer, target_tokenizer: travel with the saved model and
            let `translate` take and return text.
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        embedding_dim=64,
        target_embedding_dim=None,
        units=128,
        num_layers=1,
        cell="lstm",
        bidirectional=True,
        merge_mode="concat",
        residual=False,
        dropout=0.0,
        embedding_dropout=0.0,
        use_cudnn="auto",
        decoder_units=None,
        decoder_layers=None,
        attention="luong",
        attention_score="general",
        attention_units=None,
        attention_normalize=False,
        input_feeding=False,
        coverage=False,
        bridge="dense",
        tie_embeddings=False,
        num_sampled=None,
        scheduled_sampling=None,
        sampling_steps=1000,
        max_sampling_probability=0.25,
        source_tokenizer=None,
        target_tokenizer=None,
        **kwargs,
    ):
        check_positive_int("source_vocab_size", source_vocab_size)
        check_positive_int("target_vocab_size", target_vocab_size)
        check_rate("dropout", dropout)
        check_rate("embedding_dropout", embedding_dropout)
        if attention not in ATTENTIONS:
            raise ValueError(f"Expected attention in {list(ATTENTIONS)}. Received: attention={attention!r}")
        if bridge not in BRIDGES:
            raise ValueError(f"Expected bridge in {list(BRIDGES)}. Received: bridge={bridge!r}")
        if scheduled_sampling is not None:
            check_schedule(scheduled_sampling, sampling_steps, max_sampling_probability)
            if num_sampled is not None:
                raise ValueError("Scheduled sampling needs the full softmax to pick the fed-back "
                                 "token. Received: scheduled_sampling with num_sampled="
                                 f"{num_sampled}")
        if attention is None and bridge == "zero":
            raise ValueError("Without attention the decoder only sees the source through the "
                             "bridge. Received: attention=None, bridge='zero'")
        target_embedding_dim = target_embedding_dim or embedding_dim
        encoder = RNNStack(units, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
                           merge_mode=merge_mode, residual=residual, dropout=dropout,
                           use_cudnn=use_cudnn, name="encoder")
        decoder_units = decoder_units or encoder.output_size
        decoder_layers = decoder_layers or num_layers
        decoder = RNNDecoder(
            decoder_units, num_layers=decoder_layers, cell=cell, residual=residual,
            dropout=dropout, use_cudnn=use_cudnn, attention=attention,
            attention_score=attention_score, attention_units=attention_units,
            attention_normalize=attention_normalize, input_feeding=input_feeding,
            coverage=coverage, name="decoder")
        bridge_layer = Bridge(bridge, decoder_units, decoder_layers,
                              2 if cell == "lstm" else 1, merge_mode, name="bridge")
        if bridge == "copy" and (decoder_units != encoder.output_size
                                 or decoder_layers != num_layers):
            raise ValueError(
                "bridge='copy' needs decoder_units == the encoder output size "
                f"({encoder.output_size}) and decoder_layers == num_layers ({num_layers}). "
                f"Received: decoder_units={decoder_units}, decoder_layers={decoder_layers}")

        source = keras.Input((None,), dtype="int32", name="source_ids")
        decoder_inputs = keras.Input((None,), dtype="int32", name="decoder_input_ids")
        source_embedding = TokenEmbedding(source_vocab_size, embedding_dim,
                                          name="source_embedding")
        target_embedding = TokenEmbedding(target_vocab_size, target_embedding_dim,
                                          name="target_embedding")
        embedded_source = source_embedding(source)
        embedded_target = target_embedding(decoder_inputs)
        source_dropout = target_dropout = None
        if embedding_dropout:
            source_dropout = keras.layers.Dropout(embedding_dropout,
                                                  name="source_embedding_dropout")
            target_dropout = keras.layers.Dropout(embedding_dropout,
                                                  name="target_embedding_dropout")
            embedded_source = source_dropout(embedded_source)
            embedded_target = target_dropout(embedded_target)
        memory, encoder_states = encoder(embedded_source)
        memory_mask = ops.not_equal(source, PAD_ID)
        initial_state = bridge_layer(encoder_states)
        hidden = decoder(embedded_target, memory=memory,
                            memory_mask=memory_mask, initial_state=initial_state)
        projection = None
        if tie_embeddings and decoder.output_size != target_embedding_dim:
            projection = keras.layers.Dense(target_embedding_dim, name="projection")
            hidden = projection(hidden)
        head = SampledSoftmax(target_vocab_size, num_sampled=num_sampled,
                              tied_embedding=target_embedding if tie_embeddings else None,
                              name="output")
        logits = head(hidden)
        inputs = {"source_ids": source, "decoder_input_ids": decoder_inputs}
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.source_tokenizer = deserialize_tokenizer(source_tokenizer, "source_tokenizer")
        self.target_tokenizer = deserialize_tokenizer(target_tokenizer, "target_tokenizer")
        self._hyperparameters = dict(
            source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
            embedding_dim=embedding_dim, target_embedding_dim=target_embedding_dim,
            units=units, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
            merge_mode=merge_mode, residual=residual, dropout=dropout,
            embedding_dropout=embedding_dropout, use_cudnn=use_cudnn,
            decoder_units=decoder_units, decoder_layers=decoder_layers, attention=attention,
            attention_score=attention_score, attention_units=attention_units,
            attention_normalize=attention_normalize, input_feeding=input_feeding,
            coverage=coverage, bridge=bridge, tie_embeddings=tie_embeddings, num_sampled=num_sampled,
            scheduled_sampling=scheduled_sampling, sampling_steps=sampling_steps,
            max_sampling_probability=max_sampling_probability,
        )
        self._sampling_seed = keras.random.SeedGenerator(0)
        if scheduled_sampling is not None:
            # Counts training steps for the schedule; a model variable (not the
            # optimizer's) so every backend's trainer can read and update it.
            self.sampling_step = keras.Variable(0.0, trainable=False, name="sampling_step")
        self._parts = dict(source_embedding=source_embedding, target_embedding=target_embedding,
                           encoder=encoder, bridge=bridge_layer, decoder=decoder,
                           projection=projection, head=head, source_dropout=source_dropout,
                           target_dropout=target_dropout)
        self._init_sampled_training(inputs, hidden, head, num_sampled)
        # `_search` is the uncompiled search (the export traces it itself).
        self._search = search_step_function(self.encode, self.step, attention is not None,
                                            self._alignment, lambda state: state["mask"])
        self._search_fn = CompiledFunction(self._search, lambda: self.variables)
        self._score_fn = CompiledFunction(self._sequence_log_probs, lambda: self.variables)

    def get_config(self):
        config = super().get_config()
        config.pop("tokenizer", None)
        config["source_tokenizer"] = serialize_tokenizer(self.source_tokenizer)
        config["target_tokenizer"] = serialize_tokenizer(self.target_tokenizer)
        return config

    def default_loss(self):
        return SequenceLoss()

    def default_metrics(self):
        return [MaskedTokenAccuracy(), SequenceExactMatch(), Perplexity()]

    # -- inference -----------------------------------------------------------

    # -- scheduled sampling ----------------------------------------------------

    def call(self, inputs, training=None, mask=None):
        if training and self._hyperparameters["scheduled_sampling"] is not None:
            return self._scheduled_sampling_call(inputs)
        return super().call(inputs, training=training, mask=mask)

    def sampling_probability(self):
        """The current probability of feeding the model's own prediction."""
        h = self._hyperparameters
        if h["scheduled_sampling"] is None:
            return 0.0
        return sampling_probability(h["scheduled_sampling"], self.sampling_step,
                                    h["sampling_steps"], h["max_sampling_probability"])

    def _scheduled_sampling_call(self, inputs):
        """Teacher-forced logits where some inputs are the model's own predictions."""
        gold = ops.cast(inputs["decoder_input_ids"], "int32")
        state = self.encode(inputs["source_ids"], training=True)
        constants = {k: state.pop(k) for k in ("memory", "keys", "mask") if k in state}
        coins = keras.random.uniform(ops.shape(gold), seed=self._sampling_seed)
        p = ops.cast(self.sampling_probability(), "float32")
        self.sampling_step.assign_add(1.0)
        vocab = self._hyperparameters["target_vocab_size"]
        init = {"state": state, "prev": gold[:, 0],
                "logits": ops.zeros((ops.shape(gold)[0], vocab), "float32")}

        def body(carry, xs):
            gold_t, coin_t = xs
            token = ops.where(coin_t < p, carry["prev"], gold_t)
            logits, new = self.step(token, {**carry["state"], **constants}, training=True)
            carry = {"state": {k: v for k, v in new.items() if k not in constants},
                     "prev": ops.cast(ops.argmax(logits, axis=-1), "int32"),
                     "logits": ops.cast(logits, "float32")}
            # Keras' TensorFlow scan wants outputs shaped like the carry.
            return carry, carry

        _, history = ops.scan(body, init, (ops.transpose(gold), ops.transpose(coins)))
        return ops.transpose(history["logits"], (1, 0, 2))

    # -- inference -----------------------------------------------------------

    def encode(self, source_ids, training=False):
        """Encodes `[B, S]` source ids; returns the decoder's initial step state."""
        parts = self._parts
        source_ids = ops.convert_to_tensor(source_ids, "int32")
        embedded = parts["source_embedding"](source_ids)
        if parts["source_dropout"] is not None:
            embedded = parts["source_dropout"](embedded, training=training)
        memory, encoder_states = parts["encoder"](embedded, training=training)
        initial = parts["bridge"](encoder_states)
        return parts["decoder"].initial_step_state(
            initial, memory, ops.not_equal(source_ids, PAD_ID))

    def step(self, token_ids, state, training=False):
        """One decoding step: `([B] ids, state) -> ([B, V] logits, state)`."""
        parts = self._parts
        embedded = parts["target_embedding"].lookup(token_ids)
        if parts["target_dropout"] is not None:
            embedded = parts["target_dropout"](embedded, training=training)
        output, state = parts["decoder"].step(embedded, state, training=training)
        if parts["projection"] is not None:
            output = parts["projection"](output)
        return parts["head"](output), state

    def attention_weights(self, source_ids, decoder_input_ids):
        """Teacher-forced attention weights `[B, T, S]` (for plots)."""
        parts = self._parts
        if self._hyperparameters["attention"] is None:
            raise ValueError("This model has no attention (attention=None).")
        state = self.encode(source_ids)
        embedded = parts["target_embedding"](ops.convert_to_tensor(decoder_input_ids, "int32"))
        _, weights = parts["decoder"](
            embedded, memory=state["memory"], memory_mask=state["mask"],
            initial_state=state["rnn"], return_alignments=True)
        return ops.convert_to_numpy(weights)

    def _alignment(self, state):
        return state["alignment"]

    def _sequence_log_probs(self, source_ids, decoder_inputs, decoder_targets):
        logits = self({"source_ids": source_ids, "decoder_input_ids": decoder_inputs},
                      training=False)
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, decoder_targets[..., None], axis=-1)[..., 0]
        return ops.sum(ops.where(decoder_targets != PAD_ID, picked, 0.0), axis=-1)

    def sequence_log_probs(self, source_ids, target_ids, target_length=None):
        """`log P(target + </s> | source)` of given outputs (forced decoding).

        Scores outputs found elsewhere, e.g. to rescore another model's
        n-best list.

        Args:
            source_ids: `[B, S]` right-padded source ids.
            target_ids: `B` target id sequences, without `<s>` or `</s>`.
            target_length: pad the targets to this many steps (`</s>`
                included), so that calls of varying lengths share one
                compiled function; default: the longest target + 1.

        Returns:
            A numpy float32 array `[B]`, the summed log-probabilities of each
            target's tokens and its `</s>`.
        """
        from seqzoo.data.padding import decoder_io

        source_ids = np.asarray(source_ids, dtype="int32")
        if source_ids.ndim != 2 or source_ids.shape[0] != len(target_ids):
            raise ValueError(f"Expected source ids [B, S] and B targets. Received: source shape "
                             f"{source_ids.shape} and {len(target_ids)} targets")
        inputs, targets = decoder_io([list(t) for t in target_ids], maxlen=target_length)
        return ops.convert_to_numpy(self._score_fn(source_ids, inputs, targets))

    def search(self, source_ids, method="beam", beam_size=4, max_length=None, n_best=1,
               length_penalty=0.0, coverage_penalty=0.0, temperature=1.0, top_k=None,
               seed=None):
        """Decodes `[B, S]` source ids (compiled), returning numpy arrays.

        Args:
            source_ids: right-padded source ids.
            method: `"beam"`, `"greedy"` or `"sample"`.
            beam_size, n_best, length_penalty, coverage_penalty: beam search.
            max_length: most target tokens, `</s>` included (default
                `2 * S + 10`).
            temperature, top_k, seed: sampling.

        Returns:
            A dict with `"ids"` `[B, n, T]` (`n = n_best` for beam search, else
            1), `"scores"` `[B, n]`, and for beam search with attention
            `"alignments"` `[B, n, T, S]`.
        """
        return run_search(self._search_fn, source_ids, method=method, beam_size=beam_size,
                          max_length=max_length, n_best=n_best, length_penalty=length_penalty,
                          coverage_penalty=coverage_penalty, temperature=temperature,
                          top_k=top_k, seed=seed)

    def translate(self, texts, beam_size=1, max_length=None, n_best=1, length_penalty=0.0,
                  coverage_penalty=0.0, return_scores=False, return_alignments=False):
        """Translates raw texts with the model's tokenizers.

        Args:
            texts: a list of source strings.
            beam_size: 1 for greedy search, more for beam search.
            max_length: most target tokens (default `2 * longest source + 10`).
            n_best: hypotheses per text (`<= beam_size`).
            length_penalty, coverage_penalty: GNMT penalties (beam search).
            return_scores: also return the scores.
            return_alignments: also return attention alignments
                `[n_best, T, S]` per text (attention models, beam search).

        Returns:
            A list with one string per text (`n_best == 1`) or one list of
            `n_best` strings; with `return_scores`/`return_alignments` a dict
            with `"texts"`, `"scores"`, `"alignments"`.
        """
        return translate_texts(self, texts, beam_size=beam_size, max_length=max_length,
                               n_best=n_best, length_penalty=length_penalty,
                               coverage_penalty=coverage_penalty, return_scores=return_scores,
                               return_alignments=return_alignments)


def search_step_function(encode, step, has_attention, alignment, source_mask):
    """The body of a compiled search over any encoder-decoder (model or ensemble).

    Args:
        encode: `[B, S] ids -> state`.
        step: `([B] ids, state) -> ([B, V] logits, state)`.
        has_attention: whether `alignment(state)` gives the attention `[B, S]`.
        alignment, source_mask: `state -> [B, S]` attention and source mask.

    Returns:
        `fn(source_ids, uniforms, method, max_length, beam_size, n_best,
        length_penalty, coverage_penalty, temperature, top_k) -> dict`, to be
        wrapped in a `CompiledFunction` and called through `run_search`.
    """

    def search(source_ids, uniforms, method, max_length, beam_size, n_best,
               length_penalty, coverage_penalty, temperature, top_k):
        state = encode(source_ids)
        start = ops.full((ops.shape(source_ids)[0],), BOS_ID, "int32")
        if method == "beam":
            return beam_search(
                step, start, state, beam_size=beam_size, max_length=max_length,
                length_penalty=length_penalty, coverage_penalty=coverage_penalty,
                n_best=n_best, alignment_fn=alignment if has_attention else None,
                source_mask=source_mask(state) if has_attention else None)
        if method == "greedy":
            ids, scores, _ = greedy_search(step, start, state, max_length)
        else:
            ids, scores, _ = sample(step, start, state, max_length, uniforms,
                                    temperature=temperature, top_k=top_k)
        return {"ids": ids[:, None], "scores": scores[:, None]}

    return search


def run_search(search_fn, source_ids, method="beam", beam_size=4, max_length=None, n_best=1,
               length_penalty=0.0, coverage_penalty=0.0, temperature=1.0, top_k=None,
               seed=None):
    """Checks the arguments of `search` and calls the compiled `search_fn` (see `Seq2Seq.search`)."""
    if method not in ("beam", "greedy", "sample"):
        raise ValueError(f"Expected method 'beam', 'greedy' or 'sample'. Received: method={method!r}")
    source_ids = np.asarray(source_ids, dtype="int32")
    if source_ids.ndim != 2 or source_ids.shape[1] == 0:
        raise ValueError(f"Expected source ids of shape [B, S]. Received: shape={source_ids.shape}")
    length = source_ids.shape[1]
    if max_length is None:
        max_length = 2 * length + 10
    check_positive_int("max_length", max_length)
    check_positive_int("beam_size", beam_size)
    # The search compiles once per input shape: padding the source to a
    # multiple of 8 (masked, so the results are the same) bounds the
    # number of compilations when lengths vary from call to call.
    padded = -(-length // SOURCE_LENGTH_MULTIPLE) * SOURCE_LENGTH_MULTIPLE
    source_ids = np.pad(source_ids, ((0, 0), (0, padded - length)))
    uniforms = keras.random.uniform((max_length, source_ids.shape[0]), seed=seed)
    result = search_fn(
        source_ids, uniforms, method=method, max_length=int(max_length),
        beam_size=int(beam_size), n_best=int(n_best), length_penalty=float(length_penalty),
        coverage_penalty=float(coverage_penalty), temperature=float(temperature),
        top_k=top_k)
    result = {k: ops.convert_to_numpy(v) for k, v in result.items()}
    if "alignments" in result:
        result["alignments"] = result["alignments"][..., :length]
    return result


def translate_texts(model, texts, beam_size=1, max_length=None, n_best=1, length_penalty=0.0,
                    coverage_penalty=0.0, return_scores=False, return_alignments=False):
    """`model.translate(texts, ...)` for anything with tokenizers and `search` (see `Seq2Seq.translate`)."""
    if model.source_tokenizer is None or model.target_tokenizer is None:
        raise ValueError("translate() needs source_tokenizer and target_tokenizer; "
                         "use search() with token ids instead.")
    if isinstance(texts, str):
        raise TypeError("Expected a list of texts. Received: a single string")
    encoded = []
    for index, text in enumerate(texts):
        unknown = model.source_tokenizer.unknown_tokens(text)
        if unknown:
            raise InputError(f"texts[{index}]={text!r} has tokens outside the source "
                             f"vocabulary: {unknown}")
        ids = model.source_tokenizer.encode(text)
        if not ids:
            raise InputError(f"Expected non-empty texts. Received: texts[{index}]={text!r}")
        encoded.append(ids)
    if not encoded:
        return []
    method = "beam" if beam_size > 1 or n_best > 1 or return_alignments else "greedy"
    result = model.search(pad_sequences(encoded), method=method, beam_size=beam_size,
                          max_length=max_length, n_best=n_best,
                          length_penalty=length_penalty, coverage_penalty=coverage_penalty)
    decoded = [[model.target_tokenizer.decode(h) for h in row] for row in result["ids"]]
    outputs = [row[0] for row in decoded] if n_best == 1 else decoded
    if not (return_scores or return_alignments):
        return outputs
    extra = {"texts": outputs, "scores": result["scores"]}
    if return_alignments:
        if "alignments" not in result:
            raise ValueError("This model has no attention: there are no alignments.")
        extra["alignments"] = [
            row[:, :, : len(src)] for row, src in zip(result["alignments"], encoded)]
    return extra
