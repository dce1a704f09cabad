# SPDX-License-Identifier: MIT
"""Optional test dependencies: skipped (and shown as skipped) locally, required in CI."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

#: Set by CI (.ci/run): an optional test dependency that is missing fails the tests
#: that need it instead of skipping them, so a broken environment cannot pass quietly.
CI = os.environ.get("WSFAST_CI") == "1"


def require(module: str) -> Any:
    """Import an optional test dependency: skip without it, fail without it in CI.

    Args:
        module: the module's name.

    Returns:
        The module.
    """
    if not CI:
        return pytest.importorskip(module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"WSFAST_CI=1 and {module} is missing: {exc}")


def optional_param(value: str, module: str) -> Any:
    """A parametrize or fixture value that needs ``module``.

    Without the module the value is shown as skipped (never left out of the run),
    and in CI (see :data:`CI`) it runs, and fails on the import.

    Args:
        value: the parameter value.
        module: the module it needs.

    Returns:
        A ``pytest.param``.
    """
    try:
        importlib.import_module(module)
        missing = False
    except ImportError:
        missing = True
    return pytest.param(
        value,
        marks=pytest.mark.skipif(missing and not CI, reason=f"{module} is not installed"),
    )
