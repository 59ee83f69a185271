"""Pagination of every list resource: a capped limit/offset, and a keyset cursor for the event log.

``limit`` and ``offset`` are checked here, once, for every resource: text, negatives or values past the cap
are a 400 in the error shape (DESIGN §2), never a database overflow turned into a 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.pagination import BasePagination, LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from powernode.errors import ValidationError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 1_000_000_000  # far past any table we page through; SQL engines overflow long before 2**64
_DIGITS = re.compile(r"[0-9]{1,19}")


def bounded_int(request: Any, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """The query parameter ``name`` as an int in [minimum, maximum]; absent or empty gives ``default``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not minimum <= value <= maximum:
        raise ValidationError(
            f"{name} must be a whole number from {minimum} to {maximum}.",
            details={"parameter": name, "value": raw[:40], "minimum": minimum, "maximum": maximum},
        )
    return value


def _int_parameter(name: str, description: str, *, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum},
    }


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset with ``limit`` in 1..500 (default 50) and ``offset`` in 0..10**9, else a 400."""

    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def get_limit(self, request: Any) -> int:
        return bounded_int(request, self.limit_query_param, default=self.default_limit, minimum=1, maximum=MAX_LIMIT)

    def get_offset(self, request: Any) -> int:
        return bounded_int(request, self.offset_query_param, default=0, minimum=0, maximum=MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            _int_parameter(self.limit_query_param, "Rows per page.", minimum=1, maximum=MAX_LIMIT),
            _int_parameter(self.offset_query_param, "Rows to skip.", minimum=0, maximum=MAX_OFFSET),
        ]


class NewestFirstCursorPagination(BasePagination):
    """Newest first by (``time_field``, id) with a keyset cursor: no COUNT, no OFFSET, stable under ties.

    The cursor names the edge row of the page it came from; the next page is every row strictly older
    than it in (time, id) order, so rows sharing a timestamp are neither skipped nor repeated.
    """

    time_field = "occurred_at"
    cursor_query_param = "cursor"
    limit_query_param = "limit"

    def paginate_queryset(self, queryset: QuerySet, request: Any, view: Any = None) -> list[Any]:
        self.request = request
        limit = bounded_int(request, self.limit_query_param, default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        cursor = self._decode(request.query_params.get(self.cursor_query_param))
        t = self.time_field
        newest_first = queryset.order_by(f"-{t}", "-pk")
        self.has_previous = self.has_next = False
        if cursor is None:
            rows = list(newest_first[: limit + 1])
            self.has_next, rows = len(rows) > limit, rows[:limit]
        else:
            direction, when, pk = cursor
            if direction == "next":
                older = Q(**{f"{t}__lt": when}) | Q(**{t: when, "pk__lt": pk})
                rows = list(newest_first.filter(older)[: limit + 1])
                self.has_next, rows = len(rows) > limit, rows[:limit]
                self.has_previous = bool(rows)
            else:
                newer = Q(**{f"{t}__gt": when}) | Q(**{t: when, "pk__gt": pk})
                rows = list(queryset.order_by(t, "pk").filter(newer)[: limit + 1])
                self.has_previous, rows = len(rows) > limit, rows[:limit][::-1]
                self.has_next = bool(rows)
        self.rows = rows
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self._link("next"), "previous": self._link("previous"), "results": data})

    def _link(self, direction: str) -> str | None:
        if not (self.has_next if direction == "next" else self.has_previous):
            return None
        edge = self.rows[-1] if direction == "next" else self.rows[0]
        position = [direction, getattr(edge, self.time_field).isoformat(), str(edge.pk)]
        token = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
        return replace_query_param(self.request.build_absolute_uri(), self.cursor_query_param, token)

    def _decode(self, raw: str | None) -> tuple[str, dt.datetime, uuid.UUID] | None:
        if raw is None or raw == "":
            return None
        try:
            direction, when, pk = json.loads(base64.urlsafe_b64decode(raw.encode()))
            when = dt.datetime.fromisoformat(when)
            if direction not in ("next", "previous") or when.tzinfo is None:
                raise ValueError(direction)
            return direction, when, uuid.UUID(pk)
        except (binascii.Error, UnicodeError, TypeError, ValueError, AttributeError):
            raise ValidationError(
                "cursor is not one this API issued: follow the next and previous links.",
                details={"parameter": self.cursor_query_param},
            ) from None

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: the next or previous link of the page before.",
                "schema": {"type": "string"},
            },
            _int_parameter(self.limit_query_param, "Rows per page.", minimum=1, maximum=MAX_LIMIT),
        ]
