"""`seqzoo recipe g2p`: settings, decoding, ensembles, and the command end to end on a slice."""

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
from seqzoo.recipes.g2p import single as g2p_single

TINY = ["--set", "units=16", "--set", "embedding_dim=8", "--set", "decoder_units=16",
        "--set", "dropout=0",
        "--set", "batch_size=32", "--set", "learning_rate=0.01", "--set", "dev_words=40",
        "--set", "beam_size=3", "--quiet"]


def test_budget_picks_bigger_models_for_more_time_and_set_overrides():
    sizes = [g2p_settings.settings_for(m)["units"] for m in (3, 10, 40, 600)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert g2p_settings.settings_for(40)["epochs"] >= 1000  # the clock stops it
    full = g2p_settings.settings_for(None)
    assert full["units"] >= sizes[-1] and full["epochs"] < 1000
    assert g2p_settings.settings_for(40, ["units=64", "dropout=0.5"])["units"] == 64
    with pytest.raises(InputError, match=r"unknown setting 'unit'; expected one of \[.*'units'"):
        g2p_settings.settings_for(40, ["unit=64"])
    # Typed: the key and the type expected are named.
    with pytest.raises(InputError, match="units='big'; expected an integer >= 1"):
        g2p_settings.settings_for(40, ["units=big"])
    with pytest.raises(InputError, match="dropout=1.5; expected a number in"):
        g2p_settings.settings_for(40, ["dropout=1.5"])
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        g2p_settings.settings_for(40, ["units"])
    assert g2p_settings.settings_for(40, ["learning_rate=1"])["learning_rate"] == 1.0
    with pytest.raises(InputError, match="--budget > 0"):
        g2p_settings.settings_for(0)


def test_recipe_end_to_end_on_a_slice(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["recipe", "g2p", "--limit", "120", "--set", "epochs=3", "--out", str(out),
                   "--set", "average_from=0", "--set", "average_every=2",
                   "--set", "label_smoothing=0.1", "--set", "embedding_dropout=0.1"]
                  + TINY)
    printed = capsys.readouterr().out
    assert status == 0
    assert "first 120 words of each: train 120 words" in printed
    assert "test greedy: WER" in printed and "test beam3: WER" in printed
    for name in ("results.json", "dev_wer.png", "model.keras", "test_predictions.tsv"):
        assert (out / name).stat().st_size > 0
    record = json.loads((out / "results.json").read_text())
    assert record["data"]["splits"]["test"]["words"] == 120
    assert [h["epoch"] for h in record["dev_history"]] == [1, 2, 3]
    averaged = record["averaged_dev"]
    steps = record["dev_history"][-1]["step"]
    assert averaged["step"] == steps == record["train_steps"]
    assert averaged["epoch"] == f"average of {steps // 2} snapshots"
    assert "dev WER" in printed and "average of" in printed
    assert record["best_dev"]["dev_wer"] == min(
        [h["dev_wer"] for h in record["dev_history"]] + [averaged["dev_wer"]])
    losses = [h["loss"] for h in record["dev_history"]]
    assert losses[-1] < losses[0]  # it trains
    for name in ("greedy", "beam3"):
        result = record["test"][name]
        assert result["words"] == 120 and 0 <= result["per"] and 0 <= result["wer"] <= 1
    assert len((out / "test_predictions.tsv").read_text().splitlines()) == 121
    assert record["examples"] and record["train_seconds"] > 0


def test_budget_stops_training(tmp_path):
    out = tmp_path / "run"
    assert main(["recipe", "g2p", "--limit", "400", "--budget", "0.02", "--out", str(out)]
                + TINY) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["settings"]["epochs"] >= 1000
    assert len(record["dev_history"]) < 50
    # 1.2 s of budget: the first steps compile, so allow them some seconds.
    assert record["train_seconds"] < 30


def test_bad_input_is_one_line_with_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("READ  R EH1 D\nZOO\n")
    assert main(["recipe", "g2p", "--dictionary", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert f"{bad}:2: expected a word and its phones" in capsys.readouterr().err
    assert main(["recipe", "g2p", "--model", "lstm_lm", "--limit", "20", "--out",
                 str(tmp_path / "o")] + TINY) == 2
    assert "expected a seq2seq preset" in capsys.readouterr().err
    assert main(["recipe", "g2p", "--model", "seq2seq_lstm", "--limit", "20", "--out",
                 str(tmp_path / "o")] + TINY) == 2
    assert "Received: --model seq2seq_lstm" in capsys.readouterr().err
    assert main(["recipe", "g2p", "--set", "units", "--out", str(tmp_path / "o")]) == 2
    assert not os.path.exists(tmp_path / "o" / "results.json")


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


JAX_WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "tensorboard"):
    sys.modules[name] = None  # as on the borrowed GPU machines
from seqzoo.cli import main
status = main(sys.argv[1:])
assert not [name for name in sys.modules if name.startswith("tensorflow.")]
sys.exit(status)
"""


def test_recipe_runs_on_jax_without_tensorflow(tmp_path):
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("jax") is None:
        pytest.skip("needs jax")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", JAX_WITHOUT_TENSORFLOW, "recipe", "g2p", "--limit", "150",
         "--set", "epochs=1", "--set", "num_buckets=2", "--out", str(out)] + TINY,
        env=dict(os.environ, KERAS_BACKEND="jax"), capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    assert record["machine"]["backend"] == "jax"
    assert record["test"]["beam3"]["words"] == 150 and record["train_steps"] > 0
    assert (out / "model.keras").stat().st_size > 0


def test_training_batches_have_bounded_shapes_on_jax():
    rng = np.random.default_rng(0)
    sources = [list(rng.integers(4, 20, size=int(n))) for n in rng.integers(1, 19, size=400)]
    targets = [list(rng.integers(4, 20, size=int(n))) for n in rng.integers(1, 15, size=400)]
    settings = g2p_settings.settings_for(40, ["batch_size=16", "num_buckets=4"])

    def shapes(batches):
        items = (batches[i] for i in range(len(batches)))
        return {(x["source_ids"].shape, y.shape) for x, y in items}

    on_tf = g2p_single.training_batches(sources, targets, settings, "tensorflow")
    on_jax = g2p_single.training_batches(sources, targets, settings, "jax")
    assert on_tf.pad_to_multiple == 1 and not on_tf.drop_remainder
    assert on_jax.pad_to_multiple == 8 and on_jax.drop_remainder
    bounded = shapes(on_jax)
    assert all(s[0] == 16 and s[1] % 8 == 0 and y[1] % 8 == 0 for s, y in bounded)
    assert len(bounded) < len(shapes(on_tf))
    chosen = g2p_single.training_batches(sources, targets, {**settings, "pad_multiple": 4},
                                        "tensorflow")
    assert chosen.pad_to_multiple == 4
    # A slice smaller than two batches a bucket keeps its partial batches.
    small = g2p_single.training_batches(sources[:100], targets[:100], settings, "jax")
    assert not small.drop_remainder
    assert sum(len(small.batch_indices(i)) for i in range(len(small))) == 100


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


def test_ensemble_recipe_end_to_end_on_a_slice(tmp_path, capsys):
    from seqzoo.models import Seq2SeqEnsemble
    from seqzoo.recipes.g2p import dictionary as g2p

    out = tmp_path / "run"
    status = main(["recipe", "g2p", "--limit", "60", "--set", "epochs=2", "--set", "ensemble=2",
                   "--model", "seq2seq_luong,seq2seq_luong_feed", "--out", str(out)] + TINY)
    printed = capsys.readouterr().out
    assert status == 0
    assert "[member 1] training seq2seq_luong " in printed
    assert "[member 2] training seq2seq_luong_feed " in printed
    assert "ensemble of 2: dev WER" in printed and "test beam3: WER" in printed
    record = json.loads((out / "results.json").read_text())
    assert record["ensemble"] == 2 and record["model"] == "seq2seq_luong,seq2seq_luong_feed"
    members = record["members"]
    assert [m["model"] for m in members] == ["seq2seq_luong", "seq2seq_luong_feed"]
    assert [m["settings"]["seed"] for m in members] == [0, 1]
    assert record["parameters"] == sum(m["parameters"] for m in members)
    for index, member in enumerate(members, 1):
        folder = out / f"member-{index}"
        assert member["folder"] == folder.name and member["test"]["greedy"]["words"] == 60
        for name in ("model.keras", "results.json", "log.txt", "test_predictions.tsv"):
            assert (folder / name).stat().st_size > 0
    # dev_words=40
    assert record["test"]["greedy"]["words"] == 60 and record["ensemble_dev"]["words"] == 40
    # The written predictions are the ensemble's, not a member's.
    rows = [line.split("\t") for line in (out / "test_predictions.tsv").read_text().splitlines()]
    ensemble = Seq2SeqEnsemble.load([out / "member-1", out / "member-2"])
    lexicon = g2p.load_cmudict()[0]
    splits = g2p.limit(g2p.split_lexicon(lexicon), 60)
    max_length, width = g2p_decode.lengths(lexicon, g2p.pairs(lexicon, splits["train"]))
    assert [row[0] for row in rows[1:]] == splits["test"]
    greedy = g2p_decode.transcribe(ensemble, splits["test"], max_length=max_length, width=width)
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


def test_members_of_both_directions_rescore_and_finished_members_are_reused(tmp_path, capsys):
    out = tmp_path / "run"
    command = ["recipe", "g2p", "--limit", "40", "--set", "epochs=1", "--set", "ensemble=2",
               "--set", "reversed_members=1", "--out", str(out)] + TINY
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "member 2: seq2seq_luong, seed 1, right to left" in printed
    record = json.loads((out / "results.json").read_text())
    assert [m["settings"]["reverse"] for m in record["members"]] == [False, True]
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
    same = g2p_ensemble.member_command(args, "seq2seq_luong", 1, 0, folder, reverse=True)
    assert g2p_ensemble._finished(folder, same, args)
    other_seed = g2p_ensemble.member_command(args, "seq2seq_luong", 1, 3, folder, reverse=True)
    other_way = g2p_ensemble.member_command(args, "seq2seq_luong", 1, 0, folder, reverse=False)
    assert not g2p_ensemble._finished(folder, other_seed, args)
    assert not g2p_ensemble._finished(folder, other_way, args)
    args._splits = {"train": {"words": 1, "pronunciations": 1}}
    assert not g2p_ensemble._finished(folder, same, args)
    # --init goes on training each member from the same member of a finished ensemble.
    more = tmp_path / "more"
    assert main(command[:-len(TINY) - 2] + ["--init", str(out), "--out", str(more)] + TINY) == 0
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
    went_on = g2p_ensemble.member_command(args, "seq2seq_luong", 1, 0, folder, reverse=True)
    assert went_on[went_on.index("--init") + 1] == str(out / "member-2")
    assert g2p_ensemble._finished(folder, went_on, args)
    assert not g2p_ensemble._finished(folder, same, args)  # the same run without --init


def test_members_decodes_finished_runs_as_one_ensemble_and_checks_them(tmp_path, capsys):
    """`--members` decodes finished runs without training: the same
    members give the ensemble's own results, and runs on other data, folders
    without a model and an --out that holds a trained run are refused."""
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["recipe", "g2p", "--limit", "40", "--set", "epochs=1",
                 "--set", "reverse=true", "--out", str(first)] + TINY) == 0
    assert main(["recipe", "g2p", "--limit", "40", "--set", "epochs=1", "--set", "seed=4",
                 "--out", str(second)] + TINY + ["--set", "units=12"]) == 0
    capsys.readouterr()
    both = tmp_path / "both"
    command = ["recipe", "g2p", "--limit", "40", "--members", f"{first},{second}",
               "--out", str(both)] + TINY
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "decoding 2 finished runs as one ensemble" in printed and "right to left" in printed
    assert "Epoch" not in printed and not (both / "model.keras").exists()
    record = json.loads((both / "results.json").read_text())
    assert record["ensemble"] == 2 and record["combined_from"] == [str(first), str(second)]
    assert [m["settings"]["reverse"] for m in record["members"]] == [True, False]
    assert [m["settings"]["units"] for m in record["members"]] == [16, 12]
    # The recipe's own decoder of the same two members gives the same outputs.
    from seqzoo.recipes.g2p import dictionary as g2p

    lexicon = g2p.load_cmudict()[0]
    splits = g2p.limit(g2p.split_lexicon(lexicon), 40)
    max_length, width = g2p_decode.lengths(lexicon, g2p.pairs(lexicon, splits["train"]))
    decode = g2p_decode.ensemble_decoder([str(first), str(second)], [True, False],
                                           max_length, width)
    rows = [line.split("\t") for line in (both / "test_predictions.tsv").read_text().splitlines()]
    assert [row[1] for row in rows[1:]] == decode(splits["test"], 1)
    assert record["test"]["greedy"]["wer"] == g2p.score(
        [row[1] for row in rows[1:]], [lexicon[w] for w in splits["test"]])["wer"]
    # An --out that holds combined results may be written again.
    import argparse

    again = argparse.Namespace(members=f"{first},{second}", model=None, budget=None,
                               out=str(both))
    assert g2p_runs.member_folders(again) == [str(first), str(second)]
    trained = tmp_path / "trained"  # an --out that holds a trained run's results
    trained.mkdir()
    (trained / "results.json").write_text(json.dumps({"task": "g2p-cmudict", "model": "x"}))
    refused = [
        (["--limit", "30", "--members", f"{first},{second}", "--out", str(tmp_path / "x")],
         f"{first}: trained on other data"),
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
    assert json.loads((second / "results.json").read_text())["settings"]["units"] == 12


def test_init_goes_on_training_from_a_finished_run_and_checks_it(tmp_path, capsys):
    """`--init DIR` starts from the weights of a finished run (with a
    learning rate of 0 they come back unchanged) and records the run it
    went on from; other data, another architecture, a missing run and an
    --out that would overwrite it are refused."""
    from seqzoo.models.registry import load

    first, more = tmp_path / "first", tmp_path / "more"
    base = ["recipe", "g2p", "--limit", "40", "--set", "epochs=1"]
    assert main(base + ["--out", str(first)] + TINY) == 0
    before = json.loads((first / "results.json").read_text())
    capsys.readouterr()
    assert main(base + ["--init", str(first), "--out", str(more)] + TINY
                + ["--set", "learning_rate=0"]) == 0
    assert f"starting from the weights of {first} ({before['train_steps']} steps" in \
        capsys.readouterr().out
    record = json.loads((more / "results.json").read_text())
    assert record["init"]["folder"] == str(first)
    assert record["init"]["train_steps"] == before["train_steps"]
    assert record["init"]["total_train_steps"] == before["train_steps"]
    assert record["init"]["best_dev_wer"] == before["best_dev"]["dev_wer"]
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
    # Going on from the continued run adds up the chain's training.
    third = tmp_path / "third"
    assert main(base + ["--init", str(more), "--out", str(third)] + TINY) == 0
    chain = json.loads((third / "results.json").read_text())["init"]
    assert chain["total_train_steps"] == before["train_steps"] + record["train_steps"]
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
