# SPDX-License-Identifier: MIT
"""Events produced by :class:`wsfast.Protocol`.

They are immutable value objects implemented in Rust (creating them costs about as
much as a tuple), compared by value:

* :class:`TextMessage` ``(data: str)`` - a complete text message;
* :class:`BinaryMessage` ``(data: bytes)`` - a complete binary message;
* :class:`Ping` / :class:`Pong` ``(data: bytes)`` - control frames;
* :class:`Close` ``(code: int, reason: str)`` - the peer's close frame, with code
  1005 if it carried none, or 1006 when the transport ended without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from wsfast._native import rust as _rust

__all__ = ["BinaryMessage", "Close", "Event", "Ping", "Pong", "TextMessage"]

if TYPE_CHECKING:  # the stubs in _rust.pyi describe these classes
    from wsfast._rust import BinaryMessage, Close, Ping, Pong, TextMessage
else:
    TextMessage = _rust.TextMessage
    BinaryMessage = _rust.BinaryMessage
    Ping = _rust.Ping
    Pong = _rust.Pong
    Close = _rust.Close

#: Any event returned by ``Protocol.events_received()``.
Event: TypeAlias = "TextMessage | BinaryMessage | Ping | Pong | Close"
