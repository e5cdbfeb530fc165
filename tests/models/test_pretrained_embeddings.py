"""Zoo models start from pre-trained vectors: `set_embeddings`, frozen or trainable."""

import keras
import numpy as np
import pytest
from keras import ops

import seqzoo
from seqzoo.errors import InputError
from seqzoo.text import WordTokenizer

WORDS = ["good", "great", "fine", "bad", "awful", "poor"]


def _np(x):
    return ops.convert_to_numpy(x)


def _glove(path, dim=4, seed=0):
    """GloVe text: positive words near +1 on the first axis, negative near -1."""
    rng = np.random.default_rng(seed)
    vectors = {}
    for i, word in enumerate(WORDS):
        vector = rng.normal(0, 0.1, dim)
        vector[0] = 1.0 if i < 3 else -1.0
        vectors[word] = vector.astype(np.float32)
    path.write_text("".join(w + " " + " ".join(f"{x:.6f}" for x in v) + "\n"
                            for w, v in vectors.items()), encoding="utf-8")
    return vectors


def _word2vec(path, words, dim=6, seed=1):
    rng = np.random.default_rng(seed)
    vectors = {w: rng.normal(0, 0.5, dim).astype(np.float32) for w in words}
    path.write_text(f"{len(words)} {dim}\n" + "".join(
        w + " " + " ".join(f"{x:.6f}" for x in v) + "\n" for w, v in vectors.items()),
        encoding="utf-8")
    return vectors


def test_a_classifier_starts_from_glove_vectors_frozen_and_saves_without_the_file(tmp_path):
    path = tmp_path / "glove.txt"
    vectors = _glove(path)
    tokenizer = WordTokenizer.build(["good great fine", "bad awful poor", "movie"])
    model = seqzoo.create("lstm_classifier", vocab_size=tokenizer.vocab_size, embedding_dim=4,
                          units=8, tokenizer=tokenizer)
    loaded = model.set_embeddings(path, trainable=False, oov="zeros")
    assert loaded.report["found"] == 6 and loaded.report["missing_words"] == [("movie", None)]
    layer = model.embedding_layer()
    for word, vector in vectors.items():
        np.testing.assert_allclose(_np(layer.embeddings)[tokenizer.token_to_id(word)], vector,
                                   atol=1e-6)
    assert all(v is not layer.embeddings for v in model.trainable_variables)

    model.compile(optimizer=keras.optimizers.Adam(0.05))
    texts = ["good", "great movie", "fine", "bad", "awful movie", "poor"] * 4
    x = model.encode_texts(texts)
    y = np.array([0, 0, 0, 1, 1, 1] * 4)
    before = [_np(v) for v in model.trainable_variables]
    model.fit(x, y, epochs=15, batch_size=8, verbose=0)
    assert all(np.abs(_np(v) - b).max() > 0 for v, b in zip(model.trainable_variables, before))
    np.testing.assert_array_equal(_np(layer.embeddings), loaded.matrix)
    assert (model.predict(x, verbose=0).argmax(-1) == y).mean() == 1.0

    model.save(tmp_path / "classifier.keras")
    path.unlink()  # a saved model does not need the vectors file again
    again = keras.saving.load_model(tmp_path / "classifier.keras")
    np.testing.assert_array_equal(_np(again.embedding_layer().embeddings), loaded.matrix)


def test_a_seq2seq_model_starts_from_word2vec_vectors_on_both_sides(tmp_path):
    source = WordTokenizer.build(["le chat noir", "un chien"])
    target = WordTokenizer.build(["the black cat", "a dog"])
    src_vectors = _word2vec(tmp_path / "src.txt", ["le", "chat", "noir", "chien"])
    tgt_vectors = _word2vec(tmp_path / "tgt.bin.txt", ["the", "black", "cat", "a", "dog"])
    model = seqzoo.create("seq2seq_luong_small", source_vocab_size=source.vocab_size,
                          target_vocab_size=target.vocab_size, embedding_dim=6,
                          source_tokenizer=source, target_tokenizer=target)
    src = model.set_embeddings(tmp_path / "src.txt", side="source")
    tgt = model.set_embeddings(tmp_path / "tgt.bin.txt", side="target", oov="mean")
    assert src.report["format"] == "word2vec" and src.report["missing"] == 1  # "un"
    assert tgt.report["coverage"] == 1.0
    for tokenizer, vectors, side in ((source, src_vectors, "source"),
                                     (target, tgt_vectors, "target")):
        matrix = _np(model.embedding_layer(side).embeddings)
        for word, vector in vectors.items():
            np.testing.assert_allclose(matrix[tokenizer.token_to_id(word)], vector, atol=1e-6)
        np.testing.assert_array_equal(matrix[0], 0)

    # Trainable (the default): a training step moves them.
    model.compile()
    ids = np.array([[4, 5, 6, 0], [7, 8, 0, 0]], "int32")
    targets = np.array([[2, 4, 5, 6, 3], [2, 7, 8, 3, 0]], "int32")
    model.train_on_batch({"source_ids": ids, "decoder_input_ids": targets[:, :-1]},
                         targets[:, 1:])
    assert np.abs(_np(model.embedding_layer("source").embeddings) - src.matrix).max() > 0


@pytest.mark.parametrize("preset, kwargs", [
    ("stacked_lstm_tagger", {"vocab_size": 9, "num_tags": 3}),
    ("lstm_lm", {"vocab_size": 9}),
])
def test_taggers_and_language_models_take_a_matrix(preset, kwargs):
    model = seqzoo.create(preset, embedding_dim=5, units=6, **kwargs)
    matrix = np.arange(45, dtype=np.float32).reshape(9, 5)
    assert model.set_embeddings(matrix) is matrix
    np.testing.assert_array_equal(_np(model.embedding_layer().embeddings), matrix)


def test_bad_matrices_sides_and_orders_are_named(tmp_path):
    model = seqzoo.create("lstm_classifier", vocab_size=10, embedding_dim=4, units=4)
    with pytest.raises(InputError, match=r"shape \(10, 4\).*shape \(10, 300\); build the "
                                         "model with embedding_dim=300"):
        model.set_embeddings(np.zeros((10, 300)))
    with pytest.raises(InputError, match=r"shape \(10, 4\).*shape \(9, 4\)"):
        model.set_embeddings(np.zeros((9, 4)))
    with pytest.raises(InputError, match="has one vocabulary.*side='source'"):
        model.set_embeddings(np.zeros((10, 4)), side="source")
    with pytest.raises(InputError, match="no tokenizer to read"):
        model.set_embeddings(tmp_path / "glove.txt")
    with pytest.raises(InputError, match="apply to reading a file"):
        model.set_embeddings(np.zeros((10, 4)), oov="zeros")
    model.compile()
    with pytest.raises(InputError, match="before compile"):
        model.set_embeddings(np.zeros((10, 4)), trainable=False)
    seq2seq = seqzoo.create("seq2seq_basic_small", source_vocab_size=8, target_vocab_size=8)
    with pytest.raises(InputError, match="side='source' or 'target'"):
        seq2seq.set_embeddings(np.zeros((8, 32)))
    regressor = seqzoo.create("lstm_regressor")
    with pytest.raises(InputError, match="reads feature vectors"):
        regressor.set_embeddings(np.zeros((8, 4)))
