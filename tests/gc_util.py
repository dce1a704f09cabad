# SPDX-License-Identifier: MIT
"""Turning the cyclic garbage collector off around a test (the native-state counters
are process-wide, so only reference counting may free what a test counts)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Collect once, then disable the cyclic collector until the block ends.

    Yields:
        Nothing; inside the block only reference counting frees objects.
    """
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
