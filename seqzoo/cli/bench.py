"""`seqzoo bench ARGS...`: runs `python -m benchmarks ARGS...` from a clone of the repository.

Every argument is passed through (`--quick`, `--out DIR`, `--help` ...);
`seqzoo.cli.main` hands them over before its own parser sees them.
"""

import argparse
import os
import sys


def run_arguments(arguments):
    """Runs the benchmark runner with `arguments`; returns the exit status."""
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
        print("seqzoo bench: error: the benchmarks package was not found; run this command "
              "from the root of a clone of the seqzoo repository", file=sys.stderr)
        return 2
    arguments = list(arguments)
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    try:
        return runner.main(arguments, prog="seqzoo bench")
    except SystemExit as e:  # argparse and the runner exit with a status or a message
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(f"seqzoo bench: error: {e.code}", file=sys.stderr)
        return 2


def run(args):
    return run_arguments(args.bench_args)


def add_parser(commands):
    p = commands.add_parser(
        "bench", help="run the benchmark suites (from a clone of the repository)",
        description="Runs `python -m benchmarks` with the arguments that follow, e.g. "
        "`seqzoo bench softmax --quick --out DIR`; `seqzoo bench --help` lists them.",
        add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments of python -m benchmarks")
    return p

