"""Identifiers: time-ordered UUIDs (version 7 layout) so rows sort by creation."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7: 48-bit millisecond timestamp, then randomness; strictly increasing per process."""
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        rand = int.from_bytes(os.urandom(10), "big")
        value = (ms << 80) | rand
        value = max(value, _last + 1)  # same millisecond: keep the order we were called in
        _last = value
    ms_part = value >> 80
    rand_a = (value >> 64) & 0xFFF
    rand_b = value & ((1 << 62) - 1)
    n = (ms_part << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=n)
