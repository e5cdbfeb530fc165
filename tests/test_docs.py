"""The documentation matches the code: presets, command lines, links, named files, length.

Pages: README.md, benchmarks/README.md and docs/**/*.md. Nothing here trains
a model.

Command lines are taken from fenced code blocks (except ```python blocks,
which hold Python, and ```text blocks, which hold program output and usage
synopses such as `python -m benchmarks [SUITE ...]`) and from inline code
spans that start with `seqzoo `. In a block, backslash-continued lines are
joined, comments dropped, and each command of a line (split at `&&`, `||`,
`;`, `|`) stripped of redirections, leading `VAR=value` assignments and the
wrappers `time`, `nohup`, `exec`, `taskset -c CPUS` and `timeout SECONDS`.
A command that then runs `seqzoo` (or `.venv/bin/seqzoo`, `python -m seqzoo`)
is parsed by `seqzoo.cli.build_parser()`; `seqzoo bench ARGS` and
`python -m benchmarks ARGS` by `benchmarks.__main__.build_parser()`, which is
what `seqzoo bench` hands its arguments to. An inline span without options
names a command in prose (`seqzoo eval`, `seqzoo demo sort`): it is parsed
with `--help` added, which checks that the command exists without asking for
its required options. No line is skipped for holding a placeholder:
placeholders in the pages (`DIR`, `...`) are values argparse accepts.

Relative links must point into the repository, to a file or folder that
exists (and, for `page.md#anchor`, to a heading of that page); code spans
naming a repository file or folder (`tests/...py`, `benchmarks/...sh`,
`docs/results/`) must name one that exists.
"""

import contextlib
import io
import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 250


def _pages():
    pages = [README, ROOT / "benchmarks" / "README.md"]
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return [page for page in pages if page.is_file()]


def _name(page):
    return page.relative_to(ROOT).as_posix()


FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
NOT_SHELL = {"python", "py", "pycon", "text", "json", "toml", "yaml", "diff"}


def _blocks_and_prose(text):
    """(fenced blocks as (language, [(line number, line)]), prose with blocks blanked)."""
    blocks, prose = [], []
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            blocks.append((match.group(2).lower(), []))
            prose.append("")
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)) \
                and not line.strip().strip(fence[0]):
            fence = None
            prose.append("")
        elif fence is not None:
            blocks[-1][1].append((number, line))
            prose.append("")
        else:
            prose.append(line)
    return blocks, "\n".join(prose)


def _logical_lines(lines):
    """Joins backslash-continued lines: [(first line number, text)]."""
    joined, start, parts = [], None, []
    for number, line in lines:
        if start is None:
            start = number
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        joined.append((start, " ".join(part.strip() for part in parts)))
        start, parts = None, []
    if parts:
        joined.append((start, " ".join(part.strip() for part in parts)))
    return joined


SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}
WRAPPERS = {"time": 0, "nohup": 0, "exec": 0, "taskset": 2, "timeout": 1}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _commands(line):
    """The simple commands of one shell line, as argument lists."""
    line = re.sub(r"(^|\s)\d+(?=[<>])", r"\1", line)  # the file descriptor of `2>`
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)  # `#` starts a comment, as in the shell
    commands, current = [], []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in SEPARATORS:
            commands.append(current)
            current = []
        elif token and set(token) <= set("<>&"):  # a redirection and its target
            index += 1
        else:
            current.append(token)
        index += 1
    commands.append(current)
    return [command for command in commands if command]


def _program(argv):
    """('seqzoo' | 'benchmarks', arguments) of a command, or None."""
    while argv and ASSIGNMENT.match(argv[0]):
        argv = argv[1:]
    while argv and argv[0] in WRAPPERS:
        argv = argv[1 + WRAPPERS[argv[0]]:]
    if not argv:
        return None
    first = argv[0]
    if first == "seqzoo" or first.endswith("/seqzoo"):
        return "seqzoo", argv[1:]
    if re.fullmatch(r"(.*/)?python[0-9.]*", first) and argv[1:2] == ["-m"] \
            and argv[2:3] in (["seqzoo"], ["benchmarks"]):
        return argv[2], argv[3:]
    return None


def _shown_commands():
    """Every command line the pages show: pytest params with a page:line id."""
    found = []
    for page in _pages():
        blocks, prose = _blocks_and_prose(page.read_text(encoding="utf-8"))
        for language, lines in blocks:
            if language in NOT_SHELL:
                continue
            for number, line in _logical_lines(lines):
                for argv in _commands(line):
                    program = _program(argv)
                    if program:
                        found.append((_name(page), number, line.strip(), *program))
        for match in re.finditer(r"`(seqzoo [^`]+)`", prose):
            number = prose.count("\n", 0, match.start()) + 1
            text = " ".join(match.group(1).split())
            argv = shlex.split(text)[1:]
            if not any(arg.startswith("-") for arg in argv):
                argv.append("--help")  # a command named in prose, e.g. `seqzoo eval`: it exists
            found.append((_name(page), number, text, "seqzoo", argv))
    return [
        pytest.param(page, number, line, program, argv, id=f"{page}:{number}:{' '.join(argv)[:60]}")
        for page, number, line, program, argv in found
    ]


@pytest.fixture(scope="module")
def parsers():
    from benchmarks.__main__ import build_parser as build_benchmarks_parser
    from seqzoo.cli import build_parser

    return {"seqzoo": build_parser(), "benchmarks": build_benchmarks_parser()}


def _parse(parser, argv):
    """None if argparse takes argv, else what it printed when it exited."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit as e:
        if e.code not in (0, None):  # --help exits with 0
            return err.getvalue().strip() or f"exit status {e.code}"
    return None


COMMANDS = _shown_commands()


def test_the_pages_show_commands():
    programs = {(param.values[0], param.values[3]) for param in COMMANDS}
    assert ("README.md", "seqzoo") in programs
    assert ("docs/benchmarks.md", "benchmarks") in programs


@pytest.mark.parametrize("page, number, line, program, argv", COMMANDS)
def test_shown_command_is_accepted_by_the_parser(parsers, page, number, line, program, argv):
    if program == "seqzoo" and argv[:1] == ["bench"]:
        program, argv = "benchmarks", argv[1:]
        if argv[:1] == ["--"]:
            argv = argv[1:]
    error = _parse(parsers[program], argv)
    assert error is None, f"{page}:{number}: {line}\n{error}"


def _tables(text):
    """Markdown tables as lists of rows (lists of cell strings), header first."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _preset_table_rows(page):
    """The preset names of each row of the page's table headed `preset`."""
    tables = [t for t in _tables(page.read_text(encoding="utf-8")) if t[0][0].lower() == "preset"]
    assert len(tables) == 1, f"{_name(page)}: expected one table whose first column is 'preset'"
    return [re.findall(r"`([a-z0-9_]+)`", row[0]) for row in tables[0][1:]]


@pytest.mark.parametrize("name", ["README.md", "docs/models.md"])
def test_zoo_table_lists_every_preset_once(name):
    from seqzoo.models.registry import PRESETS

    rows = _preset_table_rows(ROOT / name)
    names = [preset for row in rows for preset in row]
    assert all(len(row) == 1 for row in rows), f"{name}: a row names no preset or several: {rows}"
    assert len(names) == len(set(names)), f"{name}: a preset is listed twice"
    assert set(names) == set(PRESETS), (
        f"{name}: missing {sorted(set(PRESETS) - set(names))}, "
        f"not presets {sorted(set(names) - set(PRESETS))}"
    )


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _relative_links():
    links = []
    for page in _pages():
        _, prose = _blocks_and_prose(page.read_text(encoding="utf-8"))
        prose = re.sub(r"`[^`\n]*`", "", prose)  # code spans are not links
        for match in LINK.finditer(prose):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or a link inside the page
            number = prose.count("\n", 0, match.start()) + 1
            links.append(pytest.param(page, number, target, id=f"{_name(page)}:{number}:{target}"))
    return links


LINKS = _relative_links()


def test_the_pages_have_relative_links():
    assert len(LINKS) > 20


def _anchors(page):
    """The anchors GitHub gives the headings of a Markdown page."""
    _, prose = _blocks_and_prose(page.read_text(encoding="utf-8"))
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("page, number, target", LINKS)
def test_relative_link_points_to_a_file_or_folder(page, number, target):
    where = f"{_name(page)}:{number}: {target}"
    file, _, anchor = target.partition("#")
    path = (page.parent / file).resolve()
    assert path.exists(), f"{where} -> {path} does not exist"
    assert ROOT in path.parents or path == ROOT, f"{where} leaves the repository"
    if anchor and path.suffix == ".md":
        assert anchor in _anchors(path), f"{where}: no heading with that anchor in {path.name}"


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def _named_paths():
    """Repository files and folders named in code spans, e.g. `tests/cli/test_train.py`."""
    named = []
    for page in _pages():
        _, prose = _blocks_and_prose(page.read_text(encoding="utf-8"))
        pattern = (r"`((?:tests|seqzoo|benchmarks|data|docs)/[^`\s]*"
                   r"(?:/|\.(?:py|sh|md|txt|json|png)))`")
        for match in re.finditer(pattern, prose):
            if re.search(r"[A-Z]{3,}", match.group(1)):
                continue  # a placeholder such as gpu-BACKEND
            number = prose.count("\n", 0, match.start()) + 1
            named.append(pytest.param(page, number, match.group(1),
                                      id=f"{_name(page)}:{number}:{match.group(1)}"))
    return named


@pytest.mark.parametrize("page, number, path", _named_paths())
def test_named_repository_path_exists(page, number, path):
    matches = list(ROOT.glob(path.rstrip("/"))) if "*" in path else [ROOT / path]
    assert matches and all(p.exists() for p in matches), \
        f"{_name(page)}:{number}: {path} does not exist"
