# SPDX-License-Identifier: MIT
"""The API reference (docs/reference/) covers every public class and function.

A public name is one in a module's ``__all__``. It is covered by a ``::: name``
block in docs/reference/*.md (under the name it is exported as, or the module that
defines it), or by a ``:::`` block of its whole module (one without
``members: false``). A new public class or function fails this test until its
reference entry is written.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
# The modules whose API the reference documents.
MODULES = [
    "wsfast",
    "wsfast.asyncio",
    "wsfast.uvicorn",
    "wsfast.topics",
    "wsfast.handshake",
    "wsfast.exceptions",
    "wsfast.metrics",
    "wsfast.proxy",
    "wsfast.redis_engine",
    "wsfast.workers",
]

if not REFERENCE.is_dir():
    # tools/test_wheels.py runs a copy of tests/ without the source tree's docs/.
    pytest.skip(f"no docs/reference beside this tests/ ({REFERENCE})", allow_module_level=True)


def _blocks() -> tuple[set[str], set[str]]:
    """Every ``:::`` identifier, and those rendered with all their members."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(REFERENCE.glob("*.md")))
    blocks = re.findall(r"^::: ([\w.]+)\n((?:    .*\n)*)", text, re.MULTILINE)
    return {name for name, _ in blocks}, {n for n, opts in blocks if "members: false" not in opts}


@pytest.mark.parametrize("module", MODULES)
def test_every_public_class_and_function_has_a_reference_entry(module: str) -> None:
    identifiers, whole = _blocks()
    mod = importlib.import_module(module)
    missing = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue  # constants and aliases are documented with their module or class
        names = {f"{module}.{name}", f"{obj.__module__}.{obj.__qualname__}"}
        if names & identifiers or module in whole or obj.__module__ in whole:
            continue
        missing.append(name)
    assert not missing, f"add '::: {module}.NAME' to docs/reference/ for: {missing}"


def test_reference_blocks_were_found() -> None:
    identifiers, _ = _blocks()
    assert {"wsfast.serve", "wsfast.asyncio.serve", "wsfast.uvicorn.WSProtocol"} <= identifiers
