"""The `seqzoo` command.

Subcommands import what they need when they run, so `seqzoo --help` is quick.
Errors that come from bad input (files, arguments) print one line to stderr
and exit with status 2; they never print a traceback.
"""

import argparse
import os
import platform
import sys

from seqzoo import __version__


def _info(args):
    """Prints the versions and the Keras backend seqzoo runs on."""
    import importlib.metadata

    import keras

    print(f"seqzoo {__version__}")
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    for package in ("tensorflow", "jax", "torch", "numpy", "sentencepiece"):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{package} {version}")
    return 0


def _list(args):
    """Prints the presets with a description and their main hyperparameters."""
    from seqzoo.models.registry import list_models, summarize

    models = list_models()
    width = max(len(m["name"]) for m in models)
    for m in models:
        print(f"{m['name']:<{width}}  {m['description']}")
        print(f"{'':<{width}}  {m['class']}: {summarize(m['config'])}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="seqzoo",
        description="A zoo of reference RNN and sequence-to-sequence models for Keras 3.",
        epilog="The Keras backend comes from KERAS_BACKEND (default: tensorflow).",
    )
    parser.add_argument("--version", action="version", version=f"seqzoo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser("info", help="show versions and the Keras backend")
    info.set_defaults(func=_info)
    listing = commands.add_parser("list", help="list the model presets of the zoo")
    listing.set_defaults(func=_list)
    from seqzoo.demos.options import add_parser as add_demo_parser

    add_demo_parser(commands)
    return parser


def main(argv=None):
    """Runs the `seqzoo` command; returns its exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from seqzoo.errors import SeqzooError

    try:
        return args.func(args)
    except (SeqzooError, FileNotFoundError) as e:
        # Bad input (files, words, options): one line, no traceback.
        print(f"seqzoo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
