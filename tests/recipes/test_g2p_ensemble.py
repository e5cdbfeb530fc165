"""`seqzoo recipe g2p` ensembles: members side by side, reused, gone on from, decoded as one."""

import contextlib
import io
import json
import os

import pytest

from seqzoo.cli import main
from seqzoo.errors import InputError
from seqzoo.recipes.g2p import decode as g2p_decode
from seqzoo.recipes.g2p import ensemble as g2p_ensemble
from seqzoo.recipes.g2p import settings as g2p_settings
from seqzoo.recipes.g2p import single as g2p_single
from tests.recipes.tiny import TINY


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    """One ensemble trained on the first 40 words: two members side by side, a
    seq2seq_luong reading left to right and a seq2seq_luong_feed right to left.

    Returns `(out, command, printed)`; the tests only read its files."""
    out = tmp_path_factory.mktemp("g2p-ensemble") / "run"
    command = ["recipe", "g2p", "--limit", "40", "--set", "epochs=1", "--set", "ensemble=2",
               "--set", "reversed_members=1", "--model", "seq2seq_luong,seq2seq_luong_feed",
               "--out", str(out)] + TINY
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(command) == 0
    return out, command, printed.getvalue()


def test_ensemble_presets_member_commands_and_cores(monkeypatch):
    import argparse

    settings = g2p_settings.settings_for(40)
    assert settings["ensemble"] == 2 and settings["reversed_members"] == 1
    assert g2p_settings.settings_for(10)["ensemble"] == 1
    args = argparse.Namespace(model=None, budget=40.0, limit=None, dictionary=None,
                              set=["units=8"], out="o")
    assert g2p_settings.model_presets(args, settings) == ["seq2seq_luong"] * 2
    args.model = "seq2seq_luong,seq2seq_luong_feed"
    assert g2p_settings.model_presets(args, settings) == ["seq2seq_luong", "seq2seq_luong_feed"]
    args.model = "seq2seq_bahdanau"
    assert g2p_settings.model_presets(args, settings) == ["seq2seq_bahdanau"] * 2
    args.model = "seq2seq_luong,seq2seq_basic,seq2seq_bahdanau"
    with pytest.raises(InputError, match="3 presets for an ensemble of 2"):
        g2p_settings.model_presets(args, settings)
    args.model = "seq2seq_luong,"
    with pytest.raises(InputError, match="expected --model PRESET"):
        g2p_settings.model_presets(args, settings)
    args.model = None
    with pytest.raises(InputError, match="ensemble: expected a positive integer"):
        g2p_settings.model_presets(args, {**settings, "ensemble": 0})
    command = g2p_ensemble.member_command(args, "seq2seq_luong", 1, 5, "o/member-2", True)
    assert command[1:5] == ["-m", "seqzoo", "recipe", "g2p"]
    assert command[command.index("--budget") + 1] == "40.0"
    assert command[command.index("--out") + 1] == "o/member-2"
    # The member's own settings come last, so they win over the user's.
    assert command[-8:] == ["--set", "units=8", "--set", "ensemble=1", "--set", "seed=6",
                            "--set", "reverse=true"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert g2p_ensemble.core_groups(2) == [[0, 2], [1, 3]]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert g2p_ensemble.core_groups(2) == [None, None]


def test_ensemble_recipe_end_to_end_on_a_slice(ensemble_run):
    from seqzoo.recipes.g2p import dictionary as g2p

    out, _, printed = ensemble_run
    assert "[member 1] training seq2seq_luong " in printed
    assert "[member 2] training seq2seq_luong_feed " in printed
    assert "member 2: seq2seq_luong_feed, seed 1, right to left" in printed
    assert "ensemble of 2: dev WER" in printed and "test beam3: WER" in printed
    record = json.loads((out / "results.json").read_text())
    assert record["ensemble"] == 2 and record["model"] == "seq2seq_luong,seq2seq_luong_feed"
    members = record["members"]
    assert [m["model"] for m in members] == ["seq2seq_luong", "seq2seq_luong_feed"]
    assert [m["settings"]["seed"] for m in members] == [0, 1]
    assert [m["settings"]["reverse"] for m in members] == [False, True]
    assert record["parameters"] == sum(m["parameters"] for m in members)
    for index, member in enumerate(members, 1):
        folder = out / f"member-{index}"
        assert member["folder"] == folder.name and member["test"]["greedy"]["words"] == 40
        for name in ("model.keras", "results.json", "log.txt", "test_predictions.tsv"):
            assert (folder / name).stat().st_size > 0
    # dev_words=40
    assert record["test"]["greedy"]["words"] == 40 and record["ensemble_dev"]["words"] == 40
    # The written predictions are the ensemble's (both directions, rescored), not a member's.
    rows = [line.split("\t") for line in (out / "test_predictions.tsv").read_text().splitlines()]
    lexicon = g2p.load_cmudict()[0]
    splits = g2p.limit(g2p.split_lexicon(lexicon), 40)
    max_length, width = g2p_decode.lengths(lexicon, g2p.pairs(lexicon, splits["train"]))
    assert [row[0] for row in rows[1:]] == splits["test"]
    decode = g2p_decode.ensemble_decoder([str(out / "member-1"), str(out / "member-2")],
                                         [False, True], max_length, width)
    greedy = decode(splits["test"], 1)
    assert greedy == [row[1] for row in rows[1:]]
    assert record["test"]["greedy"]["wer"] == g2p.score(
        greedy, [lexicon[w] for w in splits["test"]])["wer"]


def test_a_failing_member_is_named_with_its_log(tmp_path, capsys, monkeypatch):
    import sys

    out = tmp_path / "run"
    # A preset that is not seq2seq is refused before any member starts.
    status = main(["recipe", "g2p", "--limit", "20", "--set", "epochs=1", "--set", "ensemble=2",
                   "--model", "seq2seq_luong,lstm_lm", "--out", str(out)] + TINY)
    assert status == 2
    err = capsys.readouterr().err
    assert "expected a seq2seq preset, one of ['seq2seq_" in err and "--model lstm_lm" in err
    assert not (out / "member-1").exists() and not (out / "results.json").exists()
    # A member that fails while running: member 2's real command, given a
    # dictionary with a bad line; member 1 exits at once without a run.
    bad = tmp_path / "bad.txt"
    bad.write_text("READ  R EH1 D\nZOO\n")
    command = g2p_ensemble.member_command

    def failing(args, preset, index, *rest, **options):
        if index == 0:
            return [sys.executable, "-c", "pass"]
        return command(args, preset, index, *rest, **options) + ["--dictionary", str(bad)]

    monkeypatch.setattr(g2p_ensemble, "member_command", failing)
    status = main(["recipe", "g2p", "--limit", "20", "--set", "epochs=1", "--set", "ensemble=2",
                   "--out", str(out)] + TINY)
    assert status == 2
    err = capsys.readouterr().err
    assert "member 2 (exit 2, see" in err and "member-2/log.txt" in err
    assert "member 1 (" not in err and "member 1 failed" not in err
    assert "member 2 failed (exit 2, see" in err  # said when it happens, too
    assert f"{bad}:2: expected a word and its phones" in (out / "member-2" / "log.txt").read_text()
    assert not (out / "results.json").exists()


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


def test_finished_members_are_reused_and_init_goes_on_from_each(ensemble_run, tmp_path,
                                                                 capsys):
    out, command, _ = ensemble_run
    record = json.loads((out / "results.json").read_text())
    model_file = out / "member-2" / "model.keras"
    stamp = model_file.stat().st_mtime_ns
    # The same command again reuses both finished members and decodes the same.
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert printed.count("reusing the finished run") == 2 and "[member" not in printed
    assert model_file.stat().st_mtime_ns == stamp
    again = json.loads((out / "results.json").read_text())
    for name in ("greedy", "beam3"):
        assert again["test"][name]["wer"] == record["test"][name]["wer"]
    # Other settings (or other data) retrain: the member's own command line
    # must match the finished run's record.
    import argparse

    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    args = argparse.Namespace(budget=None, limit=40, dictionary=None, set=sets,
                              _splits=record["data"]["splits"])
    folder = str(out / "member-2")
    same = g2p_ensemble.member_command(args, "seq2seq_luong_feed", 1, 0, folder, reverse=True)
    assert g2p_ensemble._finished(folder, same, args)
    other_seed = g2p_ensemble.member_command(args, "seq2seq_luong_feed", 1, 3, folder,
                                             reverse=True)
    other_way = g2p_ensemble.member_command(args, "seq2seq_luong_feed", 1, 0, folder,
                                            reverse=False)
    other_preset = g2p_ensemble.member_command(args, "seq2seq_luong", 1, 0, folder, reverse=True)
    assert not g2p_ensemble._finished(folder, other_preset, args)
    assert not g2p_ensemble._finished(folder, other_seed, args)
    assert not g2p_ensemble._finished(folder, other_way, args)
    args._splits = {"train": {"words": 1, "pronunciations": 1}}
    assert not g2p_ensemble._finished(folder, same, args)
    # --init goes on training each member from the same member of a finished ensemble.
    more = tmp_path / "more"
    assert main(command[:-len(TINY) - 2] + ["--init", str(out), "--out", str(more)] + TINY) == 0
    capsys.readouterr()
    for index in (1, 2):
        member = json.loads((more / f"member-{index}" / "results.json").read_text())
        assert member["init"]["folder"] == str(out / f"member-{index}")
        assert member["settings"]["reverse"] == (index == 2)
    # The ensemble's results.json says where each member went on from.
    summaries = json.loads((more / "results.json").read_text())["members"]
    assert [m["init"]["folder"] for m in summaries] == [str(out / "member-1"),
                                                        str(out / "member-2")]
    args.init, args._splits = str(out), record["data"]["splits"]
    folder = str(more / "member-2")
    went_on = g2p_ensemble.member_command(args, "seq2seq_luong_feed", 1, 0, folder,
                                          reverse=True)
    assert went_on[went_on.index("--init") + 1] == str(out / "member-2")
    assert g2p_ensemble._finished(folder, went_on, args)
    assert not g2p_ensemble._finished(folder, same, args)  # the same run without --init

