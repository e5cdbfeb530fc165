import os
import stat

import pytest

from seqzoo.errors import DataError
from seqzoo.io import atomic_write, read_lines, remove_partial_writes


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("last good\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half written")
            raise RuntimeError("killed")
    assert path.read_text() == "last good\n"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary file left
    with atomic_write(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n"


def test_the_temporary_file_of_a_killed_write_is_found_and_removed(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text("last good\n")
    kept = ["notes.tmp", ".hidden", "run.json.tmp"]  # not atomic_write's temporary names
    for name in kept:
        (tmp_path / name).write_text("x")

    def killed(src, dst):  # a SIGKILL before the rename: no cleanup runs
        raise SystemExit

    monkeypatch.setattr(os, "replace", killed)
    monkeypatch.setattr(os, "remove", lambda p: None)
    with pytest.raises(SystemExit):
        with atomic_write(path) as f:
            f.write("new\n")
    monkeypatch.undo()
    partial = set(os.listdir(tmp_path)) - {"run.json", *kept}
    assert len(partial) == 1 and partial.pop().startswith(".run.json.")
    assert remove_partial_writes(tmp_path) and not remove_partial_writes(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(["run.json", *kept])
    assert path.read_text() == "last good\n"
    assert remove_partial_writes(tmp_path / "missing") == []


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    path = tmp_path / "out.bin"
    with atomic_write(path, "wb") as f:
        f.write(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_read_lines_numbers_lines_and_strips_line_endings(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n\nthree")
    assert list(read_lines(path)) == [(1, "one"), (2, "two"), (3, ""), (4, "three")]


def test_read_lines_names_file_and_line_of_bad_bytes(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\nstill ok\nbad \xff here\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: .*UTF-8") as info:
        list(read_lines(path))
    assert info.value.line == 3 and info.value.path == str(path)


def test_read_lines_missing_file_names_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="source file not found: .*nope.txt"):
        list(read_lines(tmp_path / "nope.txt", what="source file"))
