# SPDX-License-Identifier: MIT
"""``_rust.pyi`` matches the Rust extension it describes (what stubtest does for ``_cy``).

mypy.stubtest cannot read PyO3 classes as they are (it expects ``__init__`` where PyO3
defines ``__new__``, and flags every class as missing ``@final``), so this checks the
part that matters to users and to mypy: every name the stub declares exists at run
time, with the same kind (class, function, constant), every method and property of a
stubbed class exists on the real class, and every public run-time name is stubbed.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import wsfast
from wsfast._native import rust

STUB = Path(wsfast.__file__).parent / "_rust.pyi"
TREE = ast.parse(STUB.read_text())
CLASSES = {node.name: node for node in TREE.body if isinstance(node, ast.ClassDef)}
FUNCTIONS = {
    node.name for node in TREE.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
}
CONSTANTS = {
    node.target.id
    for node in TREE.body
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
}


def members(node: ast.ClassDef) -> set[str]:
    return {
        item.name
        for item in node.body
        if isinstance(item, ast.FunctionDef) and item.name not in ("__init__", "__new__")
    } | {
        item.target.id
        for item in node.body
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
    }


def test_every_public_runtime_name_is_in_the_stub() -> None:
    stubbed = set(CLASSES) | FUNCTIONS | CONSTANTS
    public = {name for name in dir(rust) if not name.startswith("__")}
    assert public - stubbed == set()


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_stubbed_classes_exist_with_their_members(name: str) -> None:
    cls = getattr(rust, name)
    assert inspect.isclass(cls)
    missing = {member for member in members(CLASSES[name]) if not hasattr(cls, member)}
    assert missing == set()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_stubbed_functions_exist_and_are_callable(name: str) -> None:
    assert callable(getattr(rust, name))
    assert not inspect.isclass(getattr(rust, name))


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_stubbed_constants_exist(name: str) -> None:
    assert hasattr(rust, name)
