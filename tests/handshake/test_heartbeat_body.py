"""The served heartbeat (an async view) parses what agents send without a DRF Request: every body and
Content-Type gets the answer HeartbeatView (DRF's parsing) gives — status and error body alike."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import RequestFactory

from apps.nodes.agent_views import HeartbeatView, heartbeat

NO_LENGTH = "(no Content-Length)"
GOOD = json.dumps({"agent_version": "0.1.0", "runtimes": {"docker": {"phase": "none"}}}).encode()
CASES = [
    ("application/json", GOOD),
    ("application/json", b""),  # no body: {} -> agent_version is required
    (f"application/json{NO_LENGTH}", GOOD),  # DRF reads no body without a length: {} as well
    ("application/json", b"{"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'"text"'),
    ("application/json", b"null"),
    ("application/json", b'{"agent_version": "a\\u0000b"}'),
    ("application/json", b'{"agent_version": "\\ud800"}'),
    ("application/json", b"[" * 5000 + b"]" * 5000),
    ("application/json", '{"agent_version": "é"}'.encode("latin-1")),  # not UTF-8
    ("application/json", b"\xef\xbb\xbf" + GOOD),  # a byte order mark
    ("application/json", b'{"agent_version": NaN}'),
    ("application/json; charset=utf-8", GOOD),  # through DRF's Request
    ("Application/JSON", GOOD),
    ("text/plain", GOOD),
    ("application/x-www-form-urlencoded", b"agent_version=1"),
    ("", GOOD),
]


def answer(response) -> tuple[int, object]:  # noqa: ANN001
    if hasattr(response, "render"):
        response.render()
    return response.status_code, json.loads(response.content)


@pytest.mark.parametrize(("content_type", "body"), CASES, ids=[f"{c or 'none'}-{b[:12]!r}" for c, b in CASES])
def test_the_served_heartbeat_parses_as_drf_does(fleet, content_type: str, body: bytes) -> None:  # noqa: ANN001
    factory = RequestFactory()

    def request():  # noqa: ANN202 - the headers exactly as given (RequestFactory leaves both out for no body)
        made = factory.generic(
            "POST", "/api/v1/agent/heartbeat", body, HTTP_AUTHORIZATION=f"Bearer {fleet['agent_token']}"
        )
        made.META.pop("CONTENT_TYPE", None)
        made.META.pop("CONTENT_LENGTH", None)
        if content_type:
            made.META["CONTENT_TYPE"] = content_type.removesuffix(NO_LENGTH)
        if not content_type.endswith(NO_LENGTH):
            made.META["CONTENT_LENGTH"] = str(len(body))
        return made

    served = answer(async_to_sync(heartbeat)(request()))
    drf = answer(HeartbeatView.as_view()(request()))
    assert served == drf
