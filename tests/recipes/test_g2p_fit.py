"""`seqzoo recipe g2p` fits the model size to the steps the budget really gives
(`--set min_steps`): a run projected short stops, and the budgets' smallest
model trains for the time left."""

import json
import sys
import time

import pytest

from seqzoo.cli import main
from seqzoo.errors import InputError
from seqzoo.recipes.g2p import ensemble as g2p_ensemble
from seqzoo.recipes.g2p import fit
from seqzoo.recipes.g2p.settings import BUDGET_SIZES, settings_for
from seqzoo.training.callbacks import WallClockBudget
from tests.recipes.tiny import TINY


class _Model:
    stop_training = False


def _train(floor, budget, now, pace, steps):
    """`steps` batches at `pace` steps/s on the fake clock `now`; returns the steps run
    before `floor` raised, with the exception (or `None`)."""
    for callback in (budget, floor):
        callback.set_model(_Model())
        callback.on_train_begin()
    for step in range(1, steps + 1):
        now[0] += 1.0 / pace
        budget.on_train_batch_end(0)
        try:
            floor.on_train_batch_end(0)
        except fit.TooFewSteps as short:
            return step, short
    return steps, None


def test_the_floor_checks_the_first_measured_pace_once():
    lines = []
    # 600 s at 5 steps/s: about 3,000 steps. The pace is measured after half the
    # 60-s window, 30 s of training after the first step: the check falls there.
    now = [0.0]
    budget = WallClockBudget(600, clock=lambda: now[0], window=60)
    floor = fit.StepFloor(lambda: budget, 3500, log=lines.append)
    steps, short = _train(floor, budget, now, 5.0, 1000)
    assert short is not None and 150 <= steps <= 152
    projection = short.projections[0]
    assert projection["projected_steps"] == pytest.approx(2995, abs=10)
    assert projection["min_steps"] == 3500 and projection["steps"] == steps
    assert projection["steps_per_second"] == pytest.approx(5.0)
    assert "fewer than min_steps=3500; stopping" in lines[0] and len(lines) == 1
    assert "projected 2" in str(short) and "fewer than the 3500" in str(short)
    # Enough steps: the size stays, and no later check stops the run.
    now = [0.0]
    budget = WallClockBudget(600, clock=lambda: now[0], window=60)
    floor = fit.StepFloor(lambda: budget, 2500, log=lines.append)
    steps, short = _train(floor, budget, now, 5.0, 1000)
    assert short is None and steps == 1000 and len(lines) == 2
    assert "at least min_steps=2500; the size stays" in lines[1]
    # Before training begins (no budget yet) it waits.
    floor = fit.StepFloor(lambda: None, 10)
    floor.on_train_batch_end(0)
    assert floor.projection is None


def test_min_steps_by_budget_and_by_what_the_user_chose():
    assert settings_for(40)["min_steps"] == 6000
    assert settings_for(BUDGET_SIZES[0][0])["min_steps"] == 0
    # An explicit size keeps it, unless min_steps is given as well.
    assert settings_for(40, ["units=256"])["min_steps"] == 0
    assert settings_for(40, ["ensemble=1"])["min_steps"] == 0
    assert settings_for(40, ["dropout=0.3"])["min_steps"] == 6000
    assert settings_for(40, ["units=256", "min_steps=100"])["min_steps"] == 100
    assert settings_for(40, ["min_steps=0"])["min_steps"] == 0
    # So does a size chosen by --model or --init (a member's command names both).
    assert settings_for(40, size_chosen=True)["min_steps"] == 0
    assert settings_for(40, ["min_steps=6000"], size_chosen=True)["min_steps"] == 6000
    # The smallest size has nothing smaller to fall back to.
    with pytest.raises(InputError, match="min_steps=100: .* needs --budget over 10 minutes"):
        settings_for(5, ["min_steps=100"])
    with pytest.raises(InputError, match="needs --budget over"):
        settings_for(None, ["min_steps=100"])
    with pytest.raises(InputError, match="min_steps"):
        settings_for(40, ["min_steps=-1"])


def _short_pace(monkeypatch, left=10.0):
    """Every measured pace projects `left` more steps: the first check falls short."""
    monkeypatch.setattr(WallClockBudget, "pace", lambda self: 1.0)
    monkeypatch.setattr(WallClockBudget, "steps_left", lambda self: left)


def test_a_run_projected_short_trains_the_smallest_model_for_the_time_left(
        tmp_path, capsys, monkeypatch):
    _short_pace(monkeypatch)
    command = ["recipe", "g2p", "--limit", "40", "--budget", "11", "--set", "ensemble=1",
               "--set", "min_steps=1000", "--set", "epochs=1"] + TINY
    # A member process stops at its first pace and leaves its projection.
    member = tmp_path / "member"
    assert main(command + ["--out", str(member), "--member"]) == fit.TOO_FEW_STEPS
    projection = json.loads((member / fit.PROJECTION_FILE).read_text())
    assert projection["projected_steps"] == projection["steps"] + 10
    assert projection["min_steps"] == 1000
    assert not (member / "results.json").exists() and not (member / "model.keras").exists()
    # A run of its own goes on with the smallest model for the time left.
    out = tmp_path / "run"
    assert main(command + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fewer than min_steps=1000: training seq2seq_luong at the budgets' smallest" \
        in printed
    record = json.loads((out / "results.json").read_text())
    assert record["budget_minutes"] == 11 and record["model"] == "seq2seq_luong"
    fitted = record["size_fit"]
    assert fitted["min_steps"] == 1000 and 10 < fitted["minutes_left"] < 11
    assert fitted["projections"][0]["projected_steps"] == fitted["projections"][0]["steps"] + 10
    # The smallest row's settings under the same overrides, with no check of its own.
    assert record["settings"]["min_steps"] == 0 and record["settings"]["ensemble"] == 1
    assert record["settings"]["units"] == 16  # TINY's, as for the run it replaced
    assert record["settings"]["average_from"] is None  # the smallest row's, not the members'
    assert (out / "model.keras").exists() and not (out / fit.PROJECTION_FILE).exists()
    # Projected with enough steps, the member trains on and records its check;
    # the projection the earlier run left is gone.
    _short_pace(monkeypatch, left=5000.0)
    assert main(command + ["--out", str(member), "--member"]) == 0
    record = json.loads((member / "results.json").read_text())
    assert record["size_check"]["projected_steps"] == record["size_check"]["steps"] + 5000
    assert "size_fit" not in record and not (member / fit.PROJECTION_FILE).exists()


def test_an_ensemble_whose_member_falls_short_stops_the_others_and_goes_on(
        tmp_path, capsys, monkeypatch):
    command = g2p_ensemble.member_command

    def member(args, preset, index, seed, out, reverse=False, min_steps=0):
        real = command(args, preset, index, seed, out, reverse, min_steps)
        assert real[-1] == "--member" and f"min_steps={min_steps}" in real
        assert min_steps == 6000  # passed on to each member
        if index == 1:  # a member still training: stopped by the ensemble
            return [sys.executable, "-c", "import time; time.sleep(120)"]
        projection = {"minutes": 0.8, "steps": 100, "steps_per_second": 2.0,
                      "projected_steps": 1300, "min_steps": min_steps}
        return [sys.executable, "-c", "import json, sys, time; time.sleep(1); "
                f"json.dump({projection!r}, open({str(out)!r} + '/{fit.PROJECTION_FILE}', "
                f"'w')); print('too few'); sys.exit({fit.TOO_FEW_STEPS})"]

    monkeypatch.setattr(g2p_ensemble, "member_command", member)
    out = tmp_path / "run"
    started = time.time()
    # Two members by the budget (TINY's sizes, so min_steps is given as well).
    status = main(["recipe", "g2p", "--limit", "40", "--budget", "11", "--set", "epochs=1",
                   "--set", "min_steps=6000", "--out", str(out)] + TINY)
    assert status == 0 and time.time() - started < 100
    captured = capsys.readouterr()
    assert "[member 1] too few" in captured.out and "failed" not in captured.err
    assert "about 1300 steps, fewer than min_steps=6000" in captured.out
    record = json.loads((out / "results.json").read_text())
    assert record["size_fit"]["projections"] == [{"member": 1, "minutes": 0.8, "steps": 100,
                                                  "steps_per_second": 2.0,
                                                  "projected_steps": 1300, "min_steps": 6000}]
    assert record["size_fit"]["instead_of"]["ensemble"] == 2
    assert "ensemble" not in record and record["settings"]["ensemble"] == 1
    assert (out / "model.keras").exists()
