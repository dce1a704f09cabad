# SPDX-License-Identifier: MIT
"""wsfast._core: the one Core factory and the one "closed normally" rule of the Python side."""

from __future__ import annotations

from typing import Any

import pytest

from wsfast._core import OK_CLOSE_CODES, close_is_ok, closed_error, new_core
from wsfast._native import rust
from wsfast.exceptions import ConnectionClosedError, ConnectionClosedOK
from wsfast.frames import Opcode

CASES = [
    # sent, received, closed normally
    (1000, 1000, True),
    (1001, 1000, True),
    (1000, 1001, True),
    (1005, 1005, True),
    (1000, 1005, True),
    (1000, None, False),  # the transport ended before the peer's close frame
    (None, 1000, False),  # we never answered the peer's close frame
    (None, None, False),
    (1000, 1002, False),
    (1011, 1000, False),
    (4000, 4000, False),
    (1000, 1006, False),
]


def test_ok_close_codes_are_websockets_ones() -> None:
    assert frozenset({1000, 1001, 1005}) == OK_CLOSE_CODES


@pytest.mark.parametrize(("sent", "received", "ok"), CASES)
def test_close_is_ok_needs_both_close_frames_with_ok_codes(
    sent: int | None, received: int | None, ok: bool
) -> None:
    assert close_is_ok(sent, received) is ok


def test_close_rule_agrees_with_the_rust_core() -> None:
    native = getattr(rust, "close_is_ok", None)
    if native is None:
        pytest.skip("wsfast._rust.close_is_ok is not in this build yet")
    for sent, received, ok in CASES:
        assert native(sent, received) is ok, (sent, received)


# ---- closed_error on real cores ------------------------------------------------------------


def pair(**options: Any) -> tuple[Any, Any]:
    """A client core and a server core, not yet connected."""
    return new_core("client", **options), new_core("server", **options)


def exchange(sender: Any, receiver: Any) -> None:
    """Deliver everything ``sender`` queued to ``receiver``."""
    receiver.receive_data(sender.data_to_send())


def test_closing_handshake_with_1000_is_ok_on_both_sides() -> None:
    client, server = pair(max_size=None, params=None, config=None)
    client.send_close(1000, "bye")
    exchange(client, server)
    exchange(server, client)
    exc = closed_error(server)
    assert isinstance(exc, ConnectionClosedOK)
    assert (exc.code, exc.reason, exc.sent_code) == (1000, "bye", 1000)
    exc = closed_error(client)
    assert isinstance(exc, ConnectionClosedOK)
    assert (exc.code, exc.sent_code, exc.sent_reason) == (1000, 1000, "bye")


def test_close_frame_without_a_code_is_ok() -> None:
    client = new_core("client", max_size=None, params=None, config=None)
    client.receive_data(rust.Frame(Opcode.CLOSE, b"", fin=True).serialize(None))
    exc = closed_error(client)
    assert isinstance(exc, ConnectionClosedOK)
    assert (exc.code, exc.sent_code) == (1005, 1005)


def test_error_code_is_an_error() -> None:
    client, server = pair(max_size=None, params=None, config=None)
    server.send_close(1011, "oops")
    exchange(server, client)
    exc = closed_error(client)
    assert isinstance(exc, ConnectionClosedError)
    assert (exc.code, exc.reason, exc.sent_code) == (1011, "oops", 1011)


def test_end_of_stream_without_close_frame_is_1006() -> None:
    client = new_core("client", max_size=None, params=None, config=None)
    client.receive_eof()
    exc = closed_error(client)
    assert isinstance(exc, ConnectionClosedError)
    assert (exc.code, exc.reason, exc.sent_code, exc.sent_reason) == (1006, "", None, None)


def test_sent_close_without_an_answer_is_an_error() -> None:
    client = new_core("client", max_size=None, params=None, config=None)
    client.send_close(1000, "")
    client.receive_eof()
    exc = closed_error(client)
    assert isinstance(exc, ConnectionClosedError)
    assert (exc.code, exc.sent_code) == (1006, 1000)


def test_force_error_overrides_a_normal_closure() -> None:
    client, server = pair(max_size=None, params=None, config=None)
    client.send_close(1000, "")
    exchange(client, server)
    exchange(server, client)
    assert isinstance(closed_error(client, force_error=True), ConnectionClosedError)


# ---- new_core ------------------------------------------------------------------------------


def negotiated(config: Any) -> Any:
    """The parameters a server with ``config`` accepts for a default client offer."""
    offer = rust.deflate_offer(rust.DeflateConfig())
    result = rust.negotiate_deflate([offer], config)
    assert result is not None
    return result[0]


def compressed_size(level: int) -> int:
    config = rust.DeflateConfig(level=level)
    server = new_core("server", max_size=None, params=negotiated(config), config=config)
    server.send(b"".join(b"%d," % i for i in range(4000)))
    return len(server.data_to_send())


def test_compression_level_comes_from_the_deflate_config() -> None:
    # Level 0 stores; level 9 compresses: the level reached the compressor.
    assert compressed_size(9) < compressed_size(0) // 2


def test_no_negotiated_params_means_no_compression() -> None:
    config = rust.DeflateConfig(level=9)
    server = new_core("server", max_size=None, params=None, config=config)
    message = b"a" * 1000
    server.send(message)
    wire = server.data_to_send()
    assert not wire[0] & 0x40  # RSV1 clear
    assert len(wire) > len(message)


def test_max_size_none_is_unlimited_and_an_int_is_enforced() -> None:
    big = rust.Frame(Opcode.BINARY, b"x" * (2 << 20), fin=True).serialize(b"abcd")
    unlimited = new_core("server", max_size=None, params=None, config=None)
    assert unlimited.receive_data(big) == [(Opcode.BINARY, b"x" * (2 << 20))]
    limited = new_core("server", max_size=1 << 20, params=None, config=None)
    limited.receive_data(big)
    assert limited.close_sent[0] == 1009
