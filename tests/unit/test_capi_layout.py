# SPDX-License-Identifier: MIT
"""The Rust side of the C API's layout, as wsfast._rust._capi_layout() reports it."""

from __future__ import annotations

import struct

from wsfast._native import rust

POINTER = struct.calcsize("P")


def test_lists_the_three_structs_of_the_header() -> None:
    assert list(rust._capi_layout()) == ["wsf_config", "wsf_event", "wsf_capi"]


def test_fields_are_in_order_within_the_struct() -> None:
    for name, fields in rust._capi_layout().items():
        size = fields.pop("__size__")
        offsets = list(fields.values())
        assert offsets[0] == 0, name
        assert offsets == sorted(set(offsets)), name
        assert offsets[-1] < size, name


def test_config_has_the_compressor_settings() -> None:
    config = rust._capi_layout()["wsf_config"]
    assert list(config)[:10] == [
        "__size__",
        "role",
        "auto_pong",
        "deflate",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
        "mem_level",
        "compress_window_bits",
    ]
    assert config["compression_level"] == 12


def test_function_table_ends_with_close_ok() -> None:
    capi = rust._capi_layout()["wsf_capi"]
    assert rust.CAPI_VERSION == 3
    assert capi["abi_version"] == 0
    assert capi["__size__"] == POINTER * (len(capi) - 1)
    assert list(capi)[-1] == "close_ok"
    assert capi["close_ok"] == capi["__size__"] - POINTER
