"""Vocabularies and tokenizers (character, word, SentencePiece) with fixed special ids.

Every tokenizer maps text to lists of ids in which `<pad>`, `<unk>`, `<s>`
and `</s>` are 0, 1, 2 and 3, shares one interface (`Tokenizer`: `encode`,
`decode`, their batch versions, `get_config`, `save`) and is read back with
`load_tokenizer`. `load_embeddings` reads pre-trained word vectors (GloVe,
word2vec, fastText) for a vocabulary. This package needs only numpy and
sentencepiece.
"""

from seqzoo.text.embeddings import PretrainedEmbeddings, load_embeddings
from seqzoo.text.sentencepiece import SentencePieceTokenizer
from seqzoo.text.specials import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    NUM_SPECIAL,
    PAD,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
)
from seqzoo.text.tokenizers import (
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_config,
)
from seqzoo.text.vocabulary import Vocabulary

__all__ = [
    "BOS",
    "BOS_ID",
    "EOS",
    "EOS_ID",
    "NUM_SPECIAL",
    "PAD",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK",
    "UNK_ID",
    "CharTokenizer",
    "PretrainedEmbeddings",
    "SentencePieceTokenizer",
    "Tokenizer",
    "Vocabulary",
    "WordTokenizer",
    "load_embeddings",
    "load_tokenizer",
    "tokenizer_from_config",
]
