"""Seq2SeqEnsemble: the combined step, decoding like its members, loading, bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from seqzoo.data import pad_sequences
from seqzoo.errors import InputError
from seqzoo.models import RNNLanguageModel, Seq2Seq, Seq2SeqEnsemble
from seqzoo.text import CharTokenizer
from seqzoo.text.specials import BOS_ID, EOS_ID

TOKENIZER = CharTokenizer.build(["abcdefgh"])
WORDS = ["abc", "hgfedc", "a", "cafe", "bead", "ggg"]


def _model(seed, attention="luong", tokenizer=TOKENIZER, **kwargs):
    keras.utils.set_random_seed(seed)
    model = Seq2Seq(tokenizer.vocab_size, tokenizer.vocab_size, embedding_dim=8, units=8,
                    attention=attention, source_tokenizer=tokenizer,
                    target_tokenizer=tokenizer, **kwargs)
    model(_inputs())
    # Random initial logits are nearly flat: a larger output bias gives the
    # searches distinct, seed-dependent preferences to combine.
    head = model.parts["head"]
    bias = [w for w in head.weights if "bias" in w.path][0]
    bias.assign(np.random.default_rng(seed).normal(0, 2, bias.shape).astype("float32"))
    return model


def _inputs():
    source = pad_sequences(TOKENIZER.encode_batch(WORDS))
    return {"source_ids": source, "decoder_input_ids": source}


def _source():
    return pad_sequences(TOKENIZER.encode_batch(WORDS))


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_step_is_the_weighted_mean_of_the_members():
    first, second = _model(1), _model(2, attention=None, bidirectional=False)
    source = _source()
    tokens = np.full((len(WORDS),), BOS_ID, "int32")
    one = _log_softmax(ops.convert_to_numpy(first.step(tokens, first.encode(source))[0]))
    two = _log_softmax(ops.convert_to_numpy(second.step(tokens, second.encode(source))[0]))
    assert not np.allclose(one, two)  # the members differ, so the check has teeth
    for combine in ("log_probs", "probs"):
        ensemble = Seq2SeqEnsemble([first, second], weights=[1, 3], combine=combine)
        states = ensemble.encode(source)
        got, new_states = ensemble.step(tokens, states)
        if combine == "log_probs":
            expected = 0.25 * one + 0.75 * two
        else:
            expected = np.log(0.25 * np.exp(one) + 0.75 * np.exp(two))
        np.testing.assert_allclose(ops.convert_to_numpy(got), expected, atol=1e-5)
        assert len(new_states) == 2


def test_an_ensemble_of_copies_decodes_like_the_model():
    model = _model(3)
    copy = _model(4)
    copy.set_weights(model.get_weights())
    ensembles = (Seq2SeqEnsemble([model]), Seq2SeqEnsemble([model, copy], weights=[2, 1]),
                 Seq2SeqEnsemble([model, copy], combine="probs"))
    for method in ("greedy", "beam"):
        options = dict(method=method, beam_size=3, n_best=2 if method == "beam" else 1,
                       max_length=10)
        expected = model.search(_source(), **options)
        for ensemble in ensembles:
            got = ensemble.search(_source(), **options)
            np.testing.assert_array_equal(got["ids"], expected["ids"])
            np.testing.assert_allclose(got["scores"], expected["scores"], atol=1e-4)
            if method == "beam":
                np.testing.assert_allclose(got["alignments"], expected["alignments"], atol=1e-5)


def test_members_that_disagree_give_the_combined_choice():
    first, second = _model(5), _model(6)
    ensemble = Seq2SeqEnsemble([first, second])
    got = ensemble.search(_source(), method="greedy", max_length=8)["ids"][:, 0]
    # Greedy decoding by hand over the combined step, one token at a time.
    states = ensemble.encode(_source())
    tokens = np.full((len(WORDS),), BOS_ID, "int32")
    for t in range(4):
        log_probs, states = ensemble.step(tokens, states)
        tokens = ops.convert_to_numpy(log_probs).argmax(-1).astype("int32")
        # Rows that ended earlier are padded; compare the live rows.
        live = (got[:, :t] != EOS_ID).all(axis=1)
        assert live.any()
        np.testing.assert_array_equal(got[live, t], tokens[live])
    one = first.search(_source(), method="greedy", max_length=8)["ids"][:, 0]
    two = second.search(_source(), method="greedy", max_length=8)["ids"][:, 0]
    assert not np.array_equal(one, two)


def test_beam_search_with_a_member_without_attention_and_coverage():
    ensemble = Seq2SeqEnsemble([_model(7), _model(8, attention=None, bidirectional=False)])
    result = ensemble.search(_source(), method="beam", beam_size=4, n_best=2, max_length=9,
                             length_penalty=0.6, coverage_penalty=0.2)
    assert result["ids"].shape == (len(WORDS), 2, 9)
    source_len = _source().shape[1]
    assert result["alignments"].shape == (len(WORDS), 2, 9, source_len)
    assert np.all(result["scores"][:, 0] >= result["scores"][:, 1])
    texts = ensemble.translate(WORDS, beam_size=4)
    assert len(texts) == len(WORDS) and all(isinstance(t, str) for t in texts)
    sampled = ensemble.search(_source(), method="sample", max_length=9, seed=1)
    assert sampled["ids"].shape == (len(WORDS), 1, 9)


def test_load_from_saved_models(tmp_path):
    first, second = _model(9), _model(10, input_feeding=True)
    paths = [tmp_path / "one.keras", tmp_path / "two.keras"]
    first.save(paths[0])
    second.save(paths[1])
    loaded = Seq2SeqEnsemble.load(paths)
    expected = Seq2SeqEnsemble([first, second]).translate(WORDS, beam_size=3)
    assert loaded.translate(WORDS, beam_size=3) == expected
    lm = RNNLanguageModel(TOKENIZER.vocab_size, embedding_dim=4, units=4)
    lm(np.ones((1, 3), "int32"))
    lm.save(tmp_path / "lm.keras")
    with pytest.raises(InputError, match=r"lm\.keras: expected a Seq2Seq model"):
        Seq2SeqEnsemble.load([paths[0], tmp_path / "lm.keras"])
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        Seq2SeqEnsemble.load([tmp_path / "missing.keras"])


def test_bad_members_and_arguments_are_named():
    model = _model(11)
    with pytest.raises(ValueError, match="at least one model"):
        Seq2SeqEnsemble([])
    with pytest.raises(TypeError, match=r"models\[1\] of type str"):
        Seq2SeqEnsemble([model, "model.keras"])
    bigger = CharTokenizer.build(["abcdefghij"])
    with pytest.raises(ValueError, match=r"target_vocab_size|source_vocab_size"):
        Seq2SeqEnsemble([model, _model(12, tokenizer=bigger)])
    other = CharTokenizer.build(["abcdefgz"])  # same size, another alphabet
    with pytest.raises(ValueError, match=r"same source_tokenizer.*models\[1\]"):
        Seq2SeqEnsemble([model, _model(13, tokenizer=other)])
    with pytest.raises(ValueError, match="one positive weight per model"):
        Seq2SeqEnsemble([model, model], weights=[1, 0])
    with pytest.raises(ValueError, match="one positive weight per model"):
        Seq2SeqEnsemble([model, model], weights=[1])
    with pytest.raises(ValueError, match="combine in"):
        Seq2SeqEnsemble([model], combine="max")
    with pytest.raises(InputError, match=r"texts\[1\]='xyz' has tokens outside"):
        Seq2SeqEnsemble([model]).translate(["abc", "xyz"])


def test_sequence_log_probs_are_the_sums_the_search_reports():
    model = _model(14)
    # With random biases `</s>` may never win within 9 steps; the largest
    # bias makes hypotheses end (after 0 or 1 tokens: the next test scores
    # longer outputs against the decoder stepped by hand).
    bias = [w for w in model.parts["head"].weights if "bias" in w.path][0]
    values = ops.convert_to_numpy(bias).copy()
    values[EOS_ID] = values.max()
    bias.assign(values)
    result = model.search(_source(), method="beam", beam_size=3, n_best=2, max_length=9)
    targets = []
    for row in result["ids"].reshape(-1, 9):
        ids = list(row)
        targets.append(ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids)
    sources = np.repeat(_source(), 2, axis=0)
    finished = np.array([EOS_ID in list(row) for row in result["ids"].reshape(-1, 9)])
    assert finished.any()
    got = model.sequence_log_probs(sources, targets, target_length=10)
    np.testing.assert_allclose(got[finished], result["scores"].reshape(-1)[finished],
                               atol=1e-4)
    with pytest.raises(ValueError, match="B targets"):
        model.sequence_log_probs(_source(), targets)


def test_sequence_log_probs_match_stepping_the_decoder_by_hand():
    model = _model(15)
    rng = np.random.default_rng(15)
    # Targets of different lengths (empty included), scored in one padded call.
    targets = [list(rng.integers(EOS_ID + 1, TOKENIZER.vocab_size, size=n))
               for n in (0, 1, 3, 5, 2, 7)]
    got = model.sequence_log_probs(_source(), targets, target_length=12)
    states = model.encode(_source())
    tokens = np.full((len(WORDS),), BOS_ID, "int32")
    expected = np.zeros(len(WORDS))
    done = np.zeros(len(WORDS), bool)
    for t in range(8):
        log_probs, states = model.step(tokens, states)
        log_probs = _log_softmax(ops.convert_to_numpy(log_probs))
        wanted = np.array([row[t] if t < len(row) else EOS_ID for row in targets], "int32")
        expected += np.where(done, 0.0, log_probs[np.arange(len(WORDS)), wanted])
        done |= wanted == EOS_ID
        tokens = wanted
    assert done.all()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert len(set(np.round(got, 3))) == len(WORDS)
