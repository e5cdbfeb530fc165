"""A smoke subset of the model tests that CI runs on the second backend too."""

import pytest

from tests.helpers import BACKEND
from tests.models import test_models, test_registry, test_seq2seq

# Runs on the second backend in CI; on TensorFlow the full tests cover all of this.
pytestmark = [pytest.mark.backend_neutral,
              pytest.mark.skipif(BACKEND == "tensorflow", reason="covered by the full model tests")]


@pytest.mark.parametrize("name", ["bilstm_classifier", "stacked_lstm_tagger",
                                  "lstm_regressor", "gru_lm", "seq2seq_bahdanau"])
def test_preset_round_trip(name, tmp_path):
    test_registry.test_preset_builds_runs_and_round_trips_through_save(name, tmp_path)


def test_classifier_padding_and_learning():
    test_models.test_classifier_output_ignores_padding("last")
    test_models.test_classifier_learns_which_token_comes_first()


def test_language_model_step_generate_and_sampled_training():
    test_models.test_language_model_step_matches_the_whole_sequence_pass()
    test_models.test_sampling_is_reproducible_with_a_seed_and_respects_temperature()
    test_models.test_sampled_training_reports_loss_only_and_full_softmax_in_evaluation()


def test_seq2seq_step_matches_training_and_beam_search_translates():
    test_seq2seq.test_step_function_gives_the_teacher_forced_logits("luong_feed")
    test_seq2seq.test_padding_changes_no_output("luong")
    test_seq2seq.test_beam_search_translations_n_best_and_alignments()


@pytest.mark.parametrize("variant, options", [("luong_feed", {}),
                                              ("luong", {"scheduled_sampling": "linear"})])
def test_decoders_stepping_through_time_train_with_dropout(variant, options):
    # One length: on JAX each new shape compiles anew; the lengths matter to TensorFlow.
    test_seq2seq.test_decoders_stepping_through_time_train_with_dropout(variant, options,
                                                                         lengths=(4,))
