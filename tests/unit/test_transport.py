# SPDX-License-Identifier: MIT
"""The transport contract (wsfast.transport) matches the code on both of its sides."""

from __future__ import annotations

import inspect
import typing

import pytest

from wsfast._native import cy
from wsfast.connection import Connection, ConnectionServer
from wsfast.server import Server, _HandshakeOwner
from wsfast.transport import ServerTransport, Transport, TransportOwner

# What the Cython transport calls on its owner: public names, once each.
CALLBACKS = ("http_data_received", "connection_lost", "resume_writing", "handler_failed")
# The private names they replaced: no owner keeps them.
OLD_NAMES = ("_on_http_data", "_on_lost", "_on_drain", "_on_handler_error")


def members(protocol: type) -> set[str]:
    """The names a typing.Protocol class declares, its bases' included."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls is typing.Protocol or not getattr(cls, "_is_protocol", False):
            continue
        names.update(getattr(cls, "__annotations__", {}))
        names.update(
            name
            for name, value in vars(cls).items()
            if not name.startswith("_")
            and (inspect.isfunction(value) or isinstance(value, property))
        )
    return names


def test_protocols_declare_what_the_brief_lists() -> None:
    assert members(TransportOwner) == set(CALLBACKS)
    assert {"write", "close_after_write", "upgrade", "feed", "owner"} <= members(Transport)
    assert {"high_water", "low_water", "policy", "start_tls"} <= members(ServerTransport)
    assert members(Transport) <= members(ServerTransport)
    assert "connection_closed" in members(ConnectionServer)


@pytest.mark.parametrize("protocol", [Transport, ServerTransport])
def test_the_epoll_transport_has_every_member_of_the_contract(protocol: type) -> None:
    missing = {name for name in members(protocol) if not hasattr(cy.Transport, name)}
    assert not missing


@pytest.mark.parametrize("owner", [Connection, _HandshakeOwner])
def test_owners_implement_the_public_callbacks_only(owner: type) -> None:
    for name in CALLBACKS:
        assert callable(getattr(owner, name))
    for name in OLD_NAMES:
        assert not hasattr(owner, name)


def test_the_server_is_what_a_connection_needs() -> None:
    missing = {name for name in members(ConnectionServer) if not hasattr(Server, name)}
    assert not missing
