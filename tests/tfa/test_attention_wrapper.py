"""`AttentionWrapper` against tensorflow-addons 0.23's outputs, and as a Keras 3 RNN cell."""

import keras
import numpy as np
import pytest

from seqzoo import tfa
from seqzoo.tfa.seq2seq._common import on_tensorflow
from tests.tfa._fixtures import assert_close, assign_weights, case, case_names, resolve

s2s = tfa.seq2seq
HISTORY = [n for n in case_names("attention_wrapper") if case("attention_wrapper", n).config[
    "alignment_history"]]
PLAIN = [n for n in case_names("attention_wrapper") if n not in HISTORY]


def make_cell(spec):
    if spec["class"] == "StackedRNNCells":
        return keras.layers.StackedRNNCells([make_cell(c) for c in spec["cells"]])
    return getattr(keras.layers, spec["class"])(**{k: v for k, v in spec.items() if k != "class"})


def make_mechanism(spec, memory, lengths):
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    return getattr(s2s, spec["class"])(memory=memory, memory_sequence_length=lengths, **kwargs)


def build_wrapper(c):
    """The case's wrapper with TFA's weights, and a function running its steps."""
    cfg, inputs = c.config, c.inputs
    memory, lengths = inputs["memory"], inputs["memory_sequence_length"]
    multi = isinstance(cfg["attention_mechanism"], list)
    specs = cfg["attention_mechanism"] if multi else [cfg["attention_mechanism"]]
    mechanisms = [make_mechanism(s, memory, lengths) for s in specs]
    kwargs = dict(attention_layer_size=cfg["attention_layer_size"],
                  output_attention=cfg["output_attention"],
                  alignment_history=cfg["alignment_history"])
    initial = [np.asarray(x) for x in inputs.get("initial_cell_state", [])]
    if cfg["initial_cell_state"] == "constructor":
        kwargs["initial_cell_state"] = initial
    wrapper = s2s.AttentionWrapper(make_cell(cfg["cell"]),
                                   mechanisms if multi else mechanisms[0], **kwargs)
    batch = memory.shape[0]

    def run():
        state = wrapper.get_initial_state(batch_size=batch, dtype="float32")
        if cfg["initial_cell_state"] == "clone":
            state = state.clone(cell_state=initial)
        outputs = []
        for t in range(inputs["inputs"].shape[1]):
            out, state = wrapper(inputs["inputs"][:, t], state)
            outputs.append(out)
        return keras.ops.stack(outputs, axis=1), state

    run()
    roots = {"wrapper": wrapper, "cell": wrapper.cell}
    roots["mechanisms" if multi else "mechanism"] = mechanisms if multi else mechanisms[0]
    assign_weights(c, **roots)
    for m in mechanisms:
        m.setup_memory(memory, lengths)
    return wrapper, roots, run, multi


def check_case(name):
    c = case("attention_wrapper", name)
    wrapper, roots, run, multi = build_wrapper(c)
    outputs, state = run()
    expected = c.outputs
    assert_close(outputs, expected["outputs"], "outputs")
    assert_close(keras.ops.stack(keras.tree.flatten(state.cell_state)), expected["cell_state"],
                 "cell_state")
    assert_close(state.attention, expected["attention"], "attention")
    for field in ("alignments", "attention_state"):
        value = getattr(state, field)
        assert isinstance(value, tuple) == multi, field
        assert_close(keras.ops.stack(value) if multi else value, expected[field], field)
    if "alignment_history" in expected:
        history = state.alignment_history
        stacked = [h.stack() for h in history] if multi else history.stack()
        assert_close(keras.ops.stack(stacked) if multi else stacked,
                     expected["alignment_history"], "alignment_history")
    else:
        assert state.alignment_history == (((),) * 2 if multi else ())
    by_id = {id(resolve(roots, p)): p for p in c.weights_order}
    assert sorted(by_id.get(id(w), w.path) for w in wrapper.weights) == sorted(c.weights_order)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", PLAIN)
def test_wrapper_matches_tfa(name):
    check_case(name)


@pytest.mark.skipif(not on_tensorflow(), reason="alignment_history is a tf.TensorArray")
@pytest.mark.parametrize("name", HISTORY)
def test_wrapper_with_alignment_history_matches_tfa(name):
    check_case(name)


MEMORY = np.random.RandomState(1).randn(2, 5, 6).astype("float32")
LENGTHS = np.array([3, 5], "int32")


def small_wrapper(**kwargs):
    mechanism = s2s.LuongAttention(4, memory=MEMORY, memory_sequence_length=LENGTHS)
    return s2s.AttentionWrapper(keras.layers.LSTMCell(4), mechanism, **kwargs)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("size, out", [(None, 6), (3, 3), ([3], 3)])
def test_sizes_and_initial_state_structure(size, out):
    wrapper = small_wrapper(attention_layer_size=size)
    assert wrapper.output_size == out
    sizes = wrapper.state_size
    assert isinstance(sizes, s2s.AttentionWrapperState)
    assert (sizes.cell_state, sizes.attention, sizes.alignments) == ([4, 4], out, 5)
    state = wrapper.get_initial_state(batch_size=2, dtype="float32")
    assert isinstance(state, s2s.AttentionWrapperState)
    assert [tuple(s.shape) for s in state.cell_state] == [(2, 4), (2, 4)]
    assert tuple(state.attention.shape) == (2, out)
    assert tuple(state.alignments.shape) == (2, 5)
    assert state.alignment_history == ()


@pytest.mark.backend_neutral
def test_wrapper_runs_inside_keras_rnn_layer():
    wrapper = small_wrapper(attention_layer_size=3)
    inputs = np.random.RandomState(2).randn(2, 4, 3).astype("float32")
    layer = keras.layers.RNN(wrapper, return_sequences=True, return_state=True)
    initial = wrapper.get_initial_state(batch_size=2, dtype="float32")
    result = layer(inputs, initial_state=list(keras.tree.flatten(initial)))
    sequence = result[0]
    assert tuple(sequence.shape) == (2, 4, 3)
    state = wrapper.get_initial_state(batch_size=2, dtype="float32")
    for t in range(4):
        out, state = wrapper(inputs[:, t], state)
        assert_close(sequence[:, t], out, f"step {t}")


@pytest.mark.backend_neutral
def test_wrapper_in_a_keras_model_saves_and_loads(tmp_path):
    wrapper = small_wrapper(attention_layer_size=3)
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.RNN(wrapper, return_sequences=True)(inputs))
    x = np.random.RandomState(3).randn(2, 4, 3).astype("float32")
    expected = model.predict(x, verbose=0)
    path = tmp_path / "wrapper.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    mechanism = loaded.layers[-1].cell.attention_mechanisms[0]
    mechanism.setup_memory(MEMORY, LENGTHS)  # memory is data, not a weight: set it again
    assert_close(loaded.predict(x, verbose=0), expected)


@pytest.mark.backend_neutral
def test_clone_keeps_shapes():
    state = small_wrapper().get_initial_state(batch_size=2, dtype="float32")
    assert tuple(state.clone(attention=np.ones((2, 6), "float32")).attention.shape) == (2, 6)
    with pytest.raises(ValueError, match="shape of the AttentionWrapperState"):
        state.clone(attention=np.ones((2, 7), "float32"))


@pytest.mark.backend_neutral
def test_bad_arguments_are_tfa_s_errors():
    mechanism = s2s.LuongAttention(4, memory=MEMORY)
    with pytest.raises(ValueError, match="one integer per attention_mechanism"):
        s2s.AttentionWrapper(keras.layers.LSTMCell(4), [mechanism], attention_layer_size=[2, 3])
    with pytest.raises(ValueError, match="Only one of attention_layer_size and attention_layer"):
        s2s.AttentionWrapper(keras.layers.LSTMCell(4), mechanism, attention_layer_size=2,
                             attention_layer=keras.layers.Dense(2))
    with pytest.raises(TypeError, match="attention_mechanism"):
        s2s.AttentionWrapper(keras.layers.LSTMCell(4), "luong")
    with pytest.raises(TypeError, match="RNN cell"):
        s2s.AttentionWrapper(keras.layers.Dense(4), mechanism)
    with pytest.raises(ValueError, match="initialized with a memory"):
        s2s.AttentionWrapper(keras.layers.LSTMCell(4), s2s.LuongAttention(4)).get_initial_state(
            batch_size=2, dtype="float32")
    with pytest.raises(ValueError, match="Non-matching batch sizes"):
        small_wrapper().get_initial_state(batch_size=6, dtype="float32")


@pytest.mark.skipif(on_tensorflow(), reason="the message for other backends")
def test_alignment_history_off_tensorflow_is_a_one_line_error():
    with pytest.raises(ValueError, match="needs the TensorFlow backend") as info:
        small_wrapper(alignment_history=True)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not on_tensorflow(), reason="tf.function and the TensorArray history")
def test_wrapper_steps_inside_tf_function_match_eager_steps():
    import tensorflow as tf

    c = case("attention_wrapper", "aw_lstm_bahdanau_alignment_history")
    wrapper, _, run, _ = build_wrapper(c)

    @tf.function(autograph=False)
    def graph_run():
        outputs, state = run()
        return outputs, state.alignment_history.stack()

    outputs, history = graph_run()
    assert_close(outputs, c.outputs["outputs"], "outputs")
    assert_close(history, c.outputs["alignment_history"], "alignment_history")
