"""`seqzoo demo sort`: the letter-sorting demo (`seqzoo.demos.sort`)."""

import os

from seqzoo.cli.common import progress_verbosity

MODELS = ("seq2seq_basic", "seq2seq_luong", "seq2seq_luong_feed", "seq2seq_bahdanau")
DESCRIPTION = (
    "Train a seq2seq model to sort the letters of words ('hello' -> 'ehllo') on the "
    "shipped words of 1-8 letters, print held-out accuracy by word length (up to 20 "
    "letters), sort examples, save the model and draw accuracy and attention pictures. "
    "With --model-path, sort the given words with a saved model."
)


def run(args):
    from seqzoo.demos.sort import run as run_sort

    args.verbose = 2 if args.quiet else progress_verbosity()
    return run_sort(args)


def add_parser(commands):
    demo = commands.add_parser("demo", help="run a demo")
    demos = demo.add_subparsers(dest="demo", metavar="DEMO", required=True)
    p = demos.add_parser("sort", help="train a seq2seq model to sort the letters of words",
                         description=DESCRIPTION)
    p.add_argument("words", nargs="*", help="words to sort with --model-path")
    p.add_argument("--model", default="seq2seq_luong", choices=MODELS,
                   help="model preset (default: seq2seq_luong)")
    p.add_argument("--model-path", help="sort WORDS with a saved model (a .keras file or a "
                   "folder from --out) instead of training")
    p.add_argument("--compare", action="store_true",
                   help="train the basic model and the attention model and compare them")
    p.add_argument("--min-length", type=int, default=1, help="shortest training word")
    p.add_argument("--max-length", type=int, default=8, help="longest training word")
    p.add_argument("--eval-max-length", type=int, default=20,
                   help="evaluate on held-out words up to this length (default 20)")
    p.add_argument("--train-size", type=int, default=10000,
                   help="training words when data is generated (default 10000)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=0.005)
    p.add_argument("--units", type=int, default=64, help="encoder units per direction")
    p.add_argument("--embedding-dim", type=int, default=32)
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy search")
    p.add_argument("--coverage", action="store_true",
                   help="coverage attention (with seq2seq_luong_feed or seq2seq_bahdanau)")
    p.add_argument("--no-augment", action="store_true",
                   help="do not shuffle the letters of training words each epoch")
    p.add_argument("--out", default=os.path.join("runs", "sort"), help="output folder")
    p.add_argument("--data-dir", help="data folder (default: the shipped data/ for 1-8 "
                   "letters, else OUT/data-MIN-MAX, generated)")
    p.add_argument("--make-data", action="store_true",
                   help="only write the data files (to --data-dir, default data/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true",
                   help="one line per epoch instead of a progress bar (also when the "
                   "output is not a terminal)")
    return demo
