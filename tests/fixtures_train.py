"""Data shared by the training tests (the trainer, `seqzoo train`, distribution)."""

import numpy as np

# `seqzoo train` options of a tiny character seq2seq (the sorting task below).
SETTINGS = ["--model", "seq2seq_luong_small", "--set", "model.units=16",
            "--set", "model.embedding_dim=8", "--set", "num_buckets=1", "--set", "dev_decode=20"]


def sort_data(directory, n, seed, name):
    """`n` words of 2-5 letters a-h and the same words sorted, as `[SRC, TGT]` files."""
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(2, 6))) for _ in range(n)]
    src, tgt = directory / f"{name}.src", directory / f"{name}.tgt"
    src.write_text("".join(w + "\n" for w in words))
    tgt.write_text("".join("".join(sorted(w)) + "\n" for w in words))
    return [str(src), str(tgt)]


def sort_corpus(directory):
    """192 training pairs (6 batches of 32) and 40 dev pairs."""
    return {"train": sort_data(directory, 192, 0, "train"),
            "dev": sort_data(directory, 40, 1, "dev")}
