"""Where beam search's time goes: its pieces timed beside it, in milliseconds per call.

    python -m benchmarks.beam_profile [--batch 64] [--beam 4] [--rounds 7] [--tiny]

On suite `decode`'s model and data (`seq2seq_luong`, 20 source and 20 target
steps, `</s>` disabled), in interleaved rounds: the encoder alone; the
decoder's 20 steps on `batch` rows (greedy's work, without its search); the
same steps on `beam * batch` rows with the encoder memory tiled to every row,
and with one memory row per item (as beam search runs them); then greedy
search and beam search themselves. Beam search minus the encoder and its
steps is the search's own work (ranking, reordering, bookkeeping). Prints one
line per piece: the median and the min-max over rounds.
"""

import argparse

import keras
import numpy as np
from keras import ops

from benchmarks import common, decode
from benchmarks import seq2seq as shared
from seqzoo.decoding import CompiledFunction


def _steps(model, source, rows_per_item, tile_memory, steps):
    """`steps` decoder steps on `rows_per_item` rows per source, greedy-fed."""
    state = model.encode(source)
    shared_names = () if tile_memory else model.beam_shared
    state = {name: value if name in shared_names else keras.tree.map_structure(
        lambda x: ops.repeat(x, rows_per_item, axis=0), value) for name, value in state.items()}
    tokens = ops.ones((ops.shape(source)[0] * rows_per_item,), "int32")

    def body(t, tokens, state):
        logits, state = model.step(tokens, state)
        return t + 1, ops.cast(ops.argmax(logits, -1), "int32"), state

    return ops.while_loop(lambda t, tokens, state: t < steps, body, (0, tokens, state))[1]


def pieces(model, settings, batch, beam):
    """`{name: fn}` of the timed pieces."""
    source = np.asarray(shared.data(settings, batch)[0], "int32")
    source = np.pad(source, ((0, 0), (0, -source.shape[1] % 8)))  # as `search` pads it
    steps = settings["target_length"]
    compiled = CompiledFunction(
        lambda src, rows, tile: _steps(model, src, rows, tile, steps), lambda: model.variables)
    encode = CompiledFunction(model.encode, lambda: model.variables)
    return {
        f"encoder, {batch} sources": lambda: encode(source),
        f"encoder + {steps} steps, {batch} rows": lambda: compiled(source, rows=1, tile=False),
        f"encoder + {steps} steps, {beam * batch} rows, memory tiled":
            lambda: compiled(source, rows=beam, tile=True),
        f"encoder + {steps} steps, {beam * batch} rows, one memory row per item":
            lambda: compiled(source, rows=beam, tile=False),
        "greedy search": decode._decode_fn({"plain": model}, settings, "greedy", batch),
        f"beam search, beam {beam}": decode._decode_fn({"plain": model}, settings,
                                                        f"beam{beam}", batch),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tiny", action="store_true",
                        help="suite decode's tiny model, one call per piece: tests the script")
    args = parser.parse_args(argv)
    settings = dict(decode.SETTINGS["tiny" if args.tiny else "full"])
    run_s = 0.0 if args.tiny else 0.4
    model = shared.model(settings["preset"], settings)
    decode._never_stop(model)
    fns = pieces(model, settings, args.batch, args.beam)
    times = common.milliseconds_per_call(fns, args.rounds, run_s)
    print(f"backend {keras.backend.backend()}, batch {args.batch}, beam {args.beam}, "
          f"{args.rounds} rounds; ms per call: median (min-max)")
    for name, values in times.items():
        print(f"{name}: {np.median(values):.1f} ({min(values):.1f}-{max(values):.1f})")


if __name__ == "__main__":
    main()
