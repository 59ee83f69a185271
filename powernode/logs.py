"""Log lines: one JSON object per line in production (``POWERNODE_LOG_FORMAT=json``), text in development.

Every line carries time, level, logger and message, plus what is known of the request it belongs to: its
request id (``X-Request-ID``, accepted from the caller or made here, and sent back), the actor, and the
instance and host ids. Those come from context variables: the request middleware sets the id, and the
places that learn the rest (agent authentication, ``run_action``, the handshake) call :func:`bind`. Under
ASGI each request has its own context, and asgiref carries it into and back out of worker threads.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

FIELDS = ("request_id", "actor", "instance_id", "host_id")
_context: dict[str, contextvars.ContextVar[str]] = {name: contextvars.ContextVar(name, default="") for name in FIELDS}

# what we take from a caller's X-Request-ID: short, printable, no spaces (it goes into every log line)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
REQUEST_ID_HEADER = "X-Request-ID"

request_log = logging.getLogger("powernode.request")


def bind(**fields: Any) -> None:
    """Add what became known (``actor=``, ``instance_id=``, ``host_id=``) to this request's log lines."""
    for name, value in fields.items():
        if value not in (None, ""):
            _context[name].set(str(value))


def current() -> dict[str, str]:
    return {name: var.get() for name, var in _context.items() if var.get()}


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a sane one, else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the request's fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **current(),
        }
        for name in ("method", "path", "status", "duration_ms"):  # the request line's own fields
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Development: ``time level logger [request id actor ...] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = current()
        record.context = (" [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]") if fields else ""
        return super().format(record)


class RequestContextMiddleware:
    """Gives each request its id (the caller's ``X-Request-ID`` or a new one, sent back in the response)
    and a fresh log context, and logs one ``powernode.request`` line at INFO when it ends."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        tokens, start = self._begin(request), time.perf_counter()
        try:
            response = self.get_response(request)
            return self._end(request, response, start)
        finally:
            _reset(tokens)

    async def __acall__(self, request: Any) -> Any:
        tokens, start = self._begin(request), time.perf_counter()
        try:
            response = await self.get_response(request)
            return self._end(request, response, start)
        finally:
            _reset(tokens)

    @staticmethod
    def _begin(request: Any) -> list[contextvars.Token]:
        # every field set, the others to "": a sync server's thread keeps its context between requests
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        return [var.set(request_id if name == "request_id" else "") for name, var in _context.items()]

    @staticmethod
    def _end(request: Any, response: Any, start: float) -> Any:
        response[REQUEST_ID_HEADER] = request.request_id
        if request_log.isEnabledFor(logging.INFO):
            request_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 1),
                },
            )
        return response


def _reset(tokens: list[contextvars.Token]) -> None:
    for var, token in zip(_context.values(), tokens, strict=True):
        var.reset(token)
