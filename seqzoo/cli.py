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


def _bench(args):
    """Runs the benchmark suites of a repository clone (`python -m benchmarks`)."""
    # The `seqzoo` script does not put the working directory on the path, so a
    # clone's root must be added to find its `benchmarks` package.
    cwd = os.getcwd()
    if os.path.isfile(os.path.join(cwd, "benchmarks", "__main__.py")) and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        from benchmarks import __main__ as runner
    except ModuleNotFoundError as e:
        if e.name not in ("benchmarks", "benchmarks.__main__"):
            raise
        print(
            "seqzoo bench: error: the benchmarks package was not found; run this command "
            "from the root of a clone of the seqzoo repository",
            file=sys.stderr,
        )
        return 2
    arguments = list(args.bench_args)
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    try:
        return runner.main(arguments)
    except SystemExit as e:  # argparse and the runner exit with a status or a message
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(f"seqzoo bench: error: {e.code}", file=sys.stderr)
        return 2


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
    bench = commands.add_parser(
        "bench",
        help="run the benchmark suites (from a clone of the repository)",
        description="Runs `python -m benchmarks` with the arguments that follow, e.g. "
        "`seqzoo bench softmax --quick`; `seqzoo bench -- --help` lists them.",
        add_help=False,
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="ARGS",
                       help="arguments of python -m benchmarks")
    bench.set_defaults(func=_bench)
    from seqzoo.demos.options import add_parser as add_demo_parser

    add_demo_parser(commands)
    from seqzoo.recipes import add_parser as add_recipe_parser

    add_recipe_parser(commands)
    from seqzoo.commands import add_parsers as add_model_parsers

    add_model_parsers(commands)
    from seqzoo.train_command import add_parser as add_train_parser

    add_train_parser(commands)
    from seqzoo.finetune_command import add_parser as add_finetune_parser

    add_finetune_parser(commands)
    from seqzoo.export import add_parser as add_export_parser

    add_export_parser(commands)
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
