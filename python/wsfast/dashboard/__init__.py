# SPDX-License-Identifier: MIT
"""The live dashboard: one self-contained page and the WebSocket feed behind it.

``serve(..., dashboard=True)`` answers ``GET /_wsfast/dashboard`` with the page
(``index.html``: inline CSS, JavaScript and <canvas> charts, no external assets, so
it works offline), and the page opens a WebSocket to the path below it,
``/_wsfast/dashboard/feed``. The feed sends the server's :class:`~wsfast.metrics.
ServerStats` as JSON on open and then once a second (the server's stats timer calls
:meth:`Feed.push`); the page keeps the last minutes and draws them. Both paths are
the server's own (:class:`wsfast.handshake.Reserved`): never routed to handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources

from wsfast.connection import Connection
from wsfast.exceptions import ConnectionClosed
from wsfast.handler import Handler, HTTPResponse, Request
from wsfast.metrics import ServerStats

__all__ = ["FEED_SUFFIX", "Feed", "page", "page_response"]

#: The feed's path is the page's path plus this.
FEED_SUFFIX = "/feed"

_PAGE_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
)


@cache
def page() -> bytes:
    """The dashboard page (``index.html`` shipped inside the package).

    Returns:
        The UTF-8 encoded HTML document.
    """
    return resources.files(__name__).joinpath("index.html").read_bytes()


def page_response(request: Request) -> HTTPResponse:
    """Answer a ``GET`` of the dashboard's path with the page.

    Args:
        request: the request (unused: the page finds its feed from its own URL).

    Returns:
        200 with the HTML page.
    """
    return 200, _PAGE_HEADERS, page()


class Feed(Handler):
    """The dashboard's WebSocket endpoint: pushes stats, ignores what it receives.

    Args:
        stats: returns the server's current snapshot.
    """

    def __init__(self, stats: Callable[[], ServerStats]) -> None:
        self._stats = stats
        #: The open feed connections.
        self.connections: set[Connection] = set()

    def on_open(self, conn: Connection) -> None:
        """Send the first snapshot at once, so the page need not wait a second."""
        self.connections.add(conn)
        conn.send(self._stats().to_json())

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        """The feed only speaks: messages from the page are ignored."""

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        """Forget the connection."""
        self.connections.discard(conn)

    def push(self) -> None:
        """Send the current snapshot to every open feed connection (loop thread)."""
        if not self.connections:
            return
        text = self._stats().to_json()
        for conn in list(self.connections):
            try:
                conn.send(text)
            except ConnectionClosed:
                self.connections.discard(conn)
