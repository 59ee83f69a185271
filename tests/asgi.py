"""One HTTP request to an ASGI application in process (no socket): what the handler tests and the profile of
the request paths (bench/profile_paths.py) send."""

from __future__ import annotations

import asyncio
from typing import Any


async def asgi_request(
    app: Any, method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> tuple[int, dict[str, list[str]], bytes]:
    """(status, headers by lower-case name, body) of ``method path?query`` with ``body`` and ``headers``
    (the caller's, sent as given: Host and Content-Length included), from a client at 127.0.0.1."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers or []],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    received = False
    status = 0
    answer: dict[str, list[str]] = {}
    chunks: list[bytes] = []

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect while the answer is made
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message["headers"]:
                answer.setdefault(name.decode().lower(), []).append(value.decode())
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, answer, b"".join(chunks)
