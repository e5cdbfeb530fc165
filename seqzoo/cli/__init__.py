"""The `seqzoo` command: `seqzoo COMMAND --flags`.

One module per subcommand, each with `add_parser(commands)` and `run(args)`.
Subcommands import what they need when they run, so `seqzoo --help` is
quick. Errors that come from bad input (files, arguments) print one line to
stderr and exit with status 2; they never print a traceback.
"""

import argparse
import os
import sys

from seqzoo import __version__
from seqzoo.cli import (
    average,
    bench,
    demo,
    eval,
    export,
    finetune,
    info,
    listing,
    predict,
    recipe,
    train,
)
from seqzoo.errors import SeqzooError

# In the order `seqzoo --help` lists them.
COMMANDS = (info, listing, demo, recipe, train, finetune, average, predict, eval, export,
            bench)


def build_parser():
    """The `seqzoo` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="seqzoo",
        description="A zoo of reference RNN and sequence-to-sequence models for Keras 3.",
        epilog="The Keras backend comes from KERAS_BACKEND (default: tensorflow).",
    )
    parser.add_argument("--version", action="version", version=f"seqzoo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(commands).set_defaults(func=module.run)
    return parser


def main(argv=None):
    """Runs the `seqzoo` command; returns its exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # Every argument after `bench` belongs to `python -m benchmarks`,
        # `--help` included; argparse would take the options for its own.
        return bench.run_arguments(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (SeqzooError, FileNotFoundError) as e:
        # Bad input (files, words, options): one line, no traceback.
        print(f"seqzoo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
