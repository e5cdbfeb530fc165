"""`sequence_loss` and `SequenceLoss` against tensorflow-addons 0.23's outputs and checks."""

import numpy as np
import pytest

from seqzoo import tfa
from tests.tfa._fixtures import assert_close, case, case_names

pytestmark = pytest.mark.backend_neutral

s2s = tfa.seq2seq
_FLAGS = ("average_across_timesteps", "average_across_batch", "sum_over_timesteps",
          "sum_over_batch")


@pytest.mark.parametrize("name", case_names("utils", kind="sequence_loss"))
def test_sequence_loss_matches_tfa(name):
    c = case("utils", name)
    flags = {k: c.config[k] for k in _FLAGS}
    args = (c.inputs["logits"], c.inputs["targets"], c.inputs["weights"])
    if "loss" not in c.outputs:  # TFA raised ValueError for this flag combination
        with pytest.raises(ValueError, match="cannot be set to True at same time"):
            s2s.sequence_loss(*args, **flags)
        return
    assert_close(s2s.sequence_loss(*args, **flags), c.outputs["loss"])


@pytest.mark.parametrize("name", case_names("utils", kind="SequenceLoss"))
def test_sequence_loss_class_matches_tfa(name):
    c = case("utils", name)
    loss = s2s.SequenceLoss(**c.config["kwargs"])
    got = loss(y_true=c.inputs["targets"], y_pred=c.inputs["logits"],
               sample_weight=c.inputs["weights"])
    assert_close(got, c.outputs["loss"])


def test_sequence_loss_class_defaults_are_tfa_s():
    loss = s2s.SequenceLoss()
    assert (loss.average_across_timesteps, loss.average_across_batch, loss.sum_over_timesteps,
            loss.sum_over_batch) == (False, False, True, True)
    assert s2s.SequenceLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_softmax_loss_function_gets_flat_labels_and_logits():
    c = case("utils", "sequence_loss_1100")
    seen = {}

    def loss_fn(labels, logits):
        seen["shapes"] = (tuple(labels.shape), tuple(logits.shape))
        return s2s.sequence_loss(logits[None], labels[None], np.ones((1, labels.shape[0])),
                                 average_across_timesteps=False, average_across_batch=False)[0]

    got = s2s.sequence_loss(c.inputs["logits"], c.inputs["targets"], c.inputs["weights"],
                            softmax_loss_function=loss_fn)
    batch, time, classes = c.inputs["logits"].shape
    assert seen["shapes"] == ((batch * time,), (batch * time, classes))
    assert_close(got, c.outputs["loss"])


@pytest.mark.parametrize("shapes, match", [
    (((2, 3), (2, 3), (2, 3)), "Logits"),
    (((2, 3, 4), (2,), (2, 3)), "Targets"),
    (((2, 3, 4), (2, 3), (2, 3, 1)), "Weights"),
])
def test_wrong_ranks_are_value_errors(shapes, match):
    logits, targets, weights = (np.zeros(s, "float32") for s in shapes)
    with pytest.raises(ValueError, match=match):
        s2s.sequence_loss(logits, targets.astype("int32"), weights)
