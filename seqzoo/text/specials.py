"""Special tokens and their fixed ids, shared by every vocabulary and model.

Sequences are right padded with `PAD_ID` (0). `BOS` is the decoder's GO
symbol and `EOS` ends every target sequence.
"""

PAD = "<pad>"
UNK = "<unk>"
BOS = "<s>"
EOS = "</s>"

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3

SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
NUM_SPECIAL = len(SPECIAL_TOKENS)
