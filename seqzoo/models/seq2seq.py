"""Encoder-decoder models: basic (fixed vector) and attention (Luong, Bahdanau)."""

import keras
import numpy as np
from keras import ops

from seqzoo.decoding import CompiledFunction
from seqzoo.errors import ArgumentError
from seqzoo.layers import TokenEmbedding
from seqzoo.layers.bridge import BRIDGES, Bridge
from seqzoo.layers.decoder import ATTENTIONS, RNNDecoder, pack_steps, unpack_steps
from seqzoo.layers.rnn import RNNStack, step_dropout_masks
from seqzoo.layers.scheduled_sampling import check_schedule, sampling_probability
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
from seqzoo.models.search import SearchMixin
from seqzoo.text.specials import PAD_ID


@keras.saving.register_keras_serializable(package="seqzoo")
class Seq2Seq(SearchMixin, SampledTraining, ZooModel):
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
            raise ArgumentError(f"Expected attention in {list(ATTENTIONS)}. "
                                f"Received: attention={attention!r}")
        if bridge not in BRIDGES:
            raise ArgumentError(f"Expected bridge in {list(BRIDGES)}. Received: bridge={bridge!r}")
        if scheduled_sampling is not None:
            check_schedule(scheduled_sampling, sampling_steps, max_sampling_probability)
            if num_sampled is not None:
                raise ArgumentError(
                    "Scheduled sampling needs the full softmax to pick the fed-back "
                    "token. Received: scheduled_sampling with num_sampled="
                    f"{num_sampled}")
        if attention is None and bridge == "zero":
            raise ArgumentError("Without attention the decoder only sees the source through the "
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
            raise ArgumentError(
                "bridge='copy' needs decoder_units == the encoder output size "
                f"({encoder.output_size}) and decoder_layers == num_layers ({num_layers}). "
                f"Received: decoder_units={decoder_units}, decoder_layers={decoder_layers}")

        # Layers are made and built in a fixed order: initial weights depend on it.
        parts = dict(encoder=encoder, decoder=decoder, bridge=bridge_layer)
        parts["source_embedding"] = TokenEmbedding(source_vocab_size, embedding_dim,
                                                   name="source_embedding")
        parts["target_embedding"] = TokenEmbedding(target_vocab_size, target_embedding_dim,
                                                   name="target_embedding")
        parts["source_dropout"] = parts["target_dropout"] = None
        if embedding_dropout:
            parts["source_dropout"] = keras.layers.Dropout(embedding_dropout,
                                                           name="source_embedding_dropout")
            parts["target_dropout"] = keras.layers.Dropout(embedding_dropout,
                                                           name="target_embedding_dropout")
        parts["projection"] = None
        if tie_embeddings and decoder.output_size != target_embedding_dim:
            parts["projection"] = keras.layers.Dense(target_embedding_dim, name="projection")
        head = parts["head"] = SampledSoftmax(
            target_vocab_size, num_sampled=num_sampled,
            tied_embedding=parts["target_embedding"] if tie_embeddings else None, name="output")
        # The graph is built from the same helpers as `encode` and `step`.
        source = keras.Input((None,), dtype="int32", name="source_ids")
        decoder_inputs = keras.Input((None,), dtype="int32", name="decoder_input_ids")
        embedded_source = _embed_sources(parts, source)
        embedded_target = _embed_targets(parts, decoder_inputs)
        memory, memory_mask, initial_state = _encode_embedded(parts, source, embedded_source)
        hidden = _features(parts, decoder(embedded_target, memory=memory,
                                          memory_mask=memory_mask,
                                          initial_state=initial_state))
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
            coverage=coverage, bridge=bridge, tie_embeddings=tie_embeddings,
            num_sampled=num_sampled,
            scheduled_sampling=scheduled_sampling, sampling_steps=sampling_steps,
            max_sampling_probability=max_sampling_probability,
        )
        self._sampling_seed = keras.random.SeedGenerator(0)
        if scheduled_sampling is not None:
            # Counts training steps for the schedule; a model variable (not the
            # optimizer's) so every backend's trainer can read and update it.
            self.sampling_step = keras.Variable(0.0, trainable=False, name="sampling_step")
        self._parts = parts
        self._init_sampled_training(inputs, hidden, head, num_sampled)
        self._init_search(self.encode, self.step, attention is not None, self._alignment,
                          lambda state: state["mask"], parts["decoder"].beam_shared)
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
            first, noise = unpack_steps(xs, parts)
            gold_t, coin_t = ops.cast(first[:, 0], "int32"), first[:, 1]
            token = ops.where(coin_t < p, carry["prev"], gold_t)
            logits, new = self.step(token, {**carry["state"], **constants}, training=True,
                                    noise=noise)
            carry = {"state": {k: v for k, v in new.items() if k not in constants},
                     "prev": ops.cast(ops.argmax(logits, axis=-1), "int32"),
                     "logits": ops.cast(logits, "float32")}
            # Keras' TensorFlow scan wants outputs shaped like the carry.
            return carry, carry

        noise = self.step_noise(ops.shape(gold)[0], ops.shape(gold)[1], training=True)
        # One sequence for the scan (`pack_steps`): ids below 2**24 are exact in float32.
        first = ops.stack([ops.cast(ops.transpose(gold), "float32"), ops.transpose(coins)], -1)
        xs, parts = pack_steps(first, noise)
        _, history = ops.scan(body, init, xs)
        return ops.transpose(history["logits"], (1, 0, 2))

    # -- inference -----------------------------------------------------------

    def encode(self, source_ids, training=False):
        """Encodes `[B, S]` source ids; returns the decoder's initial step state."""
        source_ids = ops.convert_to_tensor(source_ids, "int32")
        memory, memory_mask, initial = _encode_embedded(
            self._parts, source_ids, _embed_sources(self._parts, source_ids, training),
            training=training)
        return self._parts["decoder"].initial_step_state(initial, memory, memory_mask)

    @property
    def beam_shared(self):
        """The `step` state entries that may keep one row per item while the tokens have
        one row per beam (`seqzoo.decoding.beam_search`'s `shared`)."""
        return self._parts["decoder"].beam_shared

    def step_noise(self, batch, steps, training):
        """The dropout masks of `steps` training steps of `step`, drawn at once before
        a loop over time (`RNNDecoder.step_noise`, and `"embedding"` for the
        target embeddings' dropout); `{}` when not training."""
        if not training:
            return {}
        parts = self._parts
        noise = parts["decoder"].step_noise(batch, steps, training)
        if parts["target_dropout"] is not None:
            noise["embedding"] = step_dropout_masks(parts["target_dropout"], steps, batch,
                                                    parts["target_embedding"].embedding_dim)
        return noise

    def step(self, token_ids, state, training=False, noise=None):
        """One decoding step: `([B] ids, state) -> ([B, V] logits, state)`.

        `noise`: this step's slice of `step_noise`, the dropout masks to apply
        in training instead of drawing them (inside a loop over time)."""
        parts = self._parts
        noise = noise or {}
        if "embedding" in noise:
            embedded = _embed_targets(parts, token_ids, training=False, step=True)
            embedded = embedded * ops.cast(noise["embedding"], embedded.dtype)
        else:
            embedded = _embed_targets(parts, token_ids, training=training, step=True)
        output, state = parts["decoder"].step(embedded, state, training=training,
                                              noise={k: v for k, v in noise.items()
                                                     if k != "embedding"})
        return parts["head"](_features(parts, output)), state

    def attention_weights(self, source_ids, decoder_input_ids):
        """Teacher-forced attention weights `[B, T, S]` (for plots)."""
        parts = self._parts
        if self.hyperparameters["attention"] is None:
            raise ValueError("This model has no attention (attention=None).")
        state = self.encode(source_ids)
        embedded = _embed_targets(parts, ops.convert_to_tensor(decoder_input_ids, "int32"))
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
            raise ArgumentError(f"Expected source ids [B, S] and B targets. Received: source shape "
                                f"{source_ids.shape} and {len(target_ids)} targets")
        inputs, targets = decoder_io([list(t) for t in target_ids], maxlen=target_length)
        return ops.convert_to_numpy(self._score_fn(source_ids, inputs, targets))


# The forward pass in pieces, shared by the functional graph (teacher
# forcing) and `encode`/`step` (search), so the two cannot drift apart.


def _embed_sources(parts, source_ids, training=None):
    """Source embeddings `[B, S, E]` of `[B, S]` ids."""
    embedded = parts["source_embedding"](source_ids)
    if parts["source_dropout"] is not None:
        embedded = parts["source_dropout"](embedded, training=training)
    return embedded


def _encode_embedded(parts, source_ids, embedded, training=None):
    """`(memory [B, S, H], memory mask [B, S], decoder initial state)` of embedded sources."""
    memory, encoder_states = parts["encoder"](embedded, training=training)
    return memory, ops.not_equal(source_ids, PAD_ID), parts["bridge"](encoder_states)


def _embed_targets(parts, token_ids, training=None, step=False):
    """Target embeddings of `[B, T]` ids, or of one step's `[B]` ids (`step=True`)."""
    embedding = parts["target_embedding"]
    embedded = embedding.lookup(token_ids) if step else embedding(token_ids)
    if parts["target_dropout"] is not None:
        embedded = parts["target_dropout"](embedded, training=training)
    return embedded


def _features(parts, hidden):
    """The decoder output as the head reads it (projected for tied embeddings)."""
    return hidden if parts["projection"] is None else parts["projection"](hidden)
