# SPDX-License-Identifier: MIT
"""The package's modules import downward only: no cycle among ``wsfast.*`` modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import wsfast

PACKAGE = Path(wsfast.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


SOURCES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
# The native extensions, known here by their stubs: leaves of the graph.
NATIVE = {module_name(path) for path in PACKAGE.rglob("*.pyi")}


def is_module(name: str) -> bool:
    return name in SOURCES or name in NATIVE


def imported_modules(name: str, path: Path) -> set[str]:
    """Every ``wsfast`` module that ``path`` imports, anywhere (TYPE_CHECKING blocks too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # "from wsfast import _core" imports a module; "from wsfast import X"
                # an attribute of the package.
                submodule = f"{base}.{alias.name}"
                found.add(submodule if is_module(submodule) else base)
    return {m for m in found if (m == "wsfast" or m.startswith("wsfast.")) and is_module(m)}


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(name, path) - {name} for name, path in SOURCES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_graph_sees_type_checking_and_from_package_imports() -> None:
    graph = import_graph()
    # connection.py imports handler.py for its types, and _core as a module.
    assert "wsfast.handler" in graph["wsfast.connection"]
    assert "wsfast._core" in graph["wsfast.connection"]
    assert "wsfast.connection" in graph["wsfast.server"]


def test_wsfast_modules_import_without_cycles() -> None:
    assert find_cycle(import_graph()) is None


def test_server_layers_import_downward_only() -> None:
    graph = import_graph()
    layers = [
        {"wsfast.handler", "wsfast.transport"},
        {"wsfast.connection"},
        {"wsfast.handshake"},
        {"wsfast.server"},
    ]
    for depth, layer in enumerate(layers):
        above = set().union(*layers[depth + 1 :])
        for module in layer:
            assert not graph[module] & above, (module, graph[module] & above)
    assert "wsfast.server" not in graph["wsfast.connection"]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_module_imports_alone_in_a_fresh_interpreter(name: str) -> None:
    # A cycle can hide behind the order in which wsfast/__init__.py imports things:
    # starting from each module alone exposes it.
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
