# SPDX-License-Identifier: MIT
"""The Python layer's two rules about a connection's protocol core, each in one place.

Every front end (the epoll server, the blocking and asyncio clients, and the next
ones) builds its ``wsfast._cy.Core`` with :func:`new_core` and asks
:func:`close_is_ok` / :func:`closed_error` how a connection ended, so neither rule
can drift between them. Both mirror rules the Rust core implements too; each body
here is the one line to swap for the native call.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from wsfast._native import cy, rust
from wsfast.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from wsfast.frames import CloseCode

__all__ = ["OK_CLOSE_CODES", "UNLIMITED", "close_is_ok", "closed_error", "new_core"]

#: Close codes of a normal closure (websockets' ``OK_CLOSE_CODES``); 1005 is a close
#: frame without a status code, which a peer may send when all went well. Defined
#: once, in the Rust core.
OK_CLOSE_CODES: Final[frozenset[int]] = frozenset(rust.OK_CLOSE_CODES)

#: ``max_size`` that stands for "no limit" (the core takes a size_t).
UNLIMITED: Final = 1 << 62


def new_core(
    side: Literal["server", "client"], *, max_size: int | None, params: Any, config: Any
) -> Any:
    """A protocol core for one connection whose opening handshake succeeded.

    Args:
        side: "server" or "client".
        max_size: the largest message accepted, in bytes; None for no limit.
        params: the negotiated ``DeflateParams``, or None when messages are not
            compressed.
        config: the local ``DeflateConfig``, passed whole to the core (level,
            mem_level, compress_window_bits), or None when compression was not
            offered or accepted.

    Returns:
        A ``wsfast._cy.Core``.
    """
    limit = UNLIMITED if max_size is None else max_size
    if params is None or config is None:
        # Nothing is compressed: the level is never used.
        return cy.Core(side, max_size=limit)
    return cy.Core(side, max_size=limit, deflate=params, deflate_config=config)


def close_is_ok(sent_code: int | None, received_code: int | None) -> bool:
    """Whether a connection closed normally (websockets' rule).

    Args:
        sent_code: the code of the close frame we sent, or None if we sent none.
        received_code: the code of the close frame we received, or None if none
            came (the transport ended without one).

    Returns:
        True iff close frames went both ways and both codes are in
        :data:`OK_CLOSE_CODES`.
    """
    return rust.close_is_ok(sent_code, received_code)


def closed_error(core: Any, *, force_error: bool = False) -> ConnectionClosed:
    """The exception describing how a connection ended (or is ending).

    Args:
        core: the connection's ``wsfast._cy.Core``.
        force_error: report an error whatever the close frames say (the transport
            broke).

    Returns:
        A :class:`ConnectionClosedOK` if :func:`close_is_ok` says so (and not
        ``force_error``), else a :class:`ConnectionClosedError`; ``code`` is 1006
        when no close frame was received.
    """
    received = core.close_received
    sent = core.close_sent
    code, reason = received if received is not None else (CloseCode.ABNORMAL_CLOSURE, "")
    sent_code, sent_reason = sent if sent is not None else (None, None)
    ok = not force_error and close_is_ok(sent_code, None if received is None else code)
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(int(code), reason, sent_code, sent_reason)
