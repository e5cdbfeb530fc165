"""`seqzoo recipe g2p` on finished runs: `--members` decodes them, `--init` goes on training."""

import contextlib
import io
import json

import numpy as np
import pytest

from seqzoo.cli import main
from seqzoo.recipes.g2p import decode as g2p_decode
from seqzoo.recipes.g2p import runs as g2p_runs
from tests.recipes.tiny import TINY


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """Two single-model runs on the first 40 words: `first` right to left, `second`
    left to right with seed 4 and 12 units. The tests only read them."""
    root = tmp_path_factory.mktemp("g2p-runs")
    first, second = root / "first", root / "second"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["recipe", "g2p", "--limit", "40", "--set", "epochs=1",
                     "--set", "reverse=true", "--out", str(first)] + TINY) == 0
        assert main(["recipe", "g2p", "--limit", "40", "--set", "epochs=1", "--set", "seed=4",
                     "--out", str(second)] + TINY + ["--set", "units=12"]) == 0
    return first, second


def test_members_decodes_finished_runs_as_one_ensemble_and_checks_them(
        finished_runs, tmp_path, capsys):
    """`--members` decodes finished runs without training: the same
    members give the ensemble's own results, and runs on other data, folders
    without a model and an --out that holds a trained run are refused."""
    from seqzoo.models import Seq2SeqEnsemble

    first, second = finished_runs
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
    # Members that read the same way decode as one Seq2SeqEnsemble (here a
    # run beside itself).
    same_way = tmp_path / "same-way"
    assert main(["recipe", "g2p", "--limit", "40", "--members", f"{second},{second}",
                 "--out", str(same_way)] + TINY) == 0
    capsys.readouterr()
    rows = [line.split("\t")
            for line in (same_way / "test_predictions.tsv").read_text().splitlines()]
    ensemble = Seq2SeqEnsemble.load([second, second])
    assert [row[1] for row in rows[1:]] == g2p_decode.transcribe(
        ensemble, splits["test"], max_length=max_length, width=width)
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


def test_init_goes_on_training_from_a_finished_run_and_checks_it(finished_runs, tmp_path,
                                                                 capsys):
    """`--init DIR` starts from the weights of a finished run (with a
    learning rate of 0 they come back unchanged) and records the run it
    went on from; other data, another architecture, a missing run and an
    --out that would overwrite it are refused."""
    from seqzoo.models.registry import load

    # The left-to-right run of 12 units (its seed does not have to match).
    first, more = finished_runs[1], tmp_path / "more"
    base = ["recipe", "g2p", "--limit", "40", "--set", "epochs=1"]
    units = ["--set", "units=12"]
    before = json.loads((first / "results.json").read_text())
    capsys.readouterr()
    assert main(base + ["--init", str(first), "--out", str(more)] + TINY + units
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
    assert main(base + ["--init", str(more), "--out", str(third)] + TINY + units) == 0
    chain = json.loads((third / "results.json").read_text())["init"]
    assert chain["total_train_steps"] == before["train_steps"] + record["train_steps"]
    capsys.readouterr()
    refused = [
        (["--limit", "30", "--init", str(first)] + units,
         f"--init {first}: trained on other data"),
        (["--limit", "40", "--init", str(first), "--set", "units=16"],
         "units=12 there, 16 here"),
        (["--limit", "40", "--init", str(first), "--set", "reverse=true"] + units,
         "reverse=False there, True here"),
        (["--limit", "40", "--init", str(tmp_path / "none")] + units, "expected a finished run"),
        (["--limit", "40", "--init", str(first), "--set", "ensemble=2"] + units,
         f"{first / 'member-1'} has none"),
        (["--limit", "40", "--init", str(first), "--members", str(first)] + units,
         "it does not take --init"),
    ]
    for options, message in refused:
        assert main(["recipe", "g2p", "--set", "epochs=1", "--out", str(tmp_path / "x")]
                    + TINY + options) == 2, options
        assert message in capsys.readouterr().err, options
    assert main(base + ["--init", str(first), "--out", str(first)] + TINY + units) == 2
    assert "would overwrite the run it starts from" in capsys.readouterr().err
    assert json.loads((first / "results.json").read_text()) == before

