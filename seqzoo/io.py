"""File helpers shared by seqzoo: strict UTF-8 line reading and atomic writes."""

import contextlib
import os
import re
import tempfile

from seqzoo.errors import DataError


def check_file(path, what="file"):
    """Raises `FileNotFoundError` naming `what` unless `path` is a file.

    Args:
        path: the path to check.
        what: how to name the file in the message, e.g. `"source file"`.

    Returns:
        `path` as a string.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    if not os.path.isfile(path):
        raise DataError(f"expected a regular file for the {what}", path=path)
    return path


def read_lines(path, what="file"):
    """Yields `(line_number, text)` for each line of a UTF-8 text file.

    Line numbers start at 1. The line ending (`\\n` or `\\r\\n`) is removed;
    nothing else is stripped. A UTF-8 byte-order mark at the start is dropped.

    Args:
        path: the file to read.
        what: how to name the file in error messages.

    Raises:
        FileNotFoundError: `path` does not exist.
        DataError: a line is not valid UTF-8 (the message names file, line
            and byte offset within the line).
    """
    path = check_file(path, what)
    with open(path, "rb") as f:
        yield from read_stream_lines(f, path)


def read_stream_lines(stream, name):
    """`read_lines` of an open binary stream (e.g. `sys.stdin.buffer`), named `name`."""
    for number, raw in enumerate(stream, start=1):
        text = decode_line(raw, name, number)
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield number, text.rstrip("\n").rstrip("\r")


def decode_line(raw, name, number):
    """`raw` bytes as UTF-8 text; a `DataError` naming `name`, the line and the byte if not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"line is not valid UTF-8 (byte {e.start} of the line: "
            f"{raw[e.start:e.start + 1]!r}); expected UTF-8 text",
            path=name,
            line=number,
        ) from None


def set_default_mode(path):
    """Gives `path` the mode a plain `open()` would (the umask's), e.g. after `mkstemp`'s 0600."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


# The temporary name `atomic_write` writes to: "." + the final name + "." + 8 random
# characters (`tempfile.mkstemp`) + ".tmp".
_PARTIAL = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def remove_partial_writes(directory):
    """Removes the temporary files that writes killed half way (`atomic_write`) left in
    `directory`; returns their names."""
    if not os.path.isdir(directory):
        return []
    names = [n for n in os.listdir(directory) if _PARTIAL.match(n)]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, name))
    return names


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Opens a temporary file beside `path` and renames it over `path` on success.

    A crash or an exception inside the block leaves any existing `path`
    untouched and removes the temporary file.

    Args:
        path: the final file name.
        mode: `"w"` for text or `"wb"` for bytes.
        encoding: the text encoding (ignored for bytes).

    Yields:
        The open temporary file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        set_default_mode(tmp)  # mkstemp creates the file 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
