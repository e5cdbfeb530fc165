"""`seqzoo recipe g2p`: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary.

Modules: `dictionary` (the CMU dictionary, splits, scoring), `settings` (model sizes by
budget, `--set` types), `single` (one model trained with the trainer),
`ensemble` (members side by side, decoded as one), `decode` (batched
search, rescoring), `runs` (finished runs: `--members`, `--init`), `report`
(test scores, results.json, pictures).
"""

import os
import time

from seqzoo.recipes.g2p.ensemble import combine_members, run_ensemble
from seqzoo.recipes.g2p.runs import check_init, member_folders
from seqzoo.recipes.g2p.settings import model_presets, settings_for
from seqzoo.recipes.g2p.single import run_single


def run(args):
    """`seqzoo recipe g2p`: the whole recipe; returns the exit status."""
    started = time.time()
    settings = settings_for(args.budget, args.set or ())
    presets = model_presets(args, settings)
    folders = member_folders(args) if getattr(args, "members", None) else None
    if getattr(args, "init", None):
        check_init(args, len(presets))
    os.makedirs(args.out, exist_ok=True)
    if folders:
        return combine_members(args, settings, folders, started)
    if len(presets) > 1:
        return run_ensemble(args, settings, presets, started)
    return run_single(args, settings, presets[0], started)
