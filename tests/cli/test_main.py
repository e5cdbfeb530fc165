import runpy
import sys

import pytest

from seqzoo import __version__
from seqzoo.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "info" in capsys.readouterr().out


def test_info_reports_versions_and_backend(capsys):
    import keras

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"seqzoo {__version__}" in out
    assert f"backend {keras.backend.backend()}" in out


def test_unknown_command_exits_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, status, stream, text", [
    (["--version"], 0, "out", f"seqzoo {__version__}"),
    (["no-such-command"], 2, "err", "invalid choice"),
])
def test_module_entry_point_runs(argv, status, stream, text, monkeypatch, capsys):
    # `python -m seqzoo ...` runs seqzoo/__main__.py as `__main__`, here in
    # this process: its exit status is the command's.
    monkeypatch.setattr(sys, "argv", ["seqzoo", *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("seqzoo", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == status
    assert text in getattr(capsys.readouterr(), stream)


def test_bench_passes_every_argument_through(tmp_path, capsys):
    # Options before the suite name, as `seqzoo bench --quick --out DIR` gives them.
    assert main(["bench", "--tiny", "--out", str(tmp_path), "softmax"]) == 0
    assert (tmp_path / "results.json").is_file()
    capsys.readouterr()
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: seqzoo bench") and "--quick" in out and "--out" in out


def test_every_command_has_help(capsys):
    from seqzoo.cli import COMMANDS

    for module in COMMANDS[:-1]:  # `bench --help` is the runner's, tested above
        name = module.add_parser.__module__.rsplit(".", 1)[1]
        name = {"listing": "list"}.get(name, name)
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0, name
        assert capsys.readouterr().out.startswith(f"usage: seqzoo {name}"), name
