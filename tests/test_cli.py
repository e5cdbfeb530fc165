import subprocess
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


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "seqzoo", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"seqzoo {__version__}"
