"""seqzoo: reference RNN and sequence-to-sequence models for Keras 3.

Importing seqzoo needs Keras and one of its backends; TensorFlow is the
default backend but not required (set `KERAS_BACKEND=jax` or `torch`).
"""

__version__ = "0.1.0"

from seqzoo import data, decoding, layers, losses, metrics, models, text  # noqa: E402,F401
from seqzoo.errors import (  # noqa: E402,F401
    DataError,
    InputError,
    SeqzooError,
    TokenizerError,
    VocabularyError,
)
from seqzoo.models import create, list_models, load  # noqa: E402,F401
