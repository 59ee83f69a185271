"""Database helpers for the few reads written as SQL on the agents' hot path, portable across SQLite and
PostgreSQL. Part of the kernel: imports no app."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models
from django.utils.dateparse import parse_datetime

_UUID_FIELD = models.UUIDField()


def fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def db_uuid(value: Any) -> Any:
    """A UUID as the database stores it (PostgreSQL: uuid; SQLite: 32 hex characters)."""
    return _UUID_FIELD.get_db_prep_value(value, connection)


def uuid_text(value: Any) -> str:
    """A UUID column's value as canonical text, whichever form the backend returned."""
    if isinstance(value, str) and len(value) == 36:
        return value  # PostgreSQL's text form is already canonical (lowercase, dashed)
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def aware(value: datetime | None) -> datetime | None:
    """Datetime columns come back naive (UTC) from SQLite and aware from PostgreSQL: make them comparable."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def columns(model: Any) -> dict[str, str]:
    """Field name → column name, so the SQL follows the models."""
    return {f.name: f.column for f in model._meta.fields}


def text_datetime(value: str | None) -> datetime | None:
    """A timestamp column cast to text: PostgreSQL writes '...+00', SQLite stores naive UTC."""
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return aware(parsed)


def inet_text(value: str) -> str:
    """An IP column cast to text: PostgreSQL's inet adds '/128' to a host address; drop it."""
    return value.split("/", 1)[0]


def any_datetime(value: datetime | str | None) -> datetime | None:
    """An aggregate over a timestamp column: a datetime from PostgreSQL, text from SQLite."""
    return text_datetime(value) if isinstance(value, str) else aware(value)
