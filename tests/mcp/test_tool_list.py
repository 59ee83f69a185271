"""tools/list is the action registry: same names, descriptions and input schemas as GET /api/v1/actions/."""

from __future__ import annotations

import anyio
import httpx2

from powernode.registry import all_actions
from tests.mcp.conftest import Transport


async def _tools(transport: Transport) -> dict[str, dict]:
    async with transport.session(transport.platform.tokens["admin"]) as client:
        listed = await client.list_tools()
    return {
        t.name: {
            "name": t.name,
            "description": t.description,
            "input_schema": t.input_schema,
            "read_only": t.annotations.read_only_hint,
        }
        for t in listed.tools
    }


def test_tool_list_equals_registry(transport: Transport) -> None:
    tools = anyio.run(_tools, transport)
    registry = {a.name: a for a in all_actions()}
    assert sorted(tools) == sorted(registry)
    for name, action in registry.items():
        described = action.describe()
        assert tools[name]["description"] == described["description"] != ""
        assert tools[name]["input_schema"] == described["input_schema"]
        assert tools[name]["read_only"] is (not action.mutates)
    assert {
        "system_list_modules",
        "system_sdwan_attach_peer",
        "system_assign_module_to_template",
        "recent_events",
    } <= set(tools)


def test_tool_list_equals_rest_action_list(mcp_platform, mcp_http) -> None:
    """Against the running server's own GET /api/v1/actions/, not just the registry in this process."""
    transport = Transport(kind="http", platform=mcp_platform, http_base=mcp_http)
    tools = anyio.run(_tools, transport)
    answer = httpx2.get(
        f"{mcp_http}/api/v1/actions/", headers={"Authorization": f"Bearer {mcp_platform.tokens['admin']}"}
    )
    assert answer.status_code == 200
    rest = {a["name"]: a for a in answer.json()["actions"]}
    assert sorted(tools) == sorted(rest)
    for name, described in rest.items():
        assert (tools[name]["description"], tools[name]["input_schema"]) == (
            described["description"],
            described["input_schema"],
        )


def test_stdio_legacy_handshake_lists_and_calls(mcp_platform) -> None:
    """Clients that speak the initialize handshake (pre-2026 protocol) over stdio work too."""
    transport = Transport(kind="stdio", platform=mcp_platform, mode="legacy")

    async def scenario() -> tuple[set[str], bool]:
        async with transport.session(mcp_platform.tokens["viewer"]) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("system_list_modules", {})
            return names, result.is_error

    names, is_error = anyio.run(scenario)
    assert names == {a.name for a in all_actions()}
    assert is_error is False
