"""Imports run one way: text, data -> layers, losses, metrics, decoding -> models -> training
-> demos, recipes, export -> cli; no cycles; `import seqzoo` loads no trainer."""

import ast
import os
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "seqzoo"

# The layer of each subpackage (the first name after `seqzoo.`); a module may
# import its own layer and those below it. "" is `seqzoo/__init__.py`.
LAYERS = {
    "errors": 0, "checks": 0, "io": 0,
    "text": 1, "data": 1,
    "layers": 2, "losses": 2, "metrics": 2, "decoding": 2,
    "models": 3,
    "": 4,
    "training": 5, "tfa": 5,
    "demos": 6, "recipes": 6, "export": 6,
    "cli": 7,
    "__main__": 8,
}
MAX_LINES = 400


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path, modules):
    """`(imported module, line, inside a function)` for each `seqzoo` import of a file."""
    found = []

    def visit(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names
                             if a.name.split(".")[0] == "seqzoo")
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module \
                    and child.module.split(".")[0] == "seqzoo":
                for alias in child.names:  # `from seqzoo.x import y` may import module x.y
                    full = f"{child.module}.{alias.name}"
                    found.append((full if full in modules else child.module, child.lineno,
                                  nested))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _layer(module):
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


def _graph():
    modules = _modules()
    return modules, {name: _imports(path, modules) for name, path in modules.items()}


def test_every_subpackage_has_a_layer():
    modules = _modules()
    assert {m.split(".")[1] for m in modules if "." in m} <= set(LAYERS)


def test_imports_only_go_down_the_layers():
    modules, graph = _graph()
    upward = [f"{modules[m].relative_to(PACKAGE.parent)}:{line} imports {target}"
              for m, edges in graph.items() for target, line, _ in edges
              if _layer(target) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    modules, graph = _graph()
    edges = {m: sorted({t for t, _, _ in out if t in modules and t != m})
             for m, out in graph.items()}
    state, cycles = {}, []

    def walk(node, path):  # depth-first search; a grey node met again closes a cycle
        state[node] = "grey"
        for nxt in edges[node]:
            if state.get(nxt) == "grey":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = "black"

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_over_the_line_limit_without_a_reason():
    long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        head = text[:2000]
        if text.count("\n") > MAX_LINES and "Longer than 400 lines:" not in head:
            long.append(f"{path.relative_to(PACKAGE.parent)}: {text.count(chr(10))} lines")
    assert not long, "\n".join(long)


def test_import_seqzoo_loads_no_trainer_and_no_cli():
    """On the backend of the test run; on JAX the subprocess of tests/test_import.py checks
    the same (one JAX process for both)."""
    code = ("import sys, seqzoo; loaded = [m for m in sys.modules if m.startswith("
            "('seqzoo.training', 'seqzoo.cli', 'seqzoo.recipes', 'seqzoo.demos', "
            "'seqzoo.export'))]; print(loaded)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
