"""The catalogue of event kinds: every kind is declared once, by the app that records it.

Each app declares its kinds as module constants (``apps/<app>/kinds.py``)::

    INSTALLING = declare("system.docker.runtime.installing", "The agent started installing dockerd.")

``event_record`` refuses a kind nobody declared, so a typo cannot write a kind that no filter, quick
link or test will ever find. Part of the kernel: imports no app.
"""

from __future__ import annotations

_KINDS: dict[str, str] = {}


class UndeclaredEventKind(LookupError):
    """A programming error (not an operator's): the kind is missing from the app's ``kinds.py``."""


def declare(kind: str, description: str = "") -> str:
    """Declare ``kind`` (dotted, lowercase) and return it, so the declaration is the constant."""
    parts = kind.split(".")
    if len(parts) < 2 or not all(p and p.replace("_", "").isalnum() and p == p.lower() for p in parts):
        raise ValueError(f"event kinds are dotted lowercase words, got {kind!r}")
    if kind in _KINDS and _KINDS[kind] != description and description and _KINDS[kind]:
        raise ValueError(f"event kind {kind!r} declared twice with different descriptions")
    _KINDS[kind] = description or _KINDS.get(kind, "")
    return kind


def check(kind: str) -> str:
    if kind not in _KINDS:
        raise UndeclaredEventKind(
            f"event kind {kind!r} is not declared: add it to the recording app's kinds.py with declare()"
        )
    return kind


def is_declared(kind: str) -> bool:
    return kind in _KINDS


def declared() -> dict[str, str]:
    """kind → description, sorted by kind."""
    return dict(sorted(_KINDS.items()))


def with_prefix(prefix: str) -> list[str]:
    """The declared kinds starting with ``prefix`` (sorted)."""
    return [k for k in sorted(_KINDS) if k.startswith(prefix)]
