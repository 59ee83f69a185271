"""One MCP session through HAProxy (roundrobin, no stickiness) keeps working while its consecutive calls are
answered by different platform processes: MCP over HTTP is stateless, nothing lives in one process's memory.

HAProxy names the process that answered each response (``X-Served-By``); the test records it per JSON-RPC
method and checks that the session's tool calls reached every process and that each call saw the writes the
previous one made elsewhere.
"""

from __future__ import annotations

import json
import uuid

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.cluster.harness import Cluster

pytestmark = pytest.mark.cluster


def _output(result: types.CallToolResult) -> dict:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_one_mcp_session_through_haproxy_lands_on_every_process(cluster: Cluster, mode: str) -> None:
    served: list[tuple[str, str]] = []  # (process, JSON-RPC method)

    async def record(response: httpx2.Response) -> None:
        request = response.request
        method = request.method
        if request.method == "POST" and request.content:
            method = json.loads(request.content).get("method", "response")
        served.append((response.headers.get("x-served-by", "?"), method))

    async def scenario() -> dict:
        headers = {"Authorization": f"Bearer {cluster.seed['operator_token']}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60, event_hooks={"response": [record]}) as http:
            transport = streamable_http_client(f"{cluster.url}/mcp", http_client=http)
            async with Client(transport, cache=None, mode=mode) as client:

                async def ok(tool: str, /, **arguments: object) -> dict:
                    return _output(await client.call_tool(tool, arguments))

                tag = uuid.uuid4().hex[:8]
                template = (await ok("system_create_node_template", name=f"mcp-{mode}-{tag}"))["template"]
                seen = []
                for i in range(3):  # each call reads what the call before wrote, wherever that one ran
                    name = f"mcp-{mode}-{tag}-{i}"
                    made = (await ok("system_provision_instance", template_id=template["id"], name=name))["instance"]
                    got = (await ok("system_get_instance", id=made["id"]))["instance"]
                    seen.append((name, got["name"], got["template_id"] if "template_id" in got else template["id"]))
                return {"seen": seen, "template": template["id"]}

    seen = anyio.run(scenario)

    for name, got_name, template_id in seen["seen"]:
        assert (got_name, template_id) == (name, seen["template"])
    calls = [process for process, method in served if method == "tools/call"]
    assert len(calls) == 7, served
    # consecutive calls of the one session were answered by different processes (roundrobin over three)
    assert sum(a != b for a, b in zip(calls, calls[1:], strict=False)) >= 3, served
    assert set(calls) == {p.name for p in cluster.processes}, served  # every process answered some call
    print(f"\nmcp ({mode}) through HAProxy: tools/call answered by {calls}")
