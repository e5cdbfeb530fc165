"""The README's commands are the ones CI runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert len(ci_lines) == 1, ci_lines
    commands = _readme_commands()
    assert len(commands) >= 2, "README must start with the run and the test commands"
    assert commands[1].strip() == ci_lines[0].strip()


def test_fetch_wheels_downloads_keras_for_the_gpu_machine(tmp_path):
    """benchmarks/fetch_wheels.sh asks pip for CPython 3.12 manylinux wheels, into .whl/."""
    import os
    import shutil
    import subprocess

    (tmp_path / "benchmarks").mkdir()
    script = tmp_path / "benchmarks" / "fetch_wheels.sh"
    shutil.copy(ROOT / "benchmarks" / "fetch_wheels.sh", script)
    python = tmp_path / "fake-python"
    python.write_text('#!/usr/bin/env bash\necho "call: $*"\n')  # records pip's arguments
    python.chmod(0o755)

    def run(*args, **env):
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                              env={**os.environ, "PYTHON": str(python), **env}, cwd=ROOT)

    def pip_call(done):
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stdout.splitlines() if line.startswith("call: "))

    call = pip_call(run("editdistance"))
    assert (tmp_path / ".whl").is_dir()
    assert call.startswith("call: -m pip download -q --no-deps --only-binary=:all: "
                           "--python-version 3.12 --implementation cp ")
    assert "--platform manylinux2014_x86_64" in call
    assert call.endswith(" -d .whl keras namex optree editdistance")
    call = pip_call(run(KERAS_SPEC="keras==3.15.1", PYTHON_VERSION="3.11"))
    assert "--python-version 3.11 " in call and call.endswith(" -d .whl keras==3.15.1 namex optree")
    usage = run("--help")
    assert usage.returncode == 0 and "KERAS_SPEC" in usage.stdout and "call:" not in usage.stdout
    bad = run("--bad")
    assert bad.returncode == 2 and "usage: bash benchmarks/fetch_wheels.sh" in bad.stderr


def test_docs_and_scripts_refer_to_nothing_outside_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
             ROOT / "benchmarks" / "README.md", *sorted((ROOT / "benchmarks").glob("*.sh"))]
    outside = re.compile(r"\.\./shared|/work/|\.\./site\b|\.\./\.\./\.\./")
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
             for page in pages
             for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if outside.search(line)]
    assert not found, "\n".join(found)
    assert "/.whl/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
