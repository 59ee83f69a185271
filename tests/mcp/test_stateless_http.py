"""MCP over HTTP is stateless: one client session keeps working when its calls land on different processes.

Two platform server processes (two uvicorn, one database) stand in for the processes behind a load
balancer. The client's HTTP transport sends each request to the next process in turn (round robin, as a
load balancer without stickiness does), and records which process answered which JSON-RPC method, so the
test can show that consecutive calls of one session really were served by different processes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.conftest import Platform, error, output, unique, uvicorn_server


@pytest.fixture(scope="module")
def two_processes(mcp_platform: Platform) -> Iterator[list[str]]:
    with uvicorn_server(mcp_platform, "uvicorn-a") as a, uvicorn_server(mcp_platform, "uvicorn-b") as b:
        yield [a, b]


@dataclass
class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each HTTP request to the next backend in turn; remembers (backend, JSON-RPC method)."""

    backends: list[str]
    served: list[tuple[int, str]] = field(default_factory=list)
    _next: int = 0
    _inner: httpx2.AsyncHTTPTransport = field(default_factory=httpx2.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        index = self._next % len(self.backends)
        self._next += 1
        backend = httpx2.URL(self.backends[index])
        request.url = request.url.copy_with(host=backend.host, port=backend.port)
        method = request.method
        if request.method == "POST" and request.content:
            method = json.loads(request.content).get("method", "response")
        self.served.append((index, method))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_one_session_across_two_processes(mcp_platform: Platform, two_processes: list[str], mode: str) -> None:
    balancer = RoundRobin(two_processes)
    token = mcp_platform.tokens["admin"]
    name = unique("stateless")

    async def scenario() -> dict:
        seen: dict = {}
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60, transport=balancer) as http:
            # the URL names the first process; RoundRobin re-points every request
            transport = streamable_http_client(f"{two_processes[0]}/mcp", http_client=http)
            async with Client(transport, cache=None, mode=mode) as client:
                seen["tools"] = len((await client.list_tools()).tools)

                async def ok(tool: str, /, **arguments: object) -> dict:
                    return output(await client.call_tool(tool, arguments))

                # each call lands on the other process than the one before: it sees the writes made there
                template = (await ok("system_create_node_template", name=unique("stateless")))["template"]
                instance = (await ok("system_provision_instance", template_id=template["id"], name=name))[
                    "instance"
                ]
                network = (await ok("system_sdwan_create_network", name=unique("net")))["network"]
                attach = {"network_id": network["id"], "node_instance_id": instance["id"]}
                await ok("system_sdwan_attach_peer", **attach)
                seen["attach_again"] = error(await client.call_tool("system_sdwan_attach_peer", attach))
                seen["peers"] = (await ok("system_sdwan_list_peers", network_id=network["id"]))["peers"]
                seen["instance"] = instance
        return seen

    seen = anyio.run(scenario)

    assert seen["tools"] > 10
    assert [p["node_instance_id"] for p in seen["peers"] if p["kind"] == "instance"] == [seen["instance"]["id"]]
    assert seen["attach_again"]["type"] == "AlreadyAttachedError", seen["attach_again"]
    calls = [index for index, method in balancer.served if method == "tools/call"]
    assert len(calls) == 6, balancer.served
    # consecutive calls of the one session were answered by different processes
    assert any(a != b for a, b in itertools.pairwise(calls)), balancer.served
    assert set(calls) == {0, 1}, balancer.served
