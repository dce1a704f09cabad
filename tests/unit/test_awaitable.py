# SPDX-License-Identifier: MIT
"""The Cython awaitables complete at once (cython_ext/awaitable.pyx).

They stand in for a coroutine on the asyncio connections' fast paths, so each
test checks a coroutine's behaviour: awaited once, accepted by asyncio's task
functions, an exception thrown in before it ran raised as is.
"""

from __future__ import annotations

import asyncio
import collections.abc
from typing import Any

import pytest

from wsfast._native import cy


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_awaiting_a_completed_awaitable_returns_its_value() -> None:
    async def main() -> Any:
        return await cy.completed("message")

    assert run(main()) == "message"


def test_awaiting_a_failed_awaitable_raises_its_error() -> None:
    async def main() -> None:
        await cy.failed(ValueError("boom"))

    with pytest.raises(ValueError, match="boom"):
        run(main())


def test_a_second_await_raises_runtime_error_like_a_coroutine() -> None:
    async def main() -> None:
        ready = cy.completed(1)
        assert await ready == 1
        with pytest.raises(RuntimeError, match="cannot reuse already awaited"):
            await ready

    run(main())


def test_asyncio_takes_it_as_a_coroutine() -> None:
    ready = cy.completed(None)
    assert isinstance(ready, collections.abc.Coroutine)
    assert asyncio.iscoroutine(ready)
    ready.close()


def test_create_task_ensure_future_wait_for_and_gather_accept_it() -> None:
    async def main() -> None:
        assert await asyncio.create_task(cy.completed(1)) == 1
        assert await asyncio.ensure_future(cy.completed(2)) == 2
        assert await asyncio.wait_for(cy.completed(3), 1) == 3
        assert await asyncio.gather(cy.completed(4), cy.completed(5)) == [4, 5]
        with pytest.raises(KeyError):
            await asyncio.create_task(cy.failed(KeyError("k")))

    run(main())


def test_a_task_cancelled_before_its_first_step_raises_cancelled_error() -> None:
    async def main() -> None:
        task = asyncio.create_task(cy.completed(1))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_send_and_throw_follow_the_coroutine_protocol() -> None:
    ready = cy.completed("x")
    with pytest.raises(StopIteration) as info:
        ready.send(None)
    assert info.value.value == "x"
    with pytest.raises(KeyError):
        cy.completed(1).throw(KeyError("thrown"))
    with pytest.raises(KeyError):
        cy.completed(1).throw(KeyError, "thrown")
    closed = cy.completed(1)
    closed.close()
    with pytest.raises(RuntimeError):
        closed.send(None)


def test_done_is_complete_every_time_it_is_awaited() -> None:
    async def main() -> None:
        assert await cy.DONE is None
        assert await cy.DONE is None
        assert await asyncio.create_task(cy.DONE) is None

    run(main())


def test_a_tuple_or_exception_value_is_returned_as_is() -> None:
    async def main() -> None:
        assert await cy.completed((1, 2)) == (1, 2)
        error = KeyError("value")
        assert await cy.completed(error) is error

    run(main())
    for value in [(1, 2), KeyError("value"), "x"]:
        with pytest.raises(StopIteration) as info:
            next(cy.completed(value))  # tp_iternext, the C one
        assert info.value.value is value
