"""`BasicDecoder` with every sampler against tensorflow-addons 0.23's outputs, and saving.

Each case of fixtures/basic_decoder.json is rebuilt as tests/tfa/make_fixtures.py
built it (same cell, sampler and call), given TFA's weights, and compared
within 1e-5. Off TensorFlow a decoder needs `maximum_iterations`: the cases
without one get 4, the fixtures' number of input steps, which every one of
them stops within.
"""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.tfa.seq2seq._common import on_tensorflow
from seqzoo.tfa.seq2seq.attention_mechanism import BahdanauAttention, LuongAttention
from seqzoo.tfa.seq2seq.attention_wrapper import AttentionWrapper
from seqzoo.tfa.seq2seq.basic_decoder import BasicDecoder, BasicDecoderOutput
from seqzoo.tfa.seq2seq.sampler import (
    CustomSampler,
    GreedyEmbeddingSampler,
    InferenceSampler,
    SampleEmbeddingSampler,
    ScheduledEmbeddingTrainingSampler,
    ScheduledOutputTrainingSampler,
    TrainingSampler,
)
from tests.tfa._fixtures import (
    assert_close,
    assert_equal,
    assign_weights,
    case,
    case_names,
    resolve,
)

DETERMINISTIC = case_names("basic_decoder", prefix="bd_")
SAMPLING = [n for n in DETERMINISTIC if n.startswith("bd_sample_embedding")]
DETERMINISTIC = [n for n in DETERMINISTIC if n not in SAMPLING]
MECHANISMS = {"LuongAttention": LuongAttention, "BahdanauAttention": BahdanauAttention}


def make_sampler(spec, embedding, end_token):
    name = spec["class"]
    if name == "TrainingSampler":
        return TrainingSampler(time_major=spec["time_major"])
    if name == "GreedyEmbeddingSampler":
        return GreedyEmbeddingSampler()
    if name == "SampleEmbeddingSampler":
        return SampleEmbeddingSampler(softmax_temperature=spec["softmax_temperature"],
                                      seed=spec["seed"])
    if name == "ScheduledEmbeddingTrainingSampler":
        return ScheduledEmbeddingTrainingSampler(spec["sampling_probability"], seed=spec["seed"],
                                                 scheduling_seed=spec["scheduling_seed"])
    if name == "ScheduledOutputTrainingSampler":
        return ScheduledOutputTrainingSampler(
            spec["sampling_probability"], seed=spec["seed"],
            next_inputs_fn=ops.softmax if spec["next_inputs_fn"] else None)
    if name == "InferenceSampler" and spec["next_inputs_fn"] is None:
        return InferenceSampler(
            sample_fn=lambda logits: ops.softmax(logits, axis=-1), sample_shape=spec[
                "sample_shape"], sample_dtype="float32",
            end_fn=lambda probs: ops.equal(ops.argmax(probs, -1), end_token))
    if name == "InferenceSampler":
        return InferenceSampler(
            sample_fn=lambda logits: ops.cast(ops.argmax(logits, -1), "int32"),
            sample_shape=[], sample_dtype="int32",
            end_fn=lambda ids: ops.equal(ids, end_token),
            next_inputs_fn=lambda ids: ops.take(embedding, ids, axis=0))
    assert name == "CustomSampler", name
    batch = 3

    def initialize_fn(inputs):
        return ops.zeros((batch,), "bool"), inputs

    def sample_fn(time, outputs, state):
        return ops.cast(ops.argmax(outputs, -1), "int32")

    def next_inputs_fn(time, outputs, state, sample_ids):
        finished = ops.logical_or(ops.equal(sample_ids, end_token), time + 1 >= 4)
        next_inputs = ops.take(embedding, sample_ids, axis=0) + 0.1 * ops.cast(time, "float32")
        return finished, next_inputs, state

    return CustomSampler(initialize_fn, sample_fn, next_inputs_fn)


class CaseDecoder:
    """A fixture case's decoder with TFA's weights; `run(**changes)` decodes."""

    def __init__(self, c, tf_function=False, **decoder_kwargs):
        self.c, cfg, inputs = c, c.config, c.inputs
        self.embedding = np.asarray(c.weights["embedding"]) if "embedding" in c.weights else None
        end_token = int(inputs["end_token"]) if "end_token" in inputs else None
        lstm = keras.layers.LSTMCell(cfg["cell"].get("units", 5))
        roots = {"cell": lstm}
        self.mechanism = None
        if cfg["cell"]["class"] == "AttentionWrapper":
            spec = cfg["cell"]["attention_mechanism"]
            self.memory = (inputs["memory"], inputs["memory_sequence_length"])
            self.mechanism = MECHANISMS[spec["class"]](spec["units"], *self.memory)
            self.cell = roots["wrapper"] = AttentionWrapper(
                lstm, self.mechanism, attention_layer_size=cfg["cell"]["attention_layer_size"])
            roots["mechanism"] = self.mechanism
        else:
            self.cell = lstm
        kwargs = dict(cfg["decoder_kwargs"], **decoder_kwargs)
        if not on_tensorflow():
            kwargs.setdefault("maximum_iterations", 4)
        roots["output_layer"] = keras.layers.Dense(cfg["output_layer"]["units"])
        self.decoder = BasicDecoder(self.cell, make_sampler(cfg["sampler"], self.embedding,
                                                            end_token),
                                    output_layer=roots["output_layer"], **kwargs)
        self.tf_function = tf_function
        # One eager step creates the weights (cheaper than a compiled decode).
        first_arg, kwargs = self.call_args()
        finished, inputs, state = self.decoder.initialize(
            first_arg, initial_state=self.initial_state(), **kwargs)
        self.decoder.step(ops.convert_to_tensor(0, "int32"), inputs, state)
        assign_weights(c, **roots)
        self.roots = roots
        if self.mechanism is not None:
            self.mechanism.setup_memory(*self.memory)

    def initial_state(self, repeat=1):
        h0, c0 = (np.repeat(x, repeat, 0) for x in self.c.inputs["initial_cell_state"])
        if self.mechanism is None:
            return [h0, c0]
        state = self.cell.get_initial_state(batch_size=h0.shape[0], dtype="float32")
        return state.clone(cell_state=[h0, c0])

    def call_args(self):
        cfg, inputs = self.c.config, self.c.inputs
        first = {"inputs.inputs": "inputs", "inputs.start_inputs": "start_inputs"}
        key = cfg["first_arg"].split(" ")[0].rstrip(",")
        first_arg = self.embedding if key == "weights.embedding" else inputs[first[key]]
        kwargs = {}
        for name, source in cfg["call_kwargs"].items():
            if source == "weights.embedding":
                kwargs[name] = self.embedding
            elif isinstance(source, str):
                kwargs[name] = inputs[source.split(" ")[0].split(".")[1].rstrip(";")]
            else:
                kwargs[name] = source
        return first_arg, kwargs

    def run(self, first_arg=None, initial_state=None, **kwargs):
        default_first, default_kwargs = self.call_args()
        first_arg = default_first if first_arg is None else first_arg
        kwargs = dict(default_kwargs, **kwargs)
        state = self.initial_state() if initial_state is None else initial_state
        if not self.tf_function:
            return self.decoder(first_arg, initial_state=state, **kwargs)
        import tensorflow as tf

        return tf.function(lambda: self.decoder(first_arg, initial_state=state, **kwargs))()


def check_outputs(c, result):
    outputs, state, lengths = result
    expected = c.outputs
    assert isinstance(outputs, BasicDecoderOutput)
    # ScheduledEmbeddingTrainingSampler at probability 1: the recorded output layer is
    # scaled by 200 (so that the categorical sample is certain), its logits are in the
    # hundreds and float32 rounding there exceeds 1e-5: compared relatively.
    rtol = 1e-5 if c.name == "bd_scheduled_embedding_p1" else 0.0
    atol = 1e-4 if rtol else 1e-5
    assert_close(outputs.rnn_output, expected["rnn_output"], "rnn_output", atol=atol, rtol=rtol)
    if expected["sample_id"].dtype.kind == "f":
        assert_close(outputs.sample_id, expected["sample_id"], "sample_id")
    else:
        assert_equal(outputs.sample_id, expected["sample_id"], "sample_id")
    assert_equal(lengths, expected["final_sequence_lengths"], "final_sequence_lengths")
    cell_state = state.cell_state if hasattr(state, "cell_state") else state
    assert_close(ops.stack(keras.tree.flatten(cell_state)), expected["final_cell_state"],
                 "final_cell_state", atol=atol, rtol=rtol)
    if "final_attention" in expected:
        assert_close(state.attention, expected["final_attention"], "final_attention")
        assert_close(state.alignments, expected["final_alignments"], "final_alignments")


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_basic_decoder_matches_tfa(name):
    c = case("basic_decoder", name)
    decoder = CaseDecoder(c)
    check_outputs(c, decoder.run())
    # The decoder's weights in TFA's order (code that copies them as a list relies on it).
    by_id = {id(resolve(decoder.roots, path)): path for path in c.weights_order}
    assert [by_id.get(id(w), w.path) for w in decoder.decoder.weights] == c.weights_order


@pytest.mark.skipif(not on_tensorflow(), reason="tf.function")
@pytest.mark.parametrize("name", ["bd_training_luong", "bd_greedy_embedding_bahdanau",
                                  "bd_scheduled_output_p1_auxiliary"])
def test_basic_decoder_in_tf_function_matches_tfa(name):
    c = case("basic_decoder", name)
    check_outputs(c, CaseDecoder(c, tf_function=True).run())


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", SAMPLING)
def test_sample_embedding_first_step_distribution(name):
    """The first step's logits are deterministic; its ids follow their softmax: over
    2000 copies of each row the frequencies are within 0.05 of TFA's probabilities."""
    c = case("basic_decoder", name)
    decoder = CaseDecoder(c)
    outputs, _, _ = decoder.run()
    assert_close(outputs.rnn_output[:, 0], c.outputs["first_step_logits"], "first_step_logits")
    n = 2000
    one_step = BasicDecoder(decoder.cell, SampleEmbeddingSampler(
        softmax_temperature=c.config["sampler"]["softmax_temperature"], seed=3),
        output_layer=decoder.decoder.output_layer, maximum_iterations=1)
    starts = np.repeat(c.inputs["start_tokens"], n)
    outputs, _, _ = one_step(decoder.embedding, initial_state=decoder.initial_state(n),
                             start_tokens=starts, end_token=-1)
    ids = ops.convert_to_numpy(outputs.sample_id)[:, 0].reshape(3, n)
    freq = np.stack([np.bincount(row, minlength=7) / n for row in ids])
    np.testing.assert_allclose(freq, c.outputs["first_step_probs"], atol=0.05)


@pytest.mark.backend_neutral
def test_training_decodes_the_same():
    """With training=True, off TensorFlow the loop runs maximum_iterations steps (JAX can
    differentiate it), the steps after the end changing nothing."""
    c = case("basic_decoder", "bd_greedy_embedding_bahdanau")
    decoder = CaseDecoder(c)
    check_outputs(c, decoder.run(training=True))


@pytest.mark.backend_neutral
def test_sizes_dtypes_and_errors():
    c = case("basic_decoder", "bd_greedy_embedding_lstm")
    decoder = CaseDecoder(c).decoder
    assert decoder.output_size == BasicDecoderOutput((7,), ())
    assert decoder.output_dtype == BasicDecoderOutput("float32", "int32")
    assert decoder.batch_size == 3
    with pytest.raises(TypeError, match="Sampler"):
        BasicDecoder(keras.layers.LSTMCell(2), sampler=object())
    with pytest.raises(TypeError, match="not an RNN cell"):
        BasicDecoder(keras.layers.Dense(2), GreedyEmbeddingSampler())
    with pytest.raises(ValueError, match="batch_size accessed before initialize"):
        TrainingSampler().batch_size
    with pytest.raises(ValueError, match="start_tokens must be a vector"):
        GreedyEmbeddingSampler().initialize(np.zeros((7, 3)), [[1]], 2)
    with pytest.raises(ValueError, match="end_token must be a scalar"):
        GreedyEmbeddingSampler().initialize(np.zeros((7, 3)), [1], [2])
    with pytest.raises(ValueError, match="scalar or a vector"):
        ScheduledOutputTrainingSampler(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="embedding is required"):
        ScheduledEmbeddingTrainingSampler(0.5).initialize(np.zeros((3, 4, 2)))
    sampler = TrainingSampler()
    with pytest.raises(ValueError, match="can't be provided at the same time"):
        sampler.initialize(np.zeros((3, 4, 2)), sequence_length=[1, 2, 3],
                           mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="right padded"):
        sampler.initialize(np.zeros((2, 3, 2)), mask=np.array([[1, 0, 1], [1, 1, 0]], bool))
    finished, first = sampler.initialize(np.ones((2, 3, 2)),
                                         mask=np.array([[1, 1, 0], [0, 0, 0]], bool))
    assert ops.convert_to_numpy(finished).tolist() == [False, True]
    assert ops.convert_to_numpy(sampler.sequence_length).tolist() == [2, 0]


class Seq2SeqScorer(keras.Model):
    """Teacher-forced decoding of embedded targets with a BasicDecoder (inside jax.jit the
    outputs have maximum_iterations steps: the targets' length here)."""

    def __init__(self, vocab=7, units=5, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(vocab, 3)
        self.decoder = BasicDecoder(keras.layers.LSTMCell(units), TrainingSampler(),
                                    output_layer=keras.layers.Dense(vocab),
                                    maximum_iterations=4)
        self.units = units

    def call(self, ids, training=None):
        inputs = self.embedding(ids)
        state = [ops.zeros((ops.shape(ids)[0], self.units))] * 2
        outputs, _, _ = self.decoder(inputs, initial_state=state, training=training)
        return outputs.rnn_output

    def get_config(self):
        return dict(super().get_config(), units=self.units)


keras.saving.register_keras_serializable(package="seqzoo.tests")(Seq2SeqScorer)


@pytest.mark.backend_neutral
def test_model_with_basic_decoder_saves_and_loads(tmp_path):
    """After one training step (gradients flow through the decoding loop; off TensorFlow
    it is then a fixed number of steps, which JAX can differentiate)."""
    ids = np.array([[1, 2, 3, 4], [4, 3, 2, 1]], "int32")
    model = Seq2SeqScorer()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model(ids)
    kernel = ops.convert_to_numpy(model.decoder.cell.kernel)
    model.train_on_batch(ids, ids)
    assert np.abs(ops.convert_to_numpy(model.decoder.cell.kernel) - kernel).max() > 0
    before = ops.convert_to_numpy(model(ids))
    path = tmp_path / "scorer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(ids)), before, atol=1e-6)
    config = loaded.decoder.get_config()
    assert config["maximum_iterations"] == 4 and config["sampler"]["class_name"] == (
        "TrainingSampler")


@pytest.mark.backend_neutral
def test_sampler_configs():
    embedding = keras.layers.Embedding(7, 3)
    for sampler in (TrainingSampler(time_major=True), GreedyEmbeddingSampler(embedding),
                    SampleEmbeddingSampler(softmax_temperature=0.5, seed=4),
                    ScheduledEmbeddingTrainingSampler(0.25, embedding_fn=embedding, seed=1,
                                                      scheduling_seed=2),
                    ScheduledOutputTrainingSampler([0.1, 0.2], seed=3)):
        copy = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(sampler))
        assert type(copy) is type(sampler)
        assert copy.get_config().keys() == sampler.get_config().keys()
    with pytest.raises(NotImplementedError, match="cannot be serialized"):
        InferenceSampler(ops.argmax, [], "int32", lambda x: x).get_config()
    with pytest.raises(NotImplementedError, match="cannot be serialized"):
        GreedyEmbeddingSampler(lambda ids: ids).get_config()
