# SPDX-License-Identifier: MIT
"""The C API is written three times (capi.rs, wsfast_rs.h, wsfast_rs.pxd): layouts must agree.

``wsfast._rust._capi_layout()`` reports every struct's size and field offsets as Rust
laid them out (``size_of``/``offset_of!``); ``wsfast._cy._capi_layout()`` reports the
same as the C compiler laid out the header that Cython compiled against.
"""

from __future__ import annotations

import re
import struct as _struct
from pathlib import Path

import pytest

from wsfast._native import cy, rust

HEADER = Path(__file__).resolve().parents[2] / "cython_ext" / "includes" / "wsfast_rs.h"
STRUCTS = ("wsf_config", "wsf_event", "wsf_capi")
POINTER = _struct.calcsize("P")  # also the size of size_t on the platforms we build for
SIZES = {"uint8_t": 1, "uint16_t": 2, "uint32_t": 4, "int32_t": 4}


def header_fields() -> dict[str, list[tuple[str, str]]]:
    """``{struct: [(declaration, field name), ...]}`` for the typedef'd structs."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    out: dict[str, list[tuple[str, str]]] = {}
    for body, name in re.findall(r"typedef struct \{(.*?)\}\s*(\w+);", text, flags=re.S):
        fields = []
        for decl in (d.strip() for d in body.split(";")):
            if not decl:
                continue
            # A function pointer names its field as (*name); others end with the name.
            match = re.search(r"\(\*(\w+)\)", decl) or re.search(r"(\w+)\s*(?:\[\d+\])?$", decl)
            assert match, decl
            fields.append((decl, match.group(1)))
        out[name] = fields
    return out


def test_the_layout_names_every_field_of_the_header_in_order() -> None:
    layout = cy._capi_layout()
    fields = header_fields()
    assert sorted(layout) == sorted(STRUCTS)
    for struct in STRUCTS:
        names = [name for _, name in fields[struct]]
        by_offset = sorted((k for k in layout[struct] if k != "__size__"), key=layout[struct].get)
        assert by_offset == names, struct


@pytest.mark.parametrize("struct", STRUCTS)
def test_fields_are_aligned_and_fit_in_the_struct(struct: str) -> None:
    table = cy._capi_layout()[struct]
    size = table.pop("__size__")
    offsets = [table[name] for _, name in header_fields()[struct]]
    assert offsets[0] == 0
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    assert offsets[-1] < size
    for decl, name in header_fields()[struct]:
        width = POINTER if "*" in decl else SIZES.get(decl.split()[0], POINTER)
        assert table[name] % width == 0, (struct, name)


def test_the_function_table_has_one_pointer_slot_per_function() -> None:
    # wsf_capi: a uint32_t version (padded to a pointer), then function pointers only.
    table = cy._capi_layout()["wsf_capi"]
    functions = [name for _, name in header_fields()["wsf_capi"]][1:]
    assert [table[f] for f in functions] == [POINTER * (i + 1) for i in range(len(functions))]
    assert table["__size__"] == POINTER * (len(functions) + 1)


def test_rust_and_the_compiled_header_agree_on_every_size_and_offset() -> None:
    assert rust._capi_layout() == cy._capi_layout()


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


def test_function_table_ends_with_release_idle_compressor_and_the_utf8_kernels() -> None:
    capi = rust._capi_layout()["wsf_capi"]
    assert rust.CAPI_VERSION == 6
    assert capi["abi_version"] == 0
    assert capi["__size__"] == POINTER * (len(capi) - 1)
    assert list(capi)[-6:] == [
        "close_ok",
        "end_batch",
        "release_all",
        "release_idle_compressor",
        "utf8_shape",
        "utf8_decode",
    ]
    assert capi["utf8_decode"] == capi["__size__"] - POINTER


def test_event_carries_the_ascii_flag_in_what_was_padding() -> None:
    # Version 6 put `ascii` between `kind` and `code`: the struct did not grow.
    event = rust._capi_layout()["wsf_event"]
    assert list(event)[1:4] == ["kind", "ascii", "code"]
    assert (event["kind"], event["ascii"], event["code"], event["data"]) == (0, 1, 2, 8)
    assert event["__size__"] == 8 + 3 * POINTER
