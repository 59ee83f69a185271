"""Refusals and bad input are tool errors with the REST error shape; the server keeps serving after them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import anyio
import httpx2

from powernode.registry import MAX_INPUT_BYTES
from tests.mcp.conftest import BASE_DIR, INITIALIZE, INITIALIZED, Transport, error, output, unique


def test_token_without_permission_gets_permission_denied(transport: Transport) -> None:
    async def scenario() -> dict:
        seen = {}
        async with transport.session(transport.platform.tokens["viewer"]) as client:
            seen["modules"] = output(await client.call_tool("system_list_modules", {}))
            seen["attach"] = error(
                await client.call_tool(
                    "system_sdwan_attach_peer",
                    {"network_id": str(uuid.uuid4()), "node_instance_id": str(uuid.uuid4())},
                )
            )
            seen["assign"] = error(
                await client.call_tool(
                    "system_assign_module_to_template",
                    {"template_id": str(uuid.uuid4()), "module_id": str(uuid.uuid4())},
                )
            )
            seen["events"] = error(await client.call_tool("recent_events", {}))
        return seen

    seen = anyio.run(scenario)
    assert seen["modules"]["modules"]
    for name, permission in [
        ("attach", "system.sdwan_manage"),
        ("assign", "system.docker_provision"),
        ("events", "system.events_view"),
    ]:
        refused = seen[name]
        assert refused["type"] == "PermissionDenied", refused
        assert "mcp-viewer" in refused["message"] and permission in refused["message"]
        assert refused["details"]["permission"] == permission


def test_bad_arguments_unknown_tool_and_oversize_are_tool_errors(transport: Transport) -> None:
    async def scenario() -> dict:
        seen = {}
        async with transport.session(transport.platform.tokens["admin"]) as client:
            call = client.call_tool
            seen["wrong_type"] = error(await call("recent_events", {"limit": "ten"}))
            seen["too_big_number"] = error(await call("recent_events", {"limit": 501}))
            seen["missing"] = error(await call("system_sdwan_attach_peer", {"network_id": str(uuid.uuid4())}))
            seen["unknown_field"] = error(await call("system_list_modules", {"verbose": True}))
            seen["not_uuid"] = error(await call("system_get_instance", {"id": "node-1"}))
            seen["unknown_tool"] = error(await call("system_reboot_everything", {}))
            seen["oversize"] = error(
                await call("recent_events", {"kind_prefix": "x" * (MAX_INPUT_BYTES + 1000)})
            )
            seen["not_found"] = error(await call("system_get_instance", {"id": str(uuid.uuid4())}))
            seen["no_arguments"] = output(await call("system_list_modules"))
            seen["conflict"] = error(
                await call("system_sdwan_create_network", {"name": "x", "prefix": "10.0.0.0/8"})
            )
            name = unique("net")
            await call("system_sdwan_create_network", {"name": name})
            seen["duplicate"] = error(await call("system_sdwan_create_network", {"name": name}))
            # still serving after all of that
            seen["after"] = output(await call("recent_events", {"limit": 1}))
        return seen

    seen = anyio.run(scenario)
    assert seen["wrong_type"]["type"] == "ValidationError"
    assert (
        seen["wrong_type"]["message"] == "Invalid input for recent_events: limit: expected integer, got str"
    )
    assert seen["wrong_type"]["details"]["fields"] == {"limit": "expected integer, got str"}
    assert seen["too_big_number"]["details"]["fields"] == {"limit": "must be at most 500"}
    assert seen["missing"]["type"] == "ValidationError"
    assert seen["missing"]["details"]["fields"] == {"node_instance_id": "this field is required"}
    assert seen["unknown_field"]["details"]["fields"] == {"(body)": "unknown field(s): verbose"}
    assert seen["not_uuid"]["details"]["fields"] == {"id": "'node-1' is not a valid uuid"}
    assert seen["unknown_tool"]["type"] == "NotFound"
    assert "system_reboot_everything" in seen["unknown_tool"]["message"]
    assert "tools/list" in seen["unknown_tool"]["message"]
    assert seen["oversize"]["type"] == "PayloadTooLarge"
    assert seen["oversize"]["details"] == {"limit": MAX_INPUT_BYTES}
    assert seen["not_found"]["type"] == "NotFound"
    assert seen["no_arguments"]["modules"]
    assert seen["conflict"]["type"] == "ValidationError"
    assert seen["duplicate"]["type"] == "ConflictError" and "already exists" in seen["duplicate"]["message"]
    assert len(seen["after"]["events"]) == 1


def test_errors_match_the_rest_api(mcp_platform, mcp_http) -> None:
    """Same input, same operator: the MCP tool error carries exactly the REST error body."""
    transport = Transport(kind="http", platform=mcp_platform, http_base=mcp_http)
    cases = [
        ("admin", "recent_events", {"limit": 0}),
        ("admin", "system_get_instance", {"id": str(uuid.uuid4())}),
        ("viewer", "system_sdwan_create_network", {"name": "n"}),
        ("admin", "system_assign_module_to_template", {"template_id": "x", "module_id": "y"}),
    ]

    async def scenario() -> list[dict]:
        bodies = []
        for who, name, arguments in cases:
            async with transport.session(mcp_platform.tokens[who]) as client:
                bodies.append({"error": error(await client.call_tool(name, arguments))})
        return bodies

    for (who, name, arguments), mcp_body in zip(cases, anyio.run(scenario), strict=True):
        answer = httpx2.post(
            f"{mcp_http}/api/v1/actions/{name}",
            json=arguments,
            headers={"Authorization": f"Bearer {mcp_platform.tokens[who]}"},
        )
        assert answer.status_code in (400, 403, 404)
        assert answer.json() == mcp_body


def test_outputs_match_the_rest_api(mcp_platform, mcp_http) -> None:
    transport = Transport(kind="http", platform=mcp_platform, http_base=mcp_http)

    async def scenario() -> dict:
        async with transport.session(mcp_platform.tokens["admin"]) as client:
            return output(await client.call_tool("system_list_modules", {}))

    answer = httpx2.post(
        f"{mcp_http}/api/v1/actions/system_list_modules",
        headers={"Authorization": f"Bearer {mcp_platform.tokens['admin']}"},
    )
    assert answer.status_code == 200
    assert anyio.run(scenario) == answer.json()


def test_revoked_token_stops_working_mid_session(mcp_platform) -> None:
    """stdio checks the token at start and on every call, as the REST API does on every request."""
    transport = Transport(kind="stdio", platform=mcp_platform)
    token = mcp_platform.tokens["revoked"]
    prefix = token.split("_")[1]

    async def scenario() -> tuple[dict, dict]:
        async with transport.session(token) as client:
            before = output(await client.call_tool("system_list_modules", {}))
            await anyio.to_thread.run_sync(
                mcp_platform.django,
                "from django.utils import timezone; from apps.system.models import OperatorToken; "
                f"OperatorToken.objects.filter(prefix={prefix!r}).update(revoked_at=timezone.now())",
            )
            return before, error(await client.call_tool("system_list_modules", {}))

    before, after = anyio.run(scenario)
    assert before["modules"]
    assert after["type"] == "NotAuthenticated" and "revoked" in after["message"]


# Hand-written JSON-RPC: the SDK's client cannot send "arguments" that are not an object, other clients can.
def _tools_call(request_id: int, arguments: object) -> dict:
    params = {"name": "recent_events", "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


NON_OBJECT_ARGUMENTS = {2: [1, 2], 3: "limit=1", 4: 7}


def _check_non_object_answers(answers: dict[int, dict]) -> None:
    for request_id, arguments in NON_OBJECT_ARGUMENTS.items():
        result = answers[request_id]["result"]
        assert result["isError"] is True
        err = json.loads(result["content"][0]["text"])["error"]
        assert err["type"] == "ValidationError"
        assert err["message"] == (
            f"The input of recent_events must be a JSON object, got {type(arguments).__name__}."
        )
    assert answers[5]["result"]["isError"] is False  # and the server still serves
    assert len(answers[5]["result"]["structuredContent"]["events"]) <= 1


def test_non_object_arguments_are_tool_errors_over_stdio(mcp_platform) -> None:
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "mcp_server"],
        cwd=BASE_DIR,
        env={**mcp_platform.env, "POWERNODE_TOKEN": mcp_platform.tokens["admin"]},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        messages = [INITIALIZE, INITIALIZED]
        messages += [_tools_call(i, a) for i, a in NON_OBJECT_ARGUMENTS.items()]
        messages.append(_tools_call(5, {"limit": 1}))
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        answers: dict[int, dict] = {}
        while len(answers) < 5:  # answers to ids 1..5; stdin stays open until they are all in
            line = proc.stdout.readline()
            assert line, "the server closed stdout early"
            answer = json.loads(line)
            answers[answer["id"]] = answer
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _check_non_object_answers(answers)


def test_non_object_arguments_are_tool_errors_over_http(mcp_platform, mcp_http) -> None:
    headers = {
        "Authorization": f"Bearer {mcp_platform.tokens['admin']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    with httpx2.Client(base_url=mcp_http, headers=headers, timeout=60) as http:
        opened = http.post("/mcp", json=INITIALIZE)
        assert opened.status_code == 200
        assert "mcp-session-id" not in opened.headers, "stateless: no session to name"
        session = {"Mcp-Protocol-Version": "2025-06-18"}
        assert http.post("/mcp", json=INITIALIZED, headers=session).status_code == 202
        answers = {}
        calls = [*NON_OBJECT_ARGUMENTS.items(), (5, {"limit": 1})]
        for request_id, arguments in calls:
            answer = http.post("/mcp", json=_tools_call(request_id, arguments), headers=session)
            assert answer.status_code == 200
            answers[request_id] = _jsonrpc_from(answer)
    _check_non_object_answers(answers)


def _jsonrpc_from(answer: httpx2.Response) -> dict:
    if answer.headers["content-type"].startswith("application/json"):
        return answer.json()
    data = [line[len("data:") :].strip() for line in answer.text.splitlines() if line.startswith("data:")]
    messages = [json.loads(d) for d in data if d]
    return next(m for m in messages if "id" in m)
