"""Database helpers for the few reads written as SQL on the agents' hot path, portable across SQLite and
PostgreSQL. Part of the kernel: imports no app."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from asgiref.sync import AsyncToSync, sync_to_async
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, models
from django.utils.dateparse import parse_datetime

_UUID_FIELD = models.UUIDField()
T = TypeVar("T")


def fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_read(model: Any, fields: Sequence[Any], values: Sequence[Any]) -> list[Any]:
    """Raw column ``values`` of ``model``'s ``fields``, as a hand-written SELECT returns them, converted as
    the ORM reads them (SQLite's booleans, datetimes and UUIDs; JSON text on PostgreSQL)."""
    return _reader(model, fields)(values)


def _reader(model: Any, fields: Sequence[Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """Converts one raw row of ``fields``; the converters are looked up once for all the rows read."""
    db = connections[DEFAULT_DB_ALIAS]
    steps = []
    for field in fields:
        expression = field.get_col(model._meta.db_table)
        steps.append((expression, db.ops.get_db_converters(expression) + field.get_db_converters(db)))

    def read(values: Sequence[Any]) -> list[Any]:
        row = []
        for (expression, converters), value in zip(steps, values, strict=True):
            for convert in converters:
                value = convert(value, expression, db)
            row.append(value)
        return row

    return read


@functools.cache
def _values_sql(model: Any, names: tuple[str, ...], order_by: tuple[str, ...], vendor: str) -> str:
    q = connection.ops.quote_name
    meta = model._meta
    selected = ", ".join(q(meta.get_field(name).column) for name in names)
    order = ", ".join(q(meta.get_field(name).column) for name in order_by)
    return f"SELECT {selected} FROM {q(meta.db_table)}" + (f" ORDER BY {order}" if order else "")


def all_values(model: Any, names: Sequence[str], *, order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``model.objects.order_by(*order_by).values(*names)`` for a small table read on a hot path: the SQL
    is built once per process (the ORM compiles it at every call) and, on PostgreSQL, kept prepared."""
    read = _reader(model, [model._meta.get_field(name) for name in names])
    rows = fetch(_values_sql(model, tuple(names), tuple(order_by), connection.vendor), [])
    return [dict(zip(names, read(row), strict=True)) for row in rows]


@functools.cache
def _update_sql(model: Any, names: tuple[str, ...], unless: str | None, vendor: str) -> str:
    q = connection.ops.quote_name
    meta = model._meta
    sets = ", ".join(f"{q(meta.get_field(name).column)} = %s" for name in names)
    sql = f"UPDATE {q(meta.db_table)} SET {sets} WHERE {q(meta.pk.column)} = %s"
    return sql + (f" AND {q(meta.get_field(unless).column)} <> %s" if unless else "")


def update_row(model: Any, pk: Any, changes: dict[str, Any], *, unless: tuple[str, Any] | None = None) -> int:
    """``model.objects.filter(pk=pk).exclude(**dict([unless])).update(**changes)`` for a write on a hot path
    (``unless``: a non-null field and the value that leaves the row alone): the SQL is built once per process
    for each set of fields (the ORM compiles it at every call), the values are prepared by the fields as the
    ORM prepares them. Like ``QuerySet.update``, no ``save()``, no signals, no ``auto_now``. Rows changed."""
    meta = model._meta
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in changes.items()]
    params.append(meta.pk.get_db_prep_value(pk, connection))
    if unless is not None:
        params.append(meta.get_field(unless[0]).get_db_prep_value(unless[1], connection))
    sql = _update_sql(model, tuple(changes), unless[0] if unless else None, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


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


def db_call(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """``fn`` (which uses the ORM) made awaitable for an async view, holding no thread while awaited.

    Under the ASGI server it runs in the loop's shared thread pool (not the per-request thread Django's
    ``sync_to_async`` would keep for the whole request: a held long-poll would pin a thread each), with
    Django's per-request connection hygiene around it: a broken or expired connection of that pool thread
    is closed, so a connection stays open only while the pool thread keeps being used. When a synchronous
    caller waits above (the test client, ``async_to_sync``), it runs in that caller's thread so its
    transaction is seen.
    """
    nested = getattr(AsyncToSync.executors, "current", None) is not None

    def run(*args: Any, **kwargs: Any) -> T:
        if not nested:
            close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            if not nested:
                close_old_connections()

    return sync_to_async(run, thread_sensitive=nested)


@contextlib.contextmanager
def advisory_lock(*key: int) -> Iterator[bool]:
    """Whether this process holds ``key`` now: on PostgreSQL a session-level ``pg_try_advisory_lock``
    (one holder across every platform process; ``key`` is one bigint or two int4, separate key spaces),
    released on exit; elsewhere (SQLite: one process) always True. Never waits."""
    if connection.vendor != "postgresql":
        yield True
        return
    args = ", ".join(["%s"] * len(key))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({args})", list(key))
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({args})", list(key))
