"""Imports only go down the layers, and no module imports itself back through another.

    cli/                               parse and call
    inference.py, serving/             one recording in, one answer out; many recordings in
                                       over HTTP, answers out
    training/   evaluation/            (siblings: neither imports the other)
    config.py   testing.py             config checks before anything is built; tiny data
                                       for tests and benchmarks (siblings)
    importers/  synth/                 offline tools: corpora -> manifests and shards; the
                                       synthetic benchmark (siblings; data/ imports neither)
    models/     data/                  (siblings: neither imports the other)
    tasks.py    _warnings _targets     the ground floor: the task registry every layer reads;
    _lazy                              warnings any layer may silence; the config walker;
                                       names imported on first use (all import nothing of
                                       speechllm)

Every ``import`` counts, also those inside functions, except those under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "speechllm"
LAYERS = {
    "_warnings": 0,
    "_targets": 0,
    "_lazy": 0,
    "provenance": 0,
    "tasks": 0,
    "data": 1,
    "models": 1,
    "importers": 2,
    "synth": 2,
    "config": 3,
    "testing": 3,
    "training": 4,
    "evaluation": 4,
    "inference": 5,
    "serving": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path) -> set[str]:
    """The speechllm modules ``path`` imports at run time."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("speechllm"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("speechllm"):
            for alias in node.names:  # `from speechllm.models import pretrained` is a module
                child = f"{node.module}.{alias.name}"
                found.add(child if _exists(child) else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _exists(module: str) -> bool:
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_imports_only_go_down() -> None:
    problems = []
    for module, deps in sorted(graph().items()):
        top = layer(module)
        if top is None or top not in LAYERS:  # the package's own __init__ re-exports
            continue
        for dep in sorted(deps):
            below = layer(dep)
            if below is None or below == top:
                continue
            if LAYERS[below] > LAYERS[top] or LAYERS[below] == LAYERS[top]:
                problems.append(f"{module} imports {dep} ({top} may not import {below})")
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    edges = graph()
    # a package __init__ that re-exports its modules is not a cycle of theirs
    edges = {m: {d for d in deps if d != m.rsplit(".", 1)[0]} for m, deps in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(edges.get(module, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                walk(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module)
    assert not cycles, "\n".join(cycles)


def test_the_walker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from speechllm.cli import infer\n"
        "def f():\n    from speechllm.inference import answer\n"
    )
    assert imports(source) == {"speechllm.inference"}
