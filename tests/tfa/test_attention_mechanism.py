"""The attention mechanisms and their utilities against tensorflow-addons 0.23's outputs."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo import tfa
from tests.tfa._fixtures import assert_close, assign_weights, case, case_names, resolve

pytestmark = pytest.mark.backend_neutral

s2s = tfa.seq2seq
_NOTES = ("call", "note", "query_note")


def _mechanism(c):
    config = {k: v for k, v in c.config.items() if k not in _NOTES}
    units = config.pop("units")
    cls = getattr(s2s, c.kind)
    inputs = c.inputs
    mechanism = cls(units, memory=inputs["memory"],
                    memory_sequence_length=inputs["memory_sequence_length"], **config)
    mechanism([inputs["query"], inputs["state"]])  # builds the query side
    assign_weights(c, mechanism=mechanism)
    mechanism.setup_memory(inputs["memory"], inputs["memory_sequence_length"])
    return mechanism


@pytest.mark.parametrize("name", case_names("mechanisms"))
def test_mechanism_matches_tfa(name):
    c = case("mechanisms", name)
    mechanism = _mechanism(c)
    alignments, next_state = mechanism([c.inputs["query"], c.inputs["state"]])
    batch = c.inputs["memory"].shape[0]
    out = c.outputs
    assert_close(alignments, out["alignments"], "alignments")
    assert_close(next_state, out["next_state"], "next_state")
    assert_close(mechanism.keys, out["keys"], "keys")
    assert_close(mechanism.values, out["values"], "values")
    assert_close(mechanism.initial_alignments(batch, "float32"), out["initial_alignments"])
    assert_close(mechanism.initial_state(batch, "float32"), out["initial_state"])
    by_id = {id(resolve({"mechanism": mechanism}, p)): p for p in c.weights_order}
    assert [by_id.get(id(w), w.path) for w in mechanism.weights] == c.weights_order


@pytest.mark.parametrize("name", case_names("mechanisms"))
def test_mechanism_weight_attributes_have_tfa_shapes(name):
    c = case("mechanisms", name)
    mechanism = _mechanism(c)
    assert len(mechanism.weights) == len(c.weights_order)
    for path, value in c.weights.items():
        obj = mechanism
        for part in path.split("/")[1:]:
            obj = getattr(obj, part)
        assert tuple(obj.shape) == value.shape, path


@pytest.mark.parametrize("name", case_names("utils", kind="hardmax"))
def test_hardmax(name):
    c = case("utils", name)
    assert_close(s2s.hardmax(c.inputs["logits"]), c.outputs["hardmax"])


@pytest.mark.parametrize("name", case_names("utils", kind="safe_cumprod"))
def test_safe_cumprod(name):
    c = case("utils", name)
    got = s2s.safe_cumprod(c.inputs["x"], axis=c.config["axis"], exclusive=c.config["exclusive"],
                           reverse=c.config["reverse"])
    assert_close(got, c.outputs["cumprod"])


@pytest.mark.parametrize("name", case_names("utils", kind="monotonic_attention"))
def test_monotonic_attention(name):
    c = case("utils", name)
    got = s2s.monotonic_attention(c.inputs["p_choose_i"], c.inputs["previous_attention"],
                                  c.config["mode"])
    assert_close(got, c.outputs["attention"])


def test_monotonic_attention_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="recursive.*parallel.*hard"):
        s2s.monotonic_attention(np.ones((1, 3), "float32"), np.ones((1, 3), "float32"), "soft")


MEMORY = np.random.RandomState(0).randn(2, 5, 6).astype("float32")


@pytest.mark.parametrize("cls", [s2s.LuongAttention, s2s.BahdanauAttention,
                                 s2s.LuongMonotonicAttention, s2s.BahdanauMonotonicAttention])
def test_memory_set_up_later_and_masked_by_lengths_or_mask(cls):
    by_length = cls(6)
    assert not by_length.memory_initialized
    by_length.setup_memory(MEMORY, memory_sequence_length=np.array([3, 5]))
    by_mask = cls(6)
    mask = np.array([[1, 1, 1, 0, 0], [1] * 5], bool)
    by_mask.setup_memory(MEMORY, memory_mask=mask)
    query = np.ones((2, 6), "float32")
    state = by_length.initial_state(2, "float32")
    by_length([query, state])
    by_mask([query, state])
    by_mask.set_weights(by_length.get_weights())
    by_mask.setup_memory(MEMORY, memory_mask=mask)
    by_length.setup_memory(MEMORY, memory_sequence_length=np.array([3, 5]))
    a1, _ = by_length([query, state])
    a2, _ = by_mask([query, state])
    assert_close(a1, a2)
    assert np.all(ops.convert_to_numpy(a1)[0, 3:] == 0)
    assert_close(by_length.values[0, 3:], np.zeros((2, 6)))
    assert by_length.alignments_size == 5 and by_length.batch_size == 2


def test_mechanism_called_with_setup_memory_flag():
    mechanism = s2s.BahdanauAttention(4)
    values = mechanism(MEMORY, setup_memory=True)
    assert mechanism.memory_initialized
    assert_close(values, MEMORY)
    mechanism([MEMORY, np.array([2, 4])], setup_memory=True)
    assert_close(mechanism.values[0, 2:], np.zeros((3, 6)))


@pytest.mark.parametrize("bad, match", [
    (dict(memory=np.ones((2, 6), "float32")), "memory"),
    (dict(memory=MEMORY, memory_sequence_length=np.ones((2, 1), "int32")),
     "memory_sequence_length"),
])
def test_bad_memory_is_a_value_error_naming_it(bad, match):
    with pytest.raises(ValueError, match=match):
        s2s.LuongAttention(6, **bad)


def test_lengths_and_mask_together_are_refused():
    with pytest.raises(ValueError, match="memory_sequence_length and memory_mask"):
        s2s.LuongAttention(6).setup_memory(MEMORY, np.array([2, 3]), np.ones((2, 5), bool))


def test_query_before_memory_is_refused():
    with pytest.raises(ValueError, match="setup of memory"):
        s2s.LuongAttention(6)([np.ones((2, 6), "float32"), np.zeros((2, 5), "float32")])


def test_luong_query_depth_must_equal_units():
    mechanism = s2s.LuongAttention(4, memory=MEMORY)
    with pytest.raises(ValueError, match="Incompatible"):
        mechanism([np.ones((2, 6), "float32"), np.zeros((2, 5), "float32")])


@pytest.mark.parametrize("kwargs, match", [
    (dict(units=0), "units"), (dict(units=4, probability_fn="sparsemax"), "probability_fn"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        s2s.BahdanauAttention(**kwargs)
    with pytest.raises(ValueError, match="mode"):
        s2s.BahdanauMonotonicAttention(4, mode="soft")


@pytest.mark.parametrize("cls, kwargs", [
    (s2s.LuongAttention, dict(scale=True)), (s2s.BahdanauAttention, dict(normalize=True)),
    (s2s.LuongMonotonicAttention, dict(mode="recursive", score_bias_init=-1.0)),
    (s2s.BahdanauMonotonicAttention, dict(normalize=True, mode="hard")),
])
def test_config_round_trip_rebuilds_the_same_mechanism(cls, kwargs):
    mechanism = cls(6, memory=MEMORY, **kwargs)
    query, state = np.ones((2, 6), "float32"), mechanism.initial_state(2, "float32")
    expected, _ = mechanism([query, state])
    clone = cls.from_config(mechanism.get_config())
    clone.setup_memory(MEMORY)
    clone([query, state])
    clone.set_weights(mechanism.get_weights())
    clone.setup_memory(MEMORY)
    got, _ = clone([query, state])
    assert_close(got, expected)
    assert keras.saving.get_registered_object(
        keras.saving.get_registered_name(cls)) is cls
