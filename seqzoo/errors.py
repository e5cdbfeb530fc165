"""Exception types raised by seqzoo.

Every error says what was wrong and where: the argument and the value
received, or the file and the 1-based line number.
"""


class SeqzooError(Exception):
    """Base class of the errors seqzoo raises on purpose."""


class ArgumentError(SeqzooError, ValueError):
    """An argument outside what it accepts; the message names the argument and
    the value received (`Expected a positive integer. Received: beam_size=0`)."""


class DataError(SeqzooError, ValueError):
    """Bad content in a data, vocabulary or corpus file.

    Args:
        message: what was wrong and what was expected.
        path: the file, when the error is about one.
        line: the 1-based line number in `path`, when known.
    """

    def __init__(self, message, path=None, line=None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)


class VocabularyError(SeqzooError, ValueError):
    """A vocabulary cannot be built or used as asked."""


class TokenizerError(SeqzooError, ValueError):
    """A tokenizer model is missing, corrupt or cannot be trained as asked."""


class InputError(SeqzooError, ValueError):
    """Bad input from the user: a word, an option, a path that cannot be used."""
