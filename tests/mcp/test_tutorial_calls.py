"""The tutorial's platform.<action>(...) calls as MCP tool calls, over every transport."""

from __future__ import annotations

import ipaddress

import anyio

from tests.mcp.conftest import Transport, error, output, unique


def test_list_modules(transport: Transport) -> None:
    async def scenario() -> dict:
        async with transport.session(transport.platform.tokens["admin"]) as client:
            return output(await client.call_tool("system_list_modules", {}))

    modules = {m["name"]: m for m in anyio.run(scenario)["modules"]}
    assert modules["docker-engine"]["lifecycle_state"] == "live"
    assert modules["docker-engine"]["runtime"] == "docker"
    assert {modules["k3s-server"]["lifecycle_state"], modules["k3s-agent"]["lifecycle_state"]} == {
        "published"
    }
    assert set(modules["docker-engine"]) >= {"id", "name", "version", "runtime", "lifecycle_state", "blessed"}


def test_attach_peer_then_assign_docker_engine(transport: Transport) -> None:
    """Assignment is refused (MissingSdwanPeerError, nothing written) until the instance has a peer."""

    async def scenario() -> dict:
        seen: dict = {}
        async with transport.session(transport.platform.tokens["admin"]) as client:

            async def ok(tool: str, /, **arguments: object) -> dict:
                return output(await client.call_tool(tool, arguments))

            modules = (await ok("system_list_modules"))["modules"]
            docker = next(m for m in modules if m["name"] == "docker-engine")
            template = (await ok("system_create_node_template", name=unique("docker-nodes")))["template"]
            instance = (
                await ok("system_provision_instance", template_id=template["id"], name=unique("node"))
            )["instance"]
            network = (await ok("system_sdwan_create_network", name=unique("net")))["network"]
            assign = {"template_id": template["id"], "module_id": docker["id"]}
            before = (await ok("recent_events", kind_prefix="system.docker.module.assigned", limit=500))[
                "events"
            ]

            seen["refused"] = error(await client.call_tool("system_assign_module_to_template", assign))
            after = (await ok("recent_events", kind_prefix="system.docker.module.assigned", limit=500))[
                "events"
            ]
            seen["written_by_refusal"] = len(after) - len(before)

            attach = {"network_id": network["id"], "node_instance_id": instance["id"]}
            seen["peer"] = (await ok("system_sdwan_attach_peer", **attach))["peer"]
            seen["attach_again"] = error(await client.call_tool("system_sdwan_attach_peer", attach))
            seen["peers"] = (await ok("system_sdwan_list_peers", network_id=network["id"]))["peers"]
            seen["assignment"] = (await ok("system_assign_module_to_template", **assign))["assignment"]
            seen["events"] = (await ok("recent_events", kind_prefix="system.", limit=50))["events"]
            seen.update(template=template, instance=instance, network=network, docker=docker)
        return seen

    seen = anyio.run(scenario)
    instance, network = seen["instance"], seen["network"]

    refused = seen["refused"]
    assert refused["type"] == "MissingSdwanPeerError"
    assert "system_sdwan_attach_peer" in refused["message"] and instance["name"] in refused["message"]
    assert refused["details"] == {"instances": [{"id": instance["id"], "name": instance["name"]}]}
    assert seen["written_by_refusal"] == 0

    peer = seen["peer"]
    assert peer["node_instance_id"] == instance["id"] and peer["network_id"] == network["id"]
    overlay = ipaddress.IPv6Address(peer["overlay_address"].split("/")[0])
    assert overlay in ipaddress.IPv6Network(network["prefix"])
    assert seen["attach_again"]["type"] == "AlreadyAttachedError"
    assert [p["id"] for p in seen["peers"] if p["node_instance_id"] == instance["id"]] == [peer["id"]]

    assignment = seen["assignment"]
    assert assignment["template_id"] == seen["template"]["id"]
    assert assignment["module_id"] == seen["docker"]["id"] and assignment["module_name"] == "docker-engine"

    kinds = [(e["kind"], e["instance_id"]) for e in seen["events"]]
    assert ("system.sdwan.peer.attached", instance["id"]) in kinds
    newest = seen["events"][0]
    assert newest["kind"] == "system.docker.module.assigned" and newest["actor"] == "mcp-admin"
    times = [e["occurred_at"] for e in seen["events"]]
    assert times == sorted(times, reverse=True)


def test_recent_events_filters_and_limits(transport: Transport) -> None:
    async def scenario() -> tuple[list, list]:
        async with transport.session(transport.platform.tokens["admin"]) as client:
            await client.call_tool("system_sdwan_create_network", {"name": unique("net")})
            await client.call_tool("system_sdwan_create_network", {"name": unique("net")})
            sdwan = output(
                await client.call_tool("recent_events", {"kind_prefix": "system.sdwan", "limit": 2})
            )
            everything = output(await client.call_tool("recent_events", {}))
            return sdwan["events"], everything["events"]

    sdwan, everything = anyio.run(scenario)
    assert len(sdwan) == 2 and all(e["kind"].startswith("system.sdwan") for e in sdwan)
    assert 2 <= len(everything) <= 50
    assert set(everything[0]) >= {"id", "kind", "occurred_at", "actor", "instance_id", "host_id", "data"}
