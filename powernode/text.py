"""Strings no input may carry: a NUL (PostgreSQL text refuses it) or a lone surrogate (not encodable as UTF-8)."""

from __future__ import annotations

import re
from typing import Any

_BAD = re.compile("[\x00\ud800-\udfff]")  # a str from json.loads holds surrogates only when they were lone


def bad_text_path(value: Any, path: str = "") -> str | None:
    """The path (``a.b.0``) of the first key or string in a parsed JSON value that holds such a character."""
    if isinstance(value, str):
        return (path or "(body)") if _BAD.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _BAD.search(key):
                return path or "(body)"
            found = bad_text_path(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = bad_text_path(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None
