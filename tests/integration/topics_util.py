# SPDX-License-Identifier: MIT
"""The topic commands the topics tests' handlers understand, in-memory or through Redis."""

from __future__ import annotations

from wsfast.connection import Connection
from wsfast.server import Handler


class TopicCommands(Handler):
    """Commands from the client: ``sub T [EPOCH OFFSET]``, ``unsub T``, ``pub T DATA``.

    Replies to ``sub`` with ``ok EPOCH OFFSET RECOVERED MISSED`` (after any missed
    messages, which the broker queues first) through :meth:`reply_subscribed`, to
    ``unsub`` with ``unsub True|False``; hands any other command to :meth:`on_command`.
    """

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        assert isinstance(data, str)
        cmd, _, rest = data.partition(" ")
        if cmd == "sub":
            topic, *since = rest.split(" ")
            sub = conn.subscribe(topic, (since[0], int(since[1])) if since else None)
            pos = sub.position
            self.reply_subscribed(
                conn, topic, f"ok {pos.epoch} {pos.offset} {sub.recovered} {sub.missed}"
            )
        elif cmd == "unsub":
            conn.send(f"unsub {conn.unsubscribe(rest)}")
        elif cmd == "pub":
            topic, _, payload = rest.partition(" ")
            conn.publish(topic, payload)
        else:
            self.on_command(conn, cmd, rest)

    def reply_subscribed(self, conn: Connection, topic: str, reply: str) -> None:
        """Send the reply to ``sub``; at once here."""
        conn.send(reply)

    def on_command(self, conn: Connection, cmd: str, rest: str) -> None:
        """Another command than the three above; ignored here."""
