"""`seqzoo recipe g2p`: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary.

Modules: `dictionary` (the CMU dictionary, splits, scoring), `settings` (model sizes by
budget, `--set` types), `single` (one model trained with the trainer),
`ensemble` (members side by side, decoded as one), `decode` (batched
search, rescoring), `runs` (finished runs: `--members`, `--init`), `report`
(test scores, results.json, pictures), `fit` (the size fitted to the steps
the budget gives).
"""

import argparse
import os
import time

from seqzoo.errors import InputError
from seqzoo.recipes.g2p import fit
from seqzoo.recipes.g2p.ensemble import combine_members, run_ensemble
from seqzoo.recipes.g2p.runs import check_init, member_folders
from seqzoo.recipes.g2p.settings import model_presets, settings_for, smallest_settings
from seqzoo.recipes.g2p.single import run_single


def run(args):
    """`seqzoo recipe g2p`: the whole recipe; returns the exit status."""
    started = time.time()
    settings = settings_for(args.budget, args.set or (),
                            size_chosen=bool(args.model or getattr(args, "init", None)))
    presets = model_presets(args, settings)
    folders = member_folders(args) if getattr(args, "members", None) else None
    if getattr(args, "init", None):
        check_init(args, len(presets))
    os.makedirs(args.out, exist_ok=True)
    if folders:
        return combine_members(args, settings, folders, started)
    fit.clear_projection(args.out)
    try:
        if len(presets) > 1:
            return run_ensemble(args, settings, presets, started)
        return run_single(args, settings, presets[0], started)
    except fit.TooFewSteps as short:
        if getattr(args, "member", False):  # the ensemble decides
            fit.write_projection(args.out, short)
            return fit.TOO_FEW_STEPS
        return _smallest_for_the_time_left(args, settings, short, started)


def _smallest_for_the_time_left(args, settings, short, started):
    """Trains the budgets' smallest model for the rest of the budget (`fit`)."""
    left = args.budget - (time.time() - started) / 60
    if left <= 0:
        raise InputError(f"--budget {args.budget:g}: spent before the size check ended")
    small = smallest_settings(args.set or ())  # the same overrides, seed included
    size_fit = {"min_steps": settings["min_steps"], "projections": short.projections,
                "budget_minutes": args.budget, "minutes_left": round(left, 2),
                "instead_of": {key: settings[key] for key in ("model", "ensemble", "units",
                                                              "num_layers", "decoder_units")}}
    print(f"the budget would give about {min(p['projected_steps'] for p in short.projections)} "
          f"steps, fewer than min_steps={settings['min_steps']}: training "
          f"{small['model']} at the budgets' smallest size ({small['units']} units) for the "
          f"{left:.1f} minutes left", flush=True)
    rest = argparse.Namespace(**{**vars(args), "budget": left, "model": None, "init": None})
    return run_single(rest, small, small["model"], started, size_fit=size_fit)
