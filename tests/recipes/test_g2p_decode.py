"""G2P decoding with small untrained models: batched search and rescoring."""

from seqzoo.recipes.g2p import decode as g2p_decode
from seqzoo.recipes.g2p import settings as g2p_settings
from seqzoo.recipes.g2p import single as g2p_single


def test_transcribe_batches_like_one_word_at_a_time():
    from seqzoo.text import CharTokenizer, WordTokenizer

    source = CharTokenizer.build([g2p_settings.ALPHABET])
    target = WordTokenizer.build(["AA B CH D EH F G HH IY"])
    settings = g2p_settings.settings_for(None, ["units=8", "embedding_dim=4", "num_layers=1",
                                                "decoder_units=8"])
    model = g2p_single.build_model("seq2seq_luong", settings, source, target)
    words = ["a", "zoo", "sequences", "it's", "be", "phoneme", "q", "abcdefghijk", "read"]
    for beam in (1, 3):
        # Batches of 4 with one fixed width, the last one filled up: three calls
        # of one compiled search per method.
        batched = g2p_decode.transcribe(model, words, beam_size=beam, max_length=12,
                                       width=12, batch_size=4)
        alone = [model.translate([w], beam_size=beam, max_length=12)[0] for w in words]
        assert batched == alone


def test_rescore_picks_the_candidate_with_the_best_summed_log_probability():
    from seqzoo.data import pad_sequences
    from seqzoo.text import CharTokenizer, WordTokenizer

    source = CharTokenizer.build([g2p_settings.ALPHABET])
    target = WordTokenizer.build(["AA B CH D EH F G HH IY"])
    models = []
    for seed in (0, 1):
        settings = g2p_settings.settings_for(None, ["units=8", "embedding_dim=4", "num_layers=1",
                                                 "decoder_units=8", f"seed={seed}"])
        models.append(g2p_single.build_model("seq2seq_luong", settings, source, target))
    words = ["bead", "fig", "ah"]
    candidates = [["B IY D", "B EH D", "B IY D", "D"], ["F IY G"], ["AA", "AA HH", "", "HH"]]

    def log_p(model, word, phones, reverse):
        tokens = phones.split()[::-1] if reverse else phones.split()
        return float(model.sequence_log_probs(pad_sequences([source.encode(word)], maxlen=12),
                                              [target.encode(" ".join(tokens))])[0])

    for members in ([(models[0], False)], [(models[0], False), (models[1], True)]):
        # Batches of 4 (the last filled up) give what scoring one at a time gives.
        got = g2p_decode.rescore(members, words, candidates, width=12, max_length=8,
                                   batch_size=4)
        expected = [max(cands, key=lambda c, w=w: sum(log_p(m, w, c, r) for m, r in members))
                    for w, cands in zip(words, candidates)]
        assert got == expected
