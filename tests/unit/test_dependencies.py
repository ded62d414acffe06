"""The dependency rules of the layout hold: layers import one way, and no modules import each
other in a cycle (imports inside functions and under TYPE_CHECKING count too: they hide a cycle,
they do not remove it)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What each top-level package may import of balsong's own packages (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "metrics": frozenset(),
    "carriers": frozenset({"metrics"}),
    "engine": frozenset({"carriers", "metrics"}),
    "actors": frozenset({"engine", "carriers", "metrics"}),
    "scheduler": frozenset({"actors", "engine", "carriers", "metrics"}),
    "api": frozenset({"actors", "engine", "carriers", "metrics"}),
    "cli": frozenset({"api", "actors", "scheduler", "engine", "carriers", "metrics", "migrations"}),
}


def modules() -> Iterator[tuple[str, Path]]:
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports_of(name: str, path: Path) -> set[str]:
    """Every balsong module ``name`` imports, wherever in the file the import stands."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in ALLOWED or m.split(".")[0] == "migrations"}


def graph() -> dict[str, set[str]]:
    known = dict(modules())
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        # "from engine import counters" names the module engine.lifecycle.counters; "from engine.x import
        # f" names engine.x: keep only names that are modules.
        edges[name] = {m for m in imports_of(name, path) if m in known and m != name}
    return edges


def test_layers_import_one_way() -> None:
    # Given every module of balsong's packages
    # When their imports are read
    offences = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if (layer := module.split(".")[0]) != target.split(".")[0]
        and target.split(".")[0] not in ALLOWED[layer]
    ]
    # Then each imports only the layers below it
    assert offences == []


def test_no_modules_import_each_other_in_a_cycle() -> None:
    # Given the import graph of balsong's modules (a package imports its __init__ implicitly,
    # which is not an edge worth counting)
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph().items()}
    # When it is searched for cycles
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    # Then there are none
    assert cycles == []
