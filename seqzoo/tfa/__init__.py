"""tensorflow-addons' API on Keras 3, for code that migrates from `tensorflow_addons`.

    from seqzoo import tfa          # instead of: import tensorflow_addons as tfa
    tfa.seq2seq.AttentionWrapper(...)

Only `tfa.seq2seq` is provided; see docs/migrating-from-tfa.md.
"""

from seqzoo.tfa import seq2seq

__all__ = ["seq2seq"]
