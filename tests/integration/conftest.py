# SPDX-License-Identifier: MIT
"""Fixtures shared by the asyncio integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tests.optional import optional_param

#: Every test runs on each loop; uvloop's runs show as skipped when it is absent.
LOOPS = ["asyncio", optional_param("uvloop", "uvloop")]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on a fresh loop of each kind; fail if it leaves tasks behind."""

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        async def checked() -> Any:
            result = await coro
            await asyncio.sleep(0)
            current = asyncio.current_task()
            leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            assert not leaked, f"leaked tasks: {leaked}"
            return result

        if request.param == "uvloop":
            import uvloop

            return uvloop.run(checked())
        return asyncio.run(checked())

    return runner
