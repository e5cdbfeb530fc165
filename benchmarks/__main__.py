"""Runs benchmark suites: `python -m benchmarks [SUITE ...] [--backend B] [--quick] [--out DIR]`.

Suites: rnn, decode, seq2seq, softmax, tfa, embeddings (docs/benchmarks.md describes
them).

Writes DIR/results.json (every figure with its machine, device, backend,
library versions, date and settings), DIR/results.md (tables) and PNG charts
(benchmarks/plots.py).
"""

import argparse
import importlib
import os
import shlex
import sys

# Suite name -> module; imported only when run, after the backend is chosen.
SUITES = {
    "rnn": "benchmarks.rnn",
    "decode": "benchmarks.decode",
    "seq2seq": "benchmarks.seq2seq",
    "softmax": "benchmarks.softmax",
    "tfa": "benchmarks.tfa",
    "embeddings": "benchmarks.embeddings",
    "onmt": "benchmarks.onmt",
}
# Run when no suite is named: all but `onmt`, which trains in two toolkits for
# several minutes and needs OpenNMT-py's side environment.
DEFAULT_SUITES = [name for name in SUITES if name != "onmt"]
BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_OUT = "benchmarks/results/latest"


def build_parser(prog="python -m benchmarks"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run seqzoo benchmark suites and write results.json and results.md.",
    )
    parser.add_argument(
        "suites", nargs="*", metavar="SUITE",
        help=f"suites to run, from {list(SUITES)} (default: all but onmt)",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS,
        help="Keras backend (default: KERAS_BACKEND, else tensorflow)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true",
        help="fewer configurations, smaller shapes, fewer repeats (under a minute on 2 CPU cores)",
    )
    size.add_argument(
        "--tiny", action="store_true",
        help="a few seconds, to test the runner; the figures mean nothing",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a suite setting, e.g. --set batch=32 or "
        "--set rnn.configs=lstm-uni-1,gru-bi-2 (repeatable)",
    )
    parser.add_argument("--note", help="free text stored with the results, e.g. 'shared, noisy VM'")
    return parser


def _select_backend(name):
    """Sets KERAS_BACKEND before Keras is imported; returns the backend in use."""
    if name:
        loaded = sys.modules.get("keras")
        if loaded is not None and loaded.backend.backend() != name:
            raise SystemExit(
                f"Keras is already imported with backend {loaded.backend.backend()!r}; "
                f"cannot switch to --backend {name}"
            )
        os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # JAX would otherwise take most of the GPU memory and starve the torch comparison.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import keras

    return keras.backend.backend()


def main(argv=None, prog="python -m benchmarks"):
    args = build_parser(prog).parse_args(argv)
    names = args.suites or DEFAULT_SUITES
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise SystemExit(f"Unknown suite(s) {unknown}; expected some of {list(SUITES)}")
    from benchmarks import common

    modules = {name: importlib.import_module(module) for name, module in SUITES.items()}
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    plans, used = {}, set()
    for name in names:
        try:
            plans[name], suite_used = common.apply_overrides(
                name, modules[name].SETTINGS[size], args.overrides
            )
            modules[name].check_settings(plans[name])
        except ValueError as error:
            raise SystemExit(str(error)) from None
        used |= suite_used
    unused = [item for item in args.overrides if item not in used]
    if unused:
        raise SystemExit(f"No suite among {names} has the setting(s) {unused}")

    backend = _select_backend(args.backend)
    context = common.run_context(backend, note=args.note)
    context["size"] = size
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"benchmarks: {', '.join(names)} ({size}) on {backend}, {context['device']['name']}")
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    records = []
    for name in names:
        try:
            records += modules[name].run(plans[name], context, log=log)
        except ValueError as error:  # a setting the backend cannot honour
            raise SystemExit(f"{name}: {error}") from None
        # After every suite, so that a run cut short keeps the suites it finished.
        json_path, md_path = common.write_results(args.out, records, modules, command=command)
        log(f"wrote {json_path} and {md_path}")
    from benchmarks import plots

    # Every record of the folder, so the charts cover suites merged from earlier runs.
    for path in plots.write_plots(args.out, common.read_records(args.out)):
        log(f"wrote {path}")
    return 1 if any(r.get("error") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
