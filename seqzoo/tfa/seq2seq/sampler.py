"""`tfa.seq2seq` samplers on Keras 3: they pick each step's sample and next inputs.

A sampler is given to a `BasicDecoder`; `initialize` gets the call's
arguments (training inputs, or an embedding and start tokens), `sample` and
`next_inputs` run inside the decoding loop. TFA's classes, signatures and
defaults are kept; the random samplers draw with `keras.random` from a
`keras.random.SeedGenerator(seed)`. On JAX, where the loop is traced once,
each step's key is the call's key (drawn at `initialize`) mixed with the step
number.

Longer than 400 lines: TFA's `sampler` module, kept whole so that migrating
code finds its seven samplers and two sampling functions where TFA had them
(`sampler.TrainingSampler`, `sampler.categorical_sample`, ...).
"""

import abc
import math

import keras
import numpy as np
from keras import ops

from seqzoo.decoding.search import filter_logits
from seqzoo.layers.masking import sequence_mask
from seqzoo.tfa.seq2seq._common import (
    as_list_shape,
    static_or_dynamic,
    transpose_batch_time,
)

_register = keras.saving.register_keras_serializable(package="seqzoo.tfa")


class Sampler(metaclass=abc.ABCMeta):
    """The interface of the samplers: from a step's outputs, the sample ids and
    the next inputs.

    `initialize(inputs, **kwargs)` gives `(finished, first_inputs)`;
    `sample(time, outputs, state)` gives `sample_ids`;
    `next_inputs(time, outputs, state, sample_ids)` gives `(finished,
    next_inputs, next_state)`.
    """

    @abc.abstractmethod
    def initialize(self, inputs, **kwargs):
        """Returns `(initial_finished, initial_inputs)`."""

    @abc.abstractmethod
    def sample(self, time, outputs, state):
        """Returns `sample_ids`."""

    @abc.abstractmethod
    def next_inputs(self, time, outputs, state, sample_ids):
        """Returns `(finished, next_inputs, next_state)`."""

    @property
    @abc.abstractmethod
    def batch_size(self):
        """The batch size (known after `initialize`)."""

    @property
    @abc.abstractmethod
    def sample_ids_shape(self):
        """The shape of one sample (without the batch dimension), a tuple."""

    @property
    @abc.abstractmethod
    def sample_ids_dtype(self):
        """The dtype of the samples."""

    @property
    def seed_generators(self):
        """The `keras.random.SeedGenerator`s the sampler draws from."""
        return []

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _BatchSampler(Sampler):
    """The batch size, known once `initialize` ran; scalar int32 ids unless overridden."""

    _batch_size = None

    @property
    def batch_size(self):
        if self._batch_size is None:
            raise ValueError("batch_size accessed before initialize was called")
        return self._batch_size

    @property
    def sample_ids_shape(self):
        return ()

    @property
    def sample_ids_dtype(self):
        return "int32"


def _lookup(embedding):
    """`ids -> embedding[ids]` for a matrix; a callable (a layer) is used as it is."""
    if callable(embedding):
        return embedding
    embedding = ops.convert_to_tensor(embedding)
    return lambda ids: ops.take(embedding, ids, axis=0)


def _serialize_fn(fn, name):
    """A Keras object (an `Embedding` layer) serialized; plain functions cannot be."""
    if fn is None or isinstance(fn, keras.layers.Layer):
        return keras.saving.serialize_keras_object(fn)
    raise NotImplementedError(
        f"{name}={fn!r} cannot be serialized; use a Keras layer (e.g. keras.layers.Embedding) "
        "or pass the embedding matrix to the call instead.")


class _StepRandom:
    """Random draws of a sampler at step `time`, from a `SeedGenerator`."""

    def __init__(self, seed):
        self.generator = keras.random.SeedGenerator(seed)
        self._key = None

    def start(self):
        # JAX traces the loop once: a generator's state cannot advance inside it.
        self._key = self.generator.next() if keras.backend.backend() == "jax" else None

    def seed(self, time):
        if self._key is None:
            return self.generator
        mix = ops.cast(ops.convert_to_tensor(time) + 1, "uint32") * np.uint32(0x9E3779B1)
        return self._key + ops.stack([mix, ops.zeros_like(mix)])

    def bernoulli(self, probability, batch_size, time, dtype):
        # One draw per entry (with a `[batch]` probability too, where TFA's shapes break).
        uniform = keras.random.uniform((batch_size,), seed=self.seed(time))
        return ops.cast(uniform < ops.cast(probability, uniform.dtype), dtype)

    def categorical(self, logits, time):
        return categorical_sample(logits, seed=self.seed(time))


def bernoulli_sample(probs=None, logits=None, dtype="int32", sample_shape=(), seed=None):
    """Bernoulli draws of shape `sample_shape + probs.shape` (`probs = sigmoid(logits)`
    when only `logits` is given), as TFA's."""
    probs = ops.sigmoid(logits) if probs is None else ops.convert_to_tensor(probs)
    shape = tuple(as_list_shape(sample_shape)) + tuple(ops.shape(probs))
    return ops.cast(keras.random.uniform(shape, dtype=probs.dtype, seed=seed) < probs, dtype)


def categorical_sample(logits, dtype="int32", sample_shape=(), seed=None):
    """Categorical draws from `logits` `[..., classes]`, of shape `sample_shape +
    logits.shape[:-1]`, as TFA's."""
    logits = ops.convert_to_tensor(logits)
    sample_shape = tuple(as_list_shape(sample_shape))
    batch_shape = tuple(ops.shape(logits))[:-1]
    flat = ops.reshape(logits, (-1, logits.shape[-1]))
    draws = keras.random.categorical(flat, math.prod(sample_shape), dtype="int32", seed=seed)
    return ops.cast(ops.reshape(ops.transpose(draws), sample_shape + batch_shape), dtype)


def _probability(value):
    if isinstance(value, keras.Variable):
        probability = value
    else:
        probability = ops.convert_to_tensor(value, dtype="float32")
    if len(probability.shape) not in (0, 1):
        raise ValueError("sampling_probability must be either a scalar or a vector. "
                         f"saw shape: {tuple(probability.shape)}")
    return probability


def _probability_config(value):
    value = ops.convert_to_numpy(value.value if isinstance(value, keras.Variable) else value)
    return value.tolist()


@_register
class TrainingSampler(_BatchSampler):
    """Reads the given inputs (teacher forcing); `sample_ids` are the argmax ids.

    Args:
        time_major: whether the inputs are `[time, batch, ...]`.

    `initialize(inputs, sequence_length=None, mask=None)`: `inputs`
    `[batch, time, ...]` (a nest of them), and either `[batch]` lengths or a
    right-padded `[batch, time]` bool mask.
    """

    def __init__(self, time_major=False):
        self.time_major = time_major

    def initialize(self, inputs, sequence_length=None, mask=None):
        self.inputs = keras.tree.map_structure(ops.convert_to_tensor, inputs)
        steps = self.inputs if self.time_major else keras.tree.map_structure(
            transpose_batch_time, self.inputs)
        self._steps = steps
        first = keras.tree.flatten(steps)[0]
        self._batch_size = static_or_dynamic(first, 1)
        if sequence_length is not None and mask is not None:
            raise ValueError("sequence_length and mask can't be provided at the same time.")
        if sequence_length is not None:
            sequence_length = ops.convert_to_tensor(sequence_length)
            if len(sequence_length.shape) != 1:
                raise ValueError("Expected sequence_length to be vector, but received shape: "
                                 f"{tuple(sequence_length.shape)}")
            self.sequence_length = ops.cast(sequence_length, "int32")
        elif mask is not None:
            self.sequence_length = _lengths_of_mask(mask, self.time_major)
        else:
            self.sequence_length = ops.full((self._batch_size,), static_or_dynamic(first, 0),
                                            dtype="int32")
        self.zero_inputs = keras.tree.map_structure(lambda x: ops.zeros_like(x[0]), steps)
        finished = ops.equal(self.sequence_length, 0)
        return finished, self._read(steps, 0, ops.all(finished))

    def _read(self, steps, time, all_finished):
        """The inputs of step `time`, zeros once every entry is finished (as TFA's)."""
        def read(x):
            last = static_or_dynamic(x, 0) - 1
            value = ops.take(x, ops.minimum(ops.convert_to_tensor(time, "int32"), last), axis=0)
            return ops.where(all_finished, ops.zeros_like(value), value)
        return keras.tree.map_structure(read, steps)

    def sample(self, time, outputs, state):
        return ops.cast(ops.argmax(outputs, axis=-1), "int32")

    def next_inputs(self, time, outputs, state, sample_ids):
        next_time = time + 1
        finished = next_time >= self.sequence_length
        return finished, self._read(self._steps, next_time, ops.all(finished)), state

    def get_config(self):
        return {"time_major": self.time_major}


def _lengths_of_mask(mask, time_major):
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) != 2:
        raise ValueError(f"Expected mask to a 2D tensor, but received shape: {mask.shape}")
    if keras.backend.standardize_dtype(mask.dtype) != "bool":
        raise ValueError(f"Expected mask to be a boolean tensor, but received dtype: "
                         f"{keras.backend.standardize_dtype(mask.dtype)!r}")
    if time_major:
        mask = ops.transpose(mask)
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    try:
        right_padded = bool(ops.convert_to_numpy(ops.all(
            ops.equal(mask, sequence_mask(lengths, static_or_dynamic(mask, 1))))))
    except Exception:  # traced: the values are not known here
        right_padded = True
    if not right_padded:
        raise ValueError("The input sequence should be right padded.")
    return lengths


@_register
class ScheduledEmbeddingTrainingSampler(TrainingSampler):
    """Scheduled sampling (Bengio et al. 2015) of embedded ids.

    With probability `sampling_probability` an entry's next input is the
    embedding of an id sampled from the step's logits instead of the given
    input; `sample_ids` are those ids, `-1` where the given input is kept.

    Args:
        sampling_probability: a float scalar or `[batch]` vector (may be a
            `keras.Variable`, to follow a schedule such as
            `seqzoo.layers.scheduled_sampling.sampling_probability`).
        embedding_fn: `ids -> embeddings`; else `initialize(...,
            embedding=matrix)` gives it.
        time_major: whether the inputs are `[time, batch, ...]`.
        seed: the seed of the id sampling.
        scheduling_seed: the seed of the choice to sample.
    """

    def __init__(self, sampling_probability, embedding_fn=None, time_major=False, seed=None,
                 scheduling_seed=None):
        self.embedding_fn = embedding_fn
        self.sampling_probability = _probability(sampling_probability)
        self.seed = seed
        self.scheduling_seed = scheduling_seed
        self._ids = _StepRandom(seed)
        self._choice = _StepRandom(scheduling_seed)
        super().__init__(time_major=time_major)

    @property
    def seed_generators(self):
        return [self._ids.generator, self._choice.generator]

    def initialize(self, inputs, sequence_length=None, mask=None, embedding=None):
        if self.embedding_fn is None and embedding is None:
            raise ValueError("embedding is required as a keyword argument for "
                             "ScheduledEmbeddingTrainingSampler")
        self._embed = self.embedding_fn or _lookup(embedding)
        self._ids.start()
        self._choice.start()
        return super().initialize(inputs, sequence_length=sequence_length, mask=mask)

    def sample(self, time, outputs, state):
        select = self._choice.bernoulli(self.sampling_probability, self.batch_size, time, "bool")
        ids = self._ids.categorical(outputs, time)
        return ops.where(select, ids, ops.full_like(ids, -1))

    def next_inputs(self, time, outputs, state, sample_ids):
        finished, base, state = super().next_inputs(time, outputs, state, sample_ids)
        sampled = ops.cast(self._embed(ops.maximum(sample_ids, 0)), base.dtype)
        use = ops.logical_and(sample_ids > -1, ops.logical_not(ops.all(finished)))
        use = ops.reshape(use, (-1,) + (1,) * (len(base.shape) - 1))
        return finished, ops.where(use, sampled, base), state

    def get_config(self):
        return {"sampling_probability": _probability_config(self.sampling_probability),
                "embedding_fn": _serialize_fn(self.embedding_fn, "embedding_fn"),
                "time_major": self.time_major, "seed": self.seed,
                "scheduling_seed": self.scheduling_seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embedding_fn"] = keras.saving.deserialize_keras_object(config["embedding_fn"])
        return cls(**config)


@_register
class ScheduledOutputTrainingSampler(TrainingSampler):
    """Scheduled sampling of outputs: with probability `sampling_probability`
    an entry's next input is the step's output (through `next_inputs_fn`,
    then joined with the step's `auxiliary_inputs` if given) instead of the
    given input. `sample_ids` are the int32 draws (1: the output is fed).

    Args:
        sampling_probability: a float scalar or `[batch]` vector.
        time_major: whether the inputs are `[time, batch, ...]`.
        seed: the seed of the draws.
        next_inputs_fn: optional `outputs -> next inputs`.

    `initialize(inputs, sequence_length=None, mask=None,
    auxiliary_inputs=None)`: `auxiliary_inputs` `[batch, time, depth]` are
    concatenated to the inputs and to the fed outputs.
    """

    def __init__(self, sampling_probability, time_major=False, seed=None, next_inputs_fn=None):
        self.sampling_probability = _probability(sampling_probability)
        self.seed = seed
        self.next_inputs_fn = next_inputs_fn
        self._draws = _StepRandom(seed)
        super().__init__(time_major=time_major)

    @property
    def seed_generators(self):
        return [self._draws.generator]

    def initialize(self, inputs, sequence_length=None, mask=None, auxiliary_inputs=None):
        self._auxiliary = None
        if auxiliary_inputs is not None:
            auxiliary_inputs = ops.convert_to_tensor(auxiliary_inputs)
            inputs = ops.concatenate([ops.convert_to_tensor(inputs), auxiliary_inputs], -1)
            self._auxiliary = (auxiliary_inputs if self.time_major
                               else transpose_batch_time(auxiliary_inputs))
        self._draws.start()
        return super().initialize(inputs, sequence_length=sequence_length, mask=mask)

    def sample(self, time, outputs, state):
        return self._draws.bernoulli(self.sampling_probability, self.batch_size, time, "int32")

    def next_inputs(self, time, outputs, state, sample_ids):
        finished, base, state = super().next_inputs(time, outputs, state, sample_ids)
        all_finished = ops.all(finished)
        fed = outputs if self.next_inputs_fn is None else self.next_inputs_fn(outputs)
        if self._auxiliary is not None:
            fed = ops.concatenate([fed, self._read(self._auxiliary, time + 1, all_finished)], -1)
        use = ops.logical_and(ops.cast(sample_ids, "bool"), ops.logical_not(all_finished))
        use = ops.reshape(use, (-1,) + (1,) * (len(base.shape) - 1))
        return finished, ops.where(use, ops.cast(fed, base.dtype), base), state

    def get_config(self):
        if self.next_inputs_fn is not None:
            raise NotImplementedError(
                "A ScheduledOutputTrainingSampler with a next_inputs_fn cannot be serialized.")
        return {"sampling_probability": _probability_config(self.sampling_probability),
                "time_major": self.time_major, "seed": self.seed}


@_register
class GreedyEmbeddingSampler(_BatchSampler):
    """Greedy decoding: the argmax id of each step's logits, embedded, is the next input.

    Args:
        embedding_fn: `ids -> embeddings` (an `Embedding` layer, say); else
            `initialize(embedding_matrix, ...)` gives the lookup.

    `initialize(embedding, start_tokens=None, end_token=None)`:
    `start_tokens` `[batch]` int32, `end_token` an int32 scalar.
    """

    def __init__(self, embedding_fn=None):
        self.embedding_fn = embedding_fn

    def initialize(self, embedding, start_tokens=None, end_token=None):
        self._embed = self.embedding_fn or _lookup(embedding)
        self.start_tokens = ops.cast(ops.convert_to_tensor(start_tokens), "int32")
        self.end_token = ops.cast(ops.convert_to_tensor(end_token), "int32")
        if len(self.start_tokens.shape) != 1:
            raise ValueError("start_tokens must be a vector")
        if len(self.end_token.shape) != 0:
            raise ValueError("end_token must be a scalar")
        self._batch_size = static_or_dynamic(self.start_tokens, 0)
        self.start_inputs = self._embed(self.start_tokens)
        return ops.zeros_like(self.start_tokens, dtype="bool"), self.start_inputs

    def _logits(self, outputs):
        if keras.tree.is_nested(outputs):
            raise TypeError(f"Expected outputs to be a single Tensor, got: {type(outputs)}")
        return outputs

    def sample(self, time, outputs, state):
        return ops.cast(ops.argmax(self._logits(outputs), axis=-1), "int32")

    def next_inputs(self, time, outputs, state, sample_ids):
        finished = ops.equal(sample_ids, self.end_token)
        embedded = self._embed(sample_ids)
        # Once every entry is finished the next inputs do not matter: TFA gives the start inputs.
        return finished, ops.where(ops.all(finished), self.start_inputs, embedded), state

    def get_config(self):
        return {"embedding_fn": _serialize_fn(self.embedding_fn, "embedding_fn")}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embedding_fn"] = keras.saving.deserialize_keras_object(config["embedding_fn"])
        return cls(**config)


@_register
class SampleEmbeddingSampler(GreedyEmbeddingSampler):
    """Sampling decoding: each id is drawn from the softmax of the logits
    divided by `softmax_temperature`, then embedded as the next input.

    Args:
        embedding_fn: as `GreedyEmbeddingSampler`'s.
        softmax_temperature: optional float `> 0`; below 1 sharpens.
        seed: the seed of the draws.
    """

    def __init__(self, embedding_fn=None, softmax_temperature=None, seed=None):
        super().__init__(embedding_fn)
        self.softmax_temperature = softmax_temperature
        self.seed = seed
        self._draws = _StepRandom(seed)

    @property
    def seed_generators(self):
        return [self._draws.generator]

    def initialize(self, embedding, start_tokens=None, end_token=None):
        self._draws.start()
        return super().initialize(embedding, start_tokens=start_tokens, end_token=end_token)

    def sample(self, time, outputs, state):
        logits = self._logits(outputs)
        if self.softmax_temperature is not None:
            logits = filter_logits(logits, temperature=self.softmax_temperature)
        return self._draws.categorical(logits, time)

    def get_config(self):
        config = super().get_config()
        temperature = self.softmax_temperature
        config.update({"softmax_temperature": None if temperature is None
                       else float(ops.convert_to_numpy(temperature)), "seed": self.seed})
        return config


def _not_serializable(sampler):
    raise NotImplementedError(
        f"A {type(sampler).__name__} holds Python functions and cannot be serialized; build it "
        "in code (or write a registered Sampler subclass with a get_config).")


class InferenceSampler(_BatchSampler):
    """Inference with a custom sampling function.

    Args:
        sample_fn: `outputs -> sample_ids`.
        sample_shape: the shape of one sample (a list of ints).
        sample_dtype: the dtype of the samples.
        end_fn: `sample_ids -> [batch]` bool, the entries that end.
        next_inputs_fn: optional `sample_ids -> next inputs`; without it the
            samples are the next inputs.

    `initialize(start_inputs)`: the first inputs, `[batch, ...]`.
    """

    def __init__(self, sample_fn, sample_shape, sample_dtype, end_fn, next_inputs_fn=None):
        self.sample_fn = sample_fn
        self.sample_shape = tuple(as_list_shape(sample_shape))
        self.sample_dtype = keras.backend.standardize_dtype(sample_dtype)
        self.end_fn = end_fn
        self.next_inputs_fn = next_inputs_fn

    @property
    def sample_ids_shape(self):
        return self.sample_shape

    @property
    def sample_ids_dtype(self):
        return self.sample_dtype

    def initialize(self, start_inputs):
        self.start_inputs = ops.convert_to_tensor(start_inputs)
        self._batch_size = static_or_dynamic(self.start_inputs, 0)
        return ops.zeros((self._batch_size,), "bool"), self.start_inputs

    def sample(self, time, outputs, state):
        return self.sample_fn(outputs)

    def next_inputs(self, time, outputs, state, sample_ids):
        next_inputs = sample_ids if self.next_inputs_fn is None else self.next_inputs_fn(
            sample_ids)
        return self.end_fn(sample_ids), next_inputs, state

    def get_config(self):
        _not_serializable(self)


class CustomSampler(_BatchSampler):
    """A sampler made of functions.

    Args:
        initialize_fn: `(inputs, **kwargs) -> (finished, first_inputs)`.
        sample_fn: `(time, outputs, state) -> sample_ids` (called with keywords).
        next_inputs_fn: `(time, outputs, state, sample_ids) -> (finished,
            next_inputs, next_state)` (called with keywords).
        sample_ids_shape: the shape of one sample; defaults to a scalar.
        sample_ids_dtype: defaults to int32.
    """

    def __init__(self, initialize_fn, sample_fn, next_inputs_fn, sample_ids_shape=None,
                 sample_ids_dtype=None):
        self._initialize_fn = initialize_fn
        self._sample_fn = sample_fn
        self._next_inputs_fn = next_inputs_fn
        self._sample_ids_shape = tuple(as_list_shape(sample_ids_shape))
        self._sample_ids_dtype = keras.backend.standardize_dtype(sample_ids_dtype or "int32")

    @property
    def sample_ids_shape(self):
        return self._sample_ids_shape

    @property
    def sample_ids_dtype(self):
        return self._sample_ids_dtype

    def initialize(self, inputs, **kwargs):
        finished, next_inputs = self._initialize_fn(inputs, **kwargs)
        if self._batch_size is None:
            finished = ops.convert_to_tensor(finished)
            known = None not in finished.shape
            self._batch_size = math.prod(finished.shape) if known else ops.size(finished)
        return finished, next_inputs

    def sample(self, time, outputs, state):
        return self._sample_fn(time=time, outputs=outputs, state=state)

    def next_inputs(self, time, outputs, state, sample_ids):
        return self._next_inputs_fn(time=time, outputs=outputs, state=state,
                                    sample_ids=sample_ids)

    def get_config(self):
        _not_serializable(self)
