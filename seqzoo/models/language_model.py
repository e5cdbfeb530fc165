"""RNN language model: tied embeddings, full or sampled softmax, generation."""

import keras
import numpy as np
from keras import ops

from seqzoo.decoding import CompiledFunction, greedy_search, sample
from seqzoo.errors import ArgumentError
from seqzoo.layers import TokenEmbedding
from seqzoo.layers.rnn import RNNStack
from seqzoo.losses import SampledSoftmax, SequenceLoss
from seqzoo.metrics import MaskedTokenAccuracy, Perplexity
from seqzoo.models.base import SampledTraining, ZooModel, check_positive_int, check_rate
from seqzoo.text.specials import BOS_ID, EOS_ID


@keras.saving.register_keras_serializable(package="seqzoo")
class RNNLanguageModel(SampledTraining, ZooModel):
    """A stacked LSTM/GRU language model over token ids.

    Inputs are `[B, T]` ids (0 pads), outputs `[B, T, vocab_size]` logits of
    the next token. Train it on `decoder_io` pairs: inputs `<s> w1 .. wn`,
    targets `w1 .. wn </s>`.

    With `num_sampled` set, training uses sampled softmax: the forward pass
    stops at the hidden states and the loss scores the true token against
    `num_sampled` sampled ones, which is much cheaper for a large
    vocabulary. Evaluation and prediction always use the full softmax, so
    `evaluate()` reports the true perplexity. During sampled training only the
    loss is reported.

    Args:
        vocab_size: number of token ids.
        embedding_dim: size of the token embeddings.
        units, num_layers, cell, residual, dropout, use_cudnn: the
            `RNNStack`.
        tie_embeddings: share the embedding matrix with the output layer
            (the top layer's output is projected to `embedding_dim` first
            when `units != embedding_dim`).
        num_sampled: sampled candidates per batch in training, or `None`
            for the full softmax.
        sampler: `"log_uniform"` (ids sorted by frequency, as seqzoo
            vocabularies are) or `"uniform"`.
        tokenizer: optional tokenizer that travels with the saved model and
            lets `generate` take and return text.
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim=128,
        units=256,
        num_layers=2,
        cell="lstm",
        residual=False,
        dropout=0.0,
        use_cudnn="auto",
        tie_embeddings=True,
        num_sampled=None,
        sampler="log_uniform",
        tokenizer=None,
        **kwargs,
    ):
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("embedding_dim", embedding_dim)
        check_rate("dropout", dropout)
        inputs = keras.Input((None,), dtype="int32", name="token_ids")
        embedding = TokenEmbedding(vocab_size, embedding_dim, name="embedding")
        stack = RNNStack(
            units, num_layers=num_layers, cell=cell, residual=residual, dropout=dropout,
            use_cudnn=use_cudnn, name="decoder",
        )
        hidden, _ = stack(embedding(inputs))
        if dropout:
            hidden = keras.layers.Dropout(dropout, name="output_dropout")(hidden)
        projection = None
        if tie_embeddings and units != embedding_dim:
            projection = keras.layers.Dense(embedding_dim, name="projection")
            hidden = projection(hidden)
        head = SampledSoftmax(
            vocab_size, num_sampled=num_sampled, sampler=sampler,
            tied_embedding=embedding if tie_embeddings else None, name="output",
        )
        logits = head(hidden)
        super().__init__(inputs=inputs, outputs=logits, tokenizer=tokenizer, **kwargs)
        self._hyperparameters = dict(
            vocab_size=vocab_size, embedding_dim=embedding_dim, units=units,
            num_layers=num_layers, cell=cell, residual=residual, dropout=dropout,
            use_cudnn=use_cudnn, tie_embeddings=tie_embeddings, num_sampled=num_sampled,
            sampler=sampler,
        )
        self._parts = {"embedding": embedding, "stack": stack, "projection": projection,
                       "head": head}
        self._init_sampled_training(inputs, hidden, head, num_sampled)
        self._generate_fn = None

    def default_loss(self):
        return SequenceLoss()

    def default_metrics(self):
        return [MaskedTokenAccuracy(), Perplexity()]

    def step(self, token_ids, states):
        """One decoding step: `([B] ids, states) -> ([B, V] logits, states)`."""
        parts = self._parts
        hidden, states = parts["stack"].step(parts["embedding"].lookup(token_ids), states)
        if parts["projection"] is not None:
            hidden = parts["projection"](hidden)
        return parts["head"](hidden), states

    def _generate(self, prompt, uniforms, max_length, temperature, top_k, greedy):
        # The prompt is fed token by token: while t < len(prompt) - 1 the
        # "chosen" token is the prompt's next one, then the model samples.
        batch = ops.shape(prompt)[0]
        prompt_length = ops.sum(ops.cast(ops.not_equal(prompt, 0), "int32"), axis=1)
        width = prompt.shape[1]
        padded = ops.concatenate(
            [prompt, ops.zeros((batch, max_length + 1 - width), "int32")], axis=1
        ) if width <= max_length else prompt

        def step(ids, state):
            t, rnn_states = state
            logits, rnn_states = self.step(ids, rnn_states)
            forced = ops.take(padded, ops.minimum(t + 1, padded.shape[1] - 1), axis=1)
            in_prompt = (t + 1) < prompt_length
            # Make the forced token certain so that the chooser picks it.
            onehot = ops.one_hot(forced, logits.shape[-1]) * 1e9
            logits = ops.where(in_prompt[:, None], onehot, logits)
            return logits, (t + 1, rnn_states)

        state = (ops.convert_to_tensor(0, "int32"), self._parts["stack"].initial_states(batch))
        if greedy:
            ids, _, _ = greedy_search(step, prompt[:, 0], state, max_length)
        else:
            ids, _, _ = sample(step, prompt[:, 0], state, max_length, uniforms,
                               temperature=temperature, top_k=top_k)
        return ids

    def generate(self, prompts, max_length=50, temperature=1.0, top_k=None, seed=None,
                 greedy=False):
        """Generates continuations by sampling (or greedily), compiled.

        Args:
            prompts: a list of strings (needs the model's tokenizer) or of id
                lists. Each is prefixed with `<s>`; an empty prompt generates
                from scratch.
            max_length: the most tokens after `<s>`, prompt included.
            temperature: divides the logits before sampling.
            top_k: sample among the `top_k` most likely tokens only.
            seed: int for reproducible sampling.
            greedy: take the most likely token instead of sampling.

        Returns:
            A list of strings when a tokenizer is attached, else a list of id
            lists; each holds the prompt and its continuation, up to (not
            including) `</s>`.
        """
        check_positive_int("max_length", max_length)
        if isinstance(prompts, str):
            raise TypeError("Expected a list of prompts. Received: a single string")
        as_text = self.tokenizer is not None and all(isinstance(p, str) for p in prompts)
        if as_text:
            encoded = [self.tokenizer.encode(p) for p in prompts]
        elif all(not isinstance(p, str) for p in prompts):
            encoded = [list(map(int, p)) for p in prompts]
        else:
            raise ValueError(
                "Text prompts need a model with a tokenizer; pass id lists instead."
            )
        if not encoded:
            return []
        longest = max(len(p) for p in encoded)
        if longest >= max_length:
            raise ArgumentError(
                f"Expected prompts shorter than max_length={max_length}. "
                f"Received: a prompt of {longest} tokens"
            )
        prompt = np.zeros((len(encoded), longest + 1), "int32")
        for row, ids in enumerate(encoded):
            prompt[row, : len(ids) + 1] = [BOS_ID, *ids]
        uniforms = keras.random.uniform((max_length, len(encoded)), seed=seed)
        if self._generate_fn is None:
            self._generate_fn = CompiledFunction(self._generate, lambda: self.variables)
        ids = ops.convert_to_numpy(self._generate_fn(
            prompt, uniforms, max_length=max_length, temperature=float(temperature),
            top_k=top_k, greedy=bool(greedy),
        ))
        outputs = []
        for row in ids:
            row = row.tolist()
            row = row[: row.index(EOS_ID)] if EOS_ID in row else row
            outputs.append(row)
        if as_text:
            return [self.tokenizer.decode(row) for row in outputs]
        return outputs
