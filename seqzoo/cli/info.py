"""`seqzoo info`: the versions and the Keras backend seqzoo runs on."""

import importlib.metadata
import platform

from seqzoo import __version__


def run(args):
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


def add_parser(commands):
    return commands.add_parser("info", help="show versions and the Keras backend")
