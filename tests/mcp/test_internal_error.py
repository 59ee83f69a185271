"""An action that crashes becomes an InternalError tool error (logged) and the server keeps serving.

In-process (the SDK's in-memory client against ``build_server``) with temporary registry entries: the
production registry has no action that fails on purpose. No database: the operator is an unsaved
superuser (the token check itself is covered over both real transports in test_connect.py).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from django.contrib.auth import get_user_model
from mcp import Client

from apps.system.mcp import tools
from apps.system.mcp.server import build_server
from powernode import registry
from powernode.errors import NotAuthenticated
from tests.mcp.conftest import error, output

TOKEN = "pno_unit00000000_token"
SCHEMA = {"type": "object", "properties": {"word": {"type": "string"}}, "additionalProperties": False}


def _explode(*, actor: Any, **params: Any) -> dict:
    raise RuntimeError("secret internals that must not reach the client")


def _echo(*, actor: Any, word: str = "") -> dict:
    return {"echo": word, "actor": actor.label}


def _operator_for_token(token: str) -> Any:
    if token != TOKEN:
        raise NotAuthenticated("The operator token is not valid.")
    return get_user_model()(username="unit-admin", is_superuser=True, is_active=True)


@pytest.fixture
def temporary_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, handler in [("test_explode", _explode), ("test_echo", _echo)]:
        action = registry.Action(name, f"{name} (test only)", "system.instance_view", SCHEMA, handler, False)
        monkeypatch.setitem(registry._REGISTRY, name, action)
    monkeypatch.setattr(tools, "operator_for_token", _operator_for_token)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_crashing_action_is_an_internal_error_and_the_server_keeps_serving(
    temporary_actions: None, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    server = build_server(lambda ctx: TOKEN)

    async def scenario() -> tuple[dict, dict, dict, set[str]]:
        async with Client(server, cache=None, mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            crashed = error(await client.call_tool("test_explode", {}))
            again = error(await client.call_tool("test_explode", {"word": "x"}))
            after = output(await client.call_tool("test_echo", {"word": "still here"}))
            return crashed, again, after, names

    with caplog.at_level(logging.ERROR, logger="apps.system.mcp"):
        crashed, again, after, names = anyio.run(scenario)
    assert {"test_explode", "test_echo"} <= names, "a new registry entry is a new tool, with no second list"
    expected = {"type": "InternalError", "message": tools.INTERNAL_ERROR_MESSAGE, "details": {}}
    assert crashed == again == expected
    assert "secret internals" not in str(crashed)
    assert after == {"echo": "still here", "actor": "unit-admin"}
    logged = [r for r in caplog.records if r.name.startswith("apps.system.mcp") and r.exc_info]
    assert len(logged) == 2 and "test_explode" in logged[0].getMessage()
    assert "secret internals" in caplog.text, "the server log keeps what the client is not told"


def test_a_token_that_stops_verifying_is_not_authenticated(temporary_actions: None) -> None:
    server = build_server(lambda ctx: "pno_other0000000_token")

    async def scenario() -> dict:
        async with Client(server, cache=None) as client:
            return error(await client.call_tool("test_echo", {}))

    assert anyio.run(scenario)["type"] == "NotAuthenticated"
