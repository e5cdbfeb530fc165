"""The `seqzoo` command: `seqzoo COMMAND --flags`.

One module per subcommand, each with `add_parser(commands)` and `run(args)`.
Subcommands import the recipes and the benchmarks only when they run;
every command, `seqzoo --help` included, imports the package, and with it
Keras and its backend (several seconds of a command's start). Errors that
come from bad input (files, arguments; every `SeqzooError` and `OSError`,
whichever layer raised it) print one line to stderr, `seqzoo COMMAND: error:
...`, and exit with status 2; they never print a traceback. Any other
exception is a bug and keeps its traceback (exit 1).
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


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as the commands' own are."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    """The `seqzoo` argument parser with every subcommand."""
    parser = Parser(
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
    except SeqzooError as e:
        # Bad input (files, words, arguments), whichever layer found it: one
        # line, no traceback. Other exceptions are bugs and keep theirs.
        return _fail(args.command, e)
    except OSError as e:
        # A file or folder the system refused: missing, a directory, no permission,
        # a full disk.
        return _fail(args.command, _os_message(e))
    except KeyboardInterrupt:
        print(f"seqzoo {args.command}: interrupted", file=sys.stderr)
        return 130


def _os_message(error):
    """`path: reason` of an OSError, without Python's `[Errno N]` prefix."""
    reason = error.strerror or str(error)
    # A rename (os.replace) names its source first and the target second: the target
    # is the user's.
    name = error.filename2 if error.filename2 is not None else error.filename
    if name is not None:
        return f"{name}: {reason}"
    return reason


def _fail(command, message):
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"seqzoo {command}: error: {text}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
