"""`BeamSearchDecoder` against tensorflow-addons 0.23: outputs, structure, errors, saving."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.tfa.seq2seq._common import on_tensorflow
from seqzoo.tfa.seq2seq.attention_mechanism import BahdanauAttention, LuongAttention
from seqzoo.tfa.seq2seq.attention_wrapper import AttentionWrapper
from seqzoo.tfa.seq2seq.beam_search_decoder import (
    BeamSearchDecoder,
    BeamSearchDecoderOutput,
    BeamSearchDecoderState,
    FinalBeamSearchDecoderOutput,
    gather_tree_from_array,
    tile_batch,
)
from seqzoo.tfa.seq2seq.beam_search_ops import lengths_dtype
from tests.tfa._fixtures import (
    assert_close,
    assert_equal,
    assign_weights,
    case,
    case_names,
    resolve,
)

NAMES = case_names("beam_search")


def dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


class Built:
    """A fixture case's decoder with TFA's weights, and what it is called with."""

    def __init__(self, c, wrapper_kwargs=None, **decoder_kwargs):
        cfg, i = c.config, c.inputs
        self.case, self.width = c, cfg["beam_width"]
        self.attention = "memory" in i
        self.lstm = keras.layers.LSTMCell(cfg["cell"]["cell"]["units"] if self.attention
                                          else cfg["cell"]["units"])
        width, batch = self.width, len(i["start_tokens"])
        self.initial = [tile_batch(x, width) for x in i["initial_cell_state"]]
        roots = {"cell": self.lstm}
        if self.attention:
            self.memory = (tile_batch(i["memory"], width),
                           tile_batch(i["memory_sequence_length"], width))
            roots["mechanism"] = BahdanauAttention(
                cfg["cell"]["attention_mechanism"]["units"], *self.memory)
            roots["wrapper"] = self.cell = AttentionWrapper(
                self.lstm, roots["mechanism"],
                attention_layer_size=cfg["cell"]["attention_layer_size"], **(wrapper_kwargs or {}))
        else:
            self.cell = self.lstm
        self.output_layer = roots["output_layer"] = keras.layers.Dense(cfg["output_layer"]["units"])
        kwargs = {**cfg["decoder_kwargs"], **decoder_kwargs}
        self.decoder = BeamSearchDecoder(self.cell, width, output_layer=self.output_layer,
                                         **kwargs)
        self.embedding = c.weights["embedding"]
        # One eager cell step builds every weight, without a whole decode.
        cell_output, state = self.cell(
            np.zeros((batch * width, self.embedding.shape[1]), "float32"), self.initial_state())
        for x in keras.tree.flatten(state):
            if hasattr(x, "mark_used"):  # a TensorArray of the alignment history
                x.mark_used()
        self.output_layer.build(tuple(cell_output.shape))
        assign_weights(c, **roots)
        if self.attention:
            roots["mechanism"].setup_memory(*self.memory)  # keys from the new memory_layer
        self.roots = roots

    def initial_state(self):
        if not self.attention:
            return list(self.initial)
        batch = self.initial[0].shape[0]
        return self.cell.get_initial_state(batch_size=batch, dtype="float32").clone(
            cell_state=list(self.initial))

    def __call__(self, embedding="matrix", **kwargs):
        i = self.case.inputs
        return self.decoder(self.embedding if embedding == "matrix" else embedding,
                            start_tokens=i["start_tokens"], end_token=i["end_token"],
                            initial_state=self.initial_state(), **kwargs)


def check_outputs(built, outputs, state, lengths, time_major=False):
    expected = built.case.outputs
    assert isinstance(outputs, FinalBeamSearchDecoderOutput)
    assert isinstance(state, BeamSearchDecoderState)
    steps = outputs.beam_search_decoder_output
    assert isinstance(steps, BeamSearchDecoderOutput)

    def major(x):
        x = np.asarray(x)
        return np.swapaxes(x, 0, 1) if time_major else x

    assert_equal(outputs.predicted_ids, major(expected["predicted_ids"]), "predicted_ids")
    assert_equal(steps.predicted_ids, major(expected["step_predicted_ids"]), "step ids")
    assert_equal(steps.parent_ids, major(expected["parent_ids"]), "parent_ids")
    scores = ops.convert_to_numpy(steps.scores)
    # -inf (empty beams at the first step) and the float32 minimum (finished beams'
    # other tokens) sit exactly where TFA's are; assert_close compares them exactly.
    assert (np.isneginf(scores) == np.isneginf(major(expected["scores"]))).all()
    assert_close(scores, major(expected["scores"]), "scores")
    assert_equal(lengths, expected["final_sequence_lengths"], "final_sequence_lengths")
    assert_close(state.log_probs, expected["log_probs"], "log_probs")
    assert_equal(state.lengths, expected["lengths"], "lengths")
    assert_equal(state.finished, expected["finished"], "finished")
    cell_state = state.cell_state.cell_state if built.attention else state.cell_state
    assert_close(ops.stack(cell_state), expected["final_cell_state"], "final cell state")
    if built.attention:
        assert_close(state.cell_state.attention, expected["final_attention"], "attention")
        assert_close(state.cell_state.alignments, expected["final_alignments"], "alignments")
    if "accumulated_attention_probs" in expected:
        assert_close(state.accumulated_attention_probs, expected["accumulated_attention_probs"],
                     "accumulated_attention_probs")
    else:
        assert state.accumulated_attention_probs == ()
    assert dtype(outputs.predicted_ids) == "int32"
    assert (dtype(steps.predicted_ids), dtype(steps.parent_ids)) == ("int32", "int32")
    assert (dtype(steps.scores), dtype(state.log_probs)) == ("float32", "float32")
    assert (dtype(lengths), dtype(state.finished)) == ("int32", "bool")
    assert dtype(state.lengths) == lengths_dtype()  # int64; int32 on JAX without x64


# Two cases also check other ways to call: time-major outputs, and ids embedded by an
# embedding_fn given to the constructor (the decoder called with embedding=None).
VARIANTS = {"beam_early_end": "time_major", "beam_plain_lstm_early_end": "embedding_fn"}


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", NAMES)
def test_decoder_matches_tfa(name):
    c = case("beam_search", name)
    variant = VARIANTS.get(name)
    kwargs = {"output_time_major": True} if variant == "time_major" else {}
    built = Built(c, **kwargs)
    decoder = built.decoder
    assert decoder.batch_size is None
    if variant == "embedding_fn":
        table = ops.convert_to_tensor(built.embedding)
        decoder = built.decoder = BeamSearchDecoder(
            built.cell, built.width, output_layer=built.output_layer,
            embedding_fn=lambda ids: ops.take(table, ids, axis=0), **c.config["decoder_kwargs"])
        result = built(embedding=None)
    else:
        result = built()
    check_outputs(built, *result, time_major=variant == "time_major")

    vocab = c.config["output_layer"]["units"]
    width = c.config["beam_width"]
    scores = [width, vocab] if c.config["decoder_kwargs"].get("output_all_scores") else [width]
    assert decoder.output_size == BeamSearchDecoderOutput(scores, [width], [width])
    assert decoder.output_dtype == BeamSearchDecoderOutput("float32", "int32", "int32")
    assert decoder.tracks_own_finished is True
    assert (decoder.batch_size, decoder.beam_width, decoder.cell) == (2, width, built.cell)
    by_id = {id(resolve(built.roots, p)): p for p in c.weights_order}
    assert sorted(by_id.get(id(w), w.path) for w in decoder.weights) == sorted(c.weights_order)


@pytest.mark.backend_neutral
def test_bad_arguments_are_tfa_s_errors():
    built = Built(case("beam_search", "beam_plain_lstm"))
    cell = built.cell
    with pytest.raises(TypeError, match="is not an RNNCell"):
        BeamSearchDecoder(keras.layers.Dense(3), 3)
    with pytest.raises(TypeError, match="beam_width"):
        BeamSearchDecoder(cell, 3.0)
    with pytest.raises(ValueError, match="beam_width"):
        BeamSearchDecoder(cell, 0)
    with pytest.raises(ValueError, match="coverage_penalty_weight should be a scalar"):
        BeamSearchDecoder(cell, 3, coverage_penalty_weight=[0.1, 0.2])
    i = built.case.inputs
    decoder = BeamSearchDecoder(cell, 3, output_layer=built.output_layer, maximum_iterations=2)

    def run(embedding=built.embedding, start_tokens=i["start_tokens"], end_token=2,
            initial_state=built.initial, decoder=decoder):
        return decoder(embedding, start_tokens=start_tokens, end_token=end_token,
                       initial_state=list(initial_state))

    with pytest.raises(ValueError, match="either pass an embedding"):
        run(embedding=None)
    with pytest.raises(ValueError, match="start_tokens must be a vector"):
        run(start_tokens=i["start_tokens"][None])
    with pytest.raises(ValueError, match="end_token must be a scalar"):
        run(end_token=[2])
    with pytest.raises(ValueError, match="batch_size=encoder_batch_size \\* beam_width"):
        run(initial_state=i["initial_cell_state"])  # not tiled
    with pytest.raises(ValueError, match="coverage_penalty_weight must be 0.0 if no cell"):
        run(decoder=BeamSearchDecoder(cell, 3, coverage_penalty_weight=0.4,
                                      maximum_iterations=2))


@pytest.mark.skipif(not on_tensorflow(), reason="alignment_history is a tf.TensorArray")
def test_alignment_history_is_reordered_along_the_beams_in_a_tf_function():
    import tensorflow as tf

    c = case("beam_search", "beam_early_end")
    built = Built(c, wrapper_kwargs={"alignment_history": True})
    as_is = BeamSearchDecoder(built.cell, built.width, output_layer=built.output_layer,
                              reorder_tensor_arrays=False, **c.config["decoder_kwargs"])

    @tf.function(autograph=False)
    def run():
        outputs, state, lengths = built()
        built.decoder = as_is
        raw_outputs, raw_state, _ = built()
        return outputs, state, lengths, raw_outputs, raw_state.cell_state.alignment_history.stack()

    outputs, state, lengths, raw_outputs, raw_history = run()
    check_outputs(built, outputs, state, lengths)
    history = state.cell_state.alignment_history
    steps = outputs.predicted_ids.shape[1]
    assert tuple(history.shape) == (steps, 2 * built.width, c.inputs["memory"].shape[1])
    assert_equal(raw_outputs.predicted_ids, outputs.predicted_ids)
    parent_ids = np.swapaxes(ops.convert_to_numpy(outputs.beam_search_decoder_output.parent_ids),
                             0, 1)
    assert_close(history, gather_tree_from_array(raw_history, parent_ids, state.lengths))
    assert not np.allclose(ops.convert_to_numpy(history), ops.convert_to_numpy(raw_history))


@pytest.mark.skipif(not on_tensorflow(), reason="tf.function with an unknown batch size")
def test_decoder_in_a_tf_function_with_an_unknown_batch_size():
    import tensorflow as tf

    c = case("beam_search", "beam_plain_lstm_early_end")
    built = Built(c)
    state_spec = tf.TensorSpec([None, 5], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), state_spec, state_spec],
                 autograph=False)
    def run(start_tokens, h, c):
        outputs, state, lengths = built.decoder(built.embedding, start_tokens=start_tokens,
                                                end_token=2, initial_state=[h, c])
        assert outputs.predicted_ids.shape.as_list() == [None, None, 3]
        return outputs.predicted_ids, state.log_probs, lengths

    ids, log_probs, lengths = run(c.inputs["start_tokens"], *built.initial)
    assert_equal(ids, c.outputs["predicted_ids"])
    assert_close(log_probs, c.outputs["log_probs"])
    assert_equal(lengths, c.outputs["final_sequence_lengths"])


@keras.saving.register_keras_serializable(package="seqzoo_tests")
class BeamModel(keras.Model):
    """Source features `[B, S, F]` -> the best beam's ids `[B, T]`: the features are the
    attention memory, and a bridge from their mean makes the initial cell state."""

    def __init__(self, decoder, **kwargs):
        super().__init__(**kwargs)
        self.decoder = decoder
        self.bridge = keras.layers.Dense(decoder.cell.cell.units, activation="tanh")

    def build(self, input_shape):
        self.bridge.build(input_shape)

    def call(self, features):
        cell, width = self.decoder.cell, self.decoder.beam_width
        cell.attention_mechanisms[0].setup_memory(tile_batch(features, width))
        h = self.bridge(ops.mean(features, axis=1))
        batch = ops.shape(features)[0]
        state = cell.get_initial_state(batch_size=batch * width, dtype="float32").clone(
            cell_state=tile_batch([h, h], width))
        outputs, _, _ = self.decoder(None, start_tokens=ops.ones((batch,), "int32"), end_token=2,
                                     initial_state=state)
        return outputs.predicted_ids[:, :, 0]

    def get_config(self):
        return {**super().get_config(),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


@pytest.mark.backend_neutral
def test_model_with_a_beam_search_decoder_saves_and_loads(tmp_path):
    features = np.random.RandomState(4).uniform(-2, 2, (2, 4, 3)).astype("float32")
    cell = AttentionWrapper(keras.layers.LSTMCell(6), LuongAttention(6, memory=features),
                            attention_layer_size=5)
    decoder = BeamSearchDecoder(cell, 3, embedding_fn=keras.layers.Embedding(9, 4),
                                output_layer=keras.layers.Dense(9), length_penalty_weight=0.5,
                                maximum_iterations=5)
    model = BeamModel(decoder)
    expected = ops.convert_to_numpy(model(features))
    path = tmp_path / "beam.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.decoder, BeamSearchDecoder)
    config = loaded.decoder.get_config()
    assert (config["beam_width"], config["length_penalty_weight"]) == (3, 0.5)
    assert config["maximum_iterations"] == 5
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(loaded.weights, model.weights):
        assert_close(a, b, a.path)
    assert_equal(loaded(features), expected)
