"""`seqzoo recipe g2p` ensembles and finished runs: members side by side,
reused, gone on from (`--init`), decoded as one (`--members`)."""

import argparse
import contextlib
import io
import json
import os

import numpy as np
import pytest

from seqzoo.cli import main
from seqzoo.errors import InputError
from seqzoo.recipes.g2p import decode as g2p_decode
from seqzoo.recipes.g2p import ensemble as g2p_ensemble
from seqzoo.recipes.g2p import runs as g2p_runs
from seqzoo.recipes.g2p import settings as g2p_settings
from tests.recipes.tiny import TINY

# The ensemble of the tests: two members on the first 40 words, a
# seq2seq_luong reading left to right and a seq2seq_luong_feed right to left.
ENSEMBLE = ["--limit", "40", "--set", "epochs=1", "--set", "ensemble=2",
            "--set", "reversed_members=1", "--model", "seq2seq_luong,seq2seq_luong_feed"]


def set_items(command):
    """The `--set` items of a command line."""
    return [command[i + 1] for i, word in enumerate(command) if word == "--set"]


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory):
    """Two finished ensembles of `ENSEMBLE`; the tests only read their files.

    `origin`: its members trained in this process, each by the command line
    that the ensemble gives its member process (so that the ensemble's
    command finds them finished). `out`: `ENSEMBLE` with `--init origin`, its
    two member processes training side by side, each from the same member
    of `origin`.

    Returns `(origin, out, command, printed)`: `command` and `printed` are
    `out`'s command line and what it printed.
    """
    root = tmp_path_factory.mktemp("g2p-ensembles")
    origin, out = root / "origin", root / "run"
    command = ["recipe", "g2p"] + ENSEMBLE + ["--init", str(origin), "--out", str(out)] + TINY
    args = argparse.Namespace(budget=None, limit=40, dictionary=None, set=set_items(command))
    with contextlib.redirect_stdout(io.StringIO()):
        for index, (preset, reverse) in enumerate([("seq2seq_luong", False),
                                                   ("seq2seq_luong_feed", True)]):
            member = g2p_ensemble.member_command(args, preset, index, 0,
                                                 str(origin / f"member-{index + 1}"), reverse)
            assert member[1:5] == ["-m", "seqzoo", "recipe", "g2p"]
            assert main(member[3:]) == 0
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(command) == 0
    return origin, out, command, printed.getvalue()


def test_ensemble_presets_member_commands_and_cores(monkeypatch):
    settings = g2p_settings.settings_for(40)
    assert settings["ensemble"] == 2 and settings["reversed_members"] == 1
    assert g2p_settings.settings_for(10)["ensemble"] == 1
    assert g2p_settings.settings_for(11)["ensemble"] == 2
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
    # The member's own settings come last, so they win over the user's; `--member`
    # has it exit with status 3 when its pace projects too few steps.
    assert command[-11:] == ["--set", "units=8", "--set", "ensemble=1", "--set", "seed=6",
                             "--set", "reverse=true", "--set", "min_steps=0", "--member"]
    command = g2p_ensemble.member_command(args, "seq2seq_luong", 0, 5, "o/member-1",
                                          min_steps=6000)
    assert command[-5:] == ["--set", "reverse=false", "--set", "min_steps=6000", "--member"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert g2p_ensemble.core_groups(2) == [[0, 2], [1, 3]]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert g2p_ensemble.core_groups(2) == [None, None]


def test_ensemble_recipe_end_to_end_on_a_slice(ensembles):
    """Members train side by side in their own processes, each going on from
    the same member of a finished ensemble (`--init`), and decode as one."""
    from seqzoo.recipes.g2p import dictionary as g2p

    origin, out, _, printed = ensembles
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
        # --init: each member went on from the same member of `origin`.
        start = json.loads((origin / f"member-{index}" / "results.json").read_text())
        assert "init" not in start
        own = json.loads((folder / "results.json").read_text())
        assert own["init"] == member["init"] and own["settings"]["reverse"] == (index == 2)
        assert member["init"]["folder"] == str(origin / f"member-{index}")
        assert member["init"]["train_steps"] == start["train_steps"]
        assert member["init"]["total_train_steps"] == start["train_steps"]
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


def test_finished_members_are_reused_and_other_commands_retrain(ensembles, capsys):
    origin, out, command, _ = ensembles
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
    # must match the finished run's record. `origin`'s members were trained
    # by the ensemble's member command lines without --init.
    args = argparse.Namespace(budget=None, limit=40, dictionary=None, set=set_items(command),
                              _splits=record["data"]["splits"])
    folder = str(origin / "member-2")
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
    # A member that went on from another run (--init) is finished for the
    # command with that --init only.
    args.init, args._splits = str(origin), record["data"]["splits"]
    folder = str(out / "member-2")
    went_on = g2p_ensemble.member_command(args, "seq2seq_luong_feed", 1, 0, folder,
                                          reverse=True)
    assert went_on[went_on.index("--init") + 1] == str(origin / "member-2")
    assert g2p_ensemble._finished(folder, went_on, args)
    assert not g2p_ensemble._finished(folder, same, args)  # the same run without --init


def test_members_decodes_finished_runs_as_one_ensemble_and_checks_them(
        ensembles, tmp_path, capsys):
    """`--members` decodes finished runs without training: the same
    members give the ensemble's own results, and runs on other data, folders
    without a model and an --out that holds a trained run are refused."""
    from seqzoo.models import Seq2SeqEnsemble
    from seqzoo.recipes.g2p import dictionary as g2p

    _, out, _, _ = ensembles
    first, second = out / "member-1", out / "member-2"
    second_record = json.loads((second / "results.json").read_text())
    both = tmp_path / "both"
    command = ["recipe", "g2p", "--limit", "40", "--members", f"{first},{second}",
               "--out", str(both)] + TINY
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "decoding 2 finished runs as one ensemble" in printed and "right to left" in printed
    assert "Epoch" not in printed and not (both / "model.keras").exists()
    record = json.loads((both / "results.json").read_text())
    assert record["ensemble"] == 2 and record["combined_from"] == [str(first), str(second)]
    assert [m["settings"]["reverse"] for m in record["members"]] == [False, True]
    assert [m["model"] for m in record["members"]] == ["seq2seq_luong", "seq2seq_luong_feed"]
    # The ensemble's own results: the same outputs (those of the recipe's
    # decoder of the two members, as the ensemble's test checks) and scores.
    ensemble = json.loads((out / "results.json").read_text())
    assert (both / "test_predictions.tsv").read_text() == \
        (out / "test_predictions.tsv").read_text()
    for name in ("greedy", "beam3"):  # all but the seconds taken
        assert {**record["test"][name], "seconds": 0} == {**ensemble["test"][name], "seconds": 0}
    assert record["ensemble_dev"] == ensemble["ensemble_dev"]
    lexicon = g2p.load_cmudict()[0]
    splits = g2p.limit(g2p.split_lexicon(lexicon), 40)
    max_length, width = g2p_decode.lengths(lexicon, g2p.pairs(lexicon, splits["train"]))
    rows = [line.split("\t") for line in (both / "test_predictions.tsv").read_text().splitlines()]
    assert record["test"]["greedy"]["wer"] == g2p.score(
        [row[1] for row in rows[1:]], [lexicon[w] for w in splits["test"]])["wer"]
    # Members that read the same way decode as one Seq2SeqEnsemble (here a
    # run beside itself).
    same_way = tmp_path / "same-way"
    assert main(["recipe", "g2p", "--limit", "40", "--members", f"{first},{first}",
                 "--out", str(same_way)] + TINY) == 0
    capsys.readouterr()
    rows = [line.split("\t")
            for line in (same_way / "test_predictions.tsv").read_text().splitlines()]
    assert [row[1] for row in rows[1:]] == g2p_decode.transcribe(
        Seq2SeqEnsemble.load([first, first]), splits["test"], max_length=max_length,
        width=width)
    # An --out that holds combined results may be written again.
    again = argparse.Namespace(members=f"{first},{second}", model=None, budget=None,
                               out=str(both))
    assert g2p_runs.member_folders(again) == [str(first), str(second)]
    trained = tmp_path / "trained"  # an --out that holds a trained run's results
    trained.mkdir()
    (trained / "results.json").write_text(json.dumps({"task": "g2p-cmudict", "model": "x"}))
    refused = [
        (["--limit", "30", "--members", f"{first},{second}", "--out", str(tmp_path / "x")],
         f"{first}: trained on other data"),
        # The same counts of words from another split.
        (["--limit", "40", "--members", f"{first},{second}", "--out", str(tmp_path / "x"),
          "--set", "split_salt=7"], "salt ''); this run's splits are"),
        (["--limit", "40", "--members", f"{first},{tmp_path / 'none'}", "--out",
          str(tmp_path / "x")], f"{tmp_path / 'none'}: expected a finished run with model.keras"),
        (["--limit", "40", "--members", f"{first},{second}", "--out", str(second)],
         "would overwrite that run's results"),
        (["--limit", "40", "--members", str(first), "--out", str(trained)],
         "--members would overwrite them"),
        (["--limit", "40", "--members", f"{first},", "--out", str(tmp_path / "x")],
         "expected --members DIR[,DIR...]"),
        (["--budget", "5", "--members", str(first), "--out", str(tmp_path / "x")],
         "it does not take --model or --budget"),
    ]
    for options, message in refused:
        assert main(["recipe", "g2p"] + options + TINY) == 2, options
        assert message in capsys.readouterr().err, options
    assert json.loads((second / "results.json").read_text()) == second_record


def test_init_goes_on_training_from_a_finished_run_and_checks_it(ensembles, tmp_path, capsys):
    """`--init DIR` starts from the weights of a finished run (with a
    learning rate of 0 they come back unchanged) and records the run it
    went on from, adding up the training of the chain of runs before; other
    data, another architecture, a missing run and an --out that would
    overwrite it are refused."""
    from seqzoo.models.registry import load

    # The ensemble's left-to-right member, itself gone on from `origin`'s
    # (its seed does not have to match).
    first, more = ensembles[1] / "member-1", tmp_path / "more"
    base = ["recipe", "g2p", "--limit", "40", "--set", "epochs=1"]
    before = json.loads((first / "results.json").read_text())
    assert before["init"]["total_train_steps"] > 0
    capsys.readouterr()
    assert main(base + ["--init", str(first), "--out", str(more)] + TINY
                + ["--set", "learning_rate=0"]) == 0
    assert f"starting from the weights of {first} ({before['train_steps']} steps" in \
        capsys.readouterr().out
    record = json.loads((more / "results.json").read_text())
    assert record["init"]["folder"] == str(first)
    assert record["init"]["train_steps"] == before["train_steps"]
    assert record["init"]["best_dev_wer"] == before["best_dev"]["dev_wer"]
    # Going on from a continued run adds up the chain's training.
    assert record["init"]["total_train_steps"] == (before["train_steps"]
                                                   + before["init"]["total_train_steps"])
    for old, new in zip(load(first, compile=False).get_weights(),
                        load(more, compile=False).get_weights()):
        np.testing.assert_array_equal(old, new)
    assert record["test"]["greedy"]["wer"] == before["test"]["greedy"]["wer"]
    # The starting weights are scored first (epoch 0) and compete for the best:
    # unchanged, they stay it.
    start = record["dev_history"][0]
    assert start["epoch"] == 0 and start["step"] == 0
    assert start["dev_wer"] == before["best_dev"]["dev_wer"]
    assert record["best_dev"]["epoch"] == 0
    capsys.readouterr()
    refused = [
        (["--limit", "30", "--init", str(first)], f"--init {first}: trained on other data"),
        (["--limit", "40", "--init", str(first), "--set", "units=12"],
         "units=16 there, 12 here"),
        (["--limit", "40", "--init", str(first), "--set", "reverse=true"],
         "reverse=False there, True here"),
        (["--limit", "40", "--init", str(tmp_path / "none")], "expected a finished run"),
        (["--limit", "40", "--init", str(first), "--set", "ensemble=2"],
         f"{first / 'member-1'} has none"),
        (["--limit", "40", "--init", str(first), "--members", str(first)],
         "it does not take --init"),
    ]
    for options, message in refused:
        assert main(["recipe", "g2p", "--set", "epochs=1", "--out", str(tmp_path / "x")]
                    + TINY + options) == 2, options
        assert message in capsys.readouterr().err, options
    assert main(base + ["--init", str(first), "--out", str(first)] + TINY) == 2
    assert "would overwrite the run it starts from" in capsys.readouterr().err
    assert json.loads((first / "results.json").read_text()) == before
