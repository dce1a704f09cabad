# SPDX-License-Identifier: MIT
"""Every server option is checked at serve() time: a clear error, never a crash later.

A wrong type raises TypeError and a value out of range ValueError, each naming the
option, what it must be and what it got.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from wsfast import Handler
from wsfast.config import DEFAULT_DASHBOARD_PATH, DEFAULT_METRICS_PATH, ServerConfig
from wsfast.server import serve
from wsfast.topics import TopicsConfig


class Echo(Handler):
    def on_message(self, conn: Any, data: str | bytes) -> None:
        conn.send(data)


# (option, bad value, exception, message) for serve(Echo(), **{option: value}).
BAD_OPTIONS = [
    ("host", 127001, TypeError, "host must be a str, got 127001"),
    ("port", -1, ValueError, "port must be an int in 0..65535, got -1"),
    ("port", 65536, ValueError, "port must be an int in 0..65535, got 65536"),
    ("port", "8000", TypeError, "port must be an int in 0..65535, got '8000'"),
    ("port", 80.0, TypeError, "port must be an int in 0..65535, got 80.0"),
    ("port", True, TypeError, "port must be an int in 0..65535, got True"),
    ("max_size", -1, ValueError, "max_size must be a positive int, got -1"),
    ("max_size", 0, ValueError, "max_size must be a positive int, got 0"),
    ("max_size", 1.5, TypeError, "max_size must be a positive int, got 1.5"),
    ("max_size", None, TypeError, "max_size must be a positive int, got None"),
    ("backlog", 0, ValueError, "backlog must be a positive int, got 0"),
    ("backlog", "10", TypeError, "backlog must be a positive int, got '10'"),
    ("write_limit", (1, 2), ValueError, r"write_limit must be \(high, low\) ints .*got \(1, 2\)"),
    ("write_limit", (-2, -4), ValueError, r"got \(-2, -4\)"),
    ("write_limit", -1, ValueError, r"got \(-1, -1\)"),
    ("write_limit", (1.5, 1), TypeError, r"write_limit must be .*got \(1.5, 1\)"),
    ("write_limit", "big", TypeError, "write_limit must be"),
    ("write_limit", (1, 2, 3), TypeError, "write_limit must be"),
    ("slow_consumer", "block", ValueError, "slow_consumer must be 'close' or 'drop', got 'block'"),
    ("ssl", "yes", TypeError, "ssl must be an ssl.SSLContext or None, got 'yes'"),
    ("subprotocols", "chat", TypeError, "subprotocols must be a sequence of strs, got 'chat'"),
    ("subprotocols", [1], TypeError, r"subprotocols must be non-empty strs, got \(1,\)"),
    ("origins", "https://a.example", TypeError, "origins must be a sequence of strs"),
    ("origins", [b"x"], TypeError, "origins must be strs or None"),
    ("http_handler", "index.html", TypeError, "http_handler must be callable or None"),
    ("compression", "yes", TypeError, "compression must be a bool or DeflateConfig"),
    ("busy_poll", -1, ValueError, "busy_poll must be 0..1000000 microseconds, got -1"),
    ("busy_poll", 50e-6, TypeError, "busy_poll must be a bool or microseconds as int"),
    ("metrics", "metrics", ValueError, "metrics must be None or a path starting with '/'"),
    ("metrics", 1, TypeError, "metrics must be a bool or a path starting with '/', got 1"),
    ("dashboard", "/a b", ValueError, "dashboard must be None or a path starting with '/'"),
    ("dashboard", b"/d", TypeError, "dashboard must be a bool or a path"),
    ("topics", {"history": 1}, TypeError, "topics must be a TopicsConfig or None"),
    ("routes", ["/ws"], TypeError, "routes must be a mapping of paths to handlers"),
    ("routes", {"/ws": print}, TypeError, r"routes\['/ws'\] must be a Handler"),
    ("routes", {"ws": Echo}, ValueError, "routes keys must be paths starting with '/'"),
]

TIMEOUTS = ["handshake_timeout", "ping_interval", "ping_timeout", "idle_timeout", "close_timeout"]


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    BAD_OPTIONS,
    ids=[f"{o}={v!r}" for o, v, _, _ in BAD_OPTIONS],
)
def test_serve_refuses_a_bad_option(
    option: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        serve(Echo(), **{"port": 0, option: value})


@pytest.mark.parametrize("option", TIMEOUTS)
@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1.5, ValueError), (float("nan"), ValueError), ("10", TypeError)],
)
def test_serve_refuses_a_bad_timeout(option: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"{option} must be a positive number of seconds or None, got"):
        serve(Echo(), **{"port": 0, option: value})


@pytest.mark.parametrize("option", TIMEOUTS)
def test_serve_accepts_none_or_a_positive_timeout(option: str) -> None:
    for value in (None, 1, 0.25):
        assert getattr(serve(Echo(), port=0, **{option: value}).config, option) == value


def test_serve_refuses_a_handler_that_is_not_one() -> None:
    with pytest.raises(TypeError, match="handler must be a Handler, a Handler class or None"):
        serve(print, port=0)  # type: ignore[arg-type]


def test_serve_refuses_a_route_on_a_built_in_path() -> None:
    with pytest.raises(ValueError, match="route '/metrics' is taken"):
        serve(Echo(), port=0, metrics=True, routes={"/metrics": Echo})
    with pytest.raises(ValueError, match="route '/_wsfast/dashboard/feed' is taken"):
        serve(Echo(), port=0, dashboard=True, routes={"/_wsfast/dashboard/feed": Echo})
    # Off, the path is free.
    assert "/metrics" in serve(Echo(), port=0, routes={"/metrics": Echo}).routes


def test_metrics_and_dashboard_need_paths_of_their_own() -> None:
    with pytest.raises(ValueError, match="paths of their own"):
        serve(Echo(), port=0, metrics="/x", dashboard="/x")
    with pytest.raises(ValueError, match="paths of their own"):
        serve(Echo(), port=0, metrics="/health")


def test_metrics_and_dashboard_are_off_by_default_and_take_a_path() -> None:
    config = serve(Echo(), port=0).config
    assert config.metrics_path is None and config.dashboard_path is None
    config = serve(Echo(), port=0, metrics=True, dashboard=True).config
    assert config.metrics_path == DEFAULT_METRICS_PATH == "/metrics"
    assert config.dashboard_path == DEFAULT_DASHBOARD_PATH
    config = serve(Echo(), port=0, metrics="/m", dashboard="/ops/dash").config
    assert (config.metrics_path, config.dashboard_path) == ("/m", "/ops/dash")


def test_good_options_pass_unchanged() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server = serve(
        Echo,
        "::1",
        0,
        routes={"/a": Echo()},
        subprotocols=["chat"],
        origins=["https://a.example", None],
        write_limit=[1024, 256],  # type: ignore[arg-type]
        slow_consumer="drop",
        ssl=context,
        backlog=1,
        http_handler=lambda request: None,
        busy_poll=True,
        topics=TopicsConfig(),
        max_size=1,
    )
    config = server.config
    assert config.write_limit == (1024, 256)
    assert config.origins == ("https://a.example", None)
    assert config.ssl is context and config.max_size == 1


def test_server_config_checks_direct_construction_too() -> None:
    with pytest.raises(ValueError, match="max_size must be a positive int, got -1"):
        ServerConfig(max_size=-1)
    with pytest.raises(TypeError, match="write_limit must be"):
        ServerConfig(write_limit=[1, 0])  # type: ignore[arg-type]
