"""Connecting: a missing or wrong token is refused before any tool runs; Host headers; stdout hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import httpx2
import pytest

from tests.mcp.conftest import ALLOWED_HOST, BASE_DIR, INITIALIZE, MCP_HEADERS, Platform, Transport, output

WRONG_TOKENS = {
    "unknown": "pno_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "garbage": "not-a-token",
    "agent-shaped": "pna_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "hub-shaped": "pnh_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
}


def _run_stdio(platform: Platform, *args: str, token: str | None) -> subprocess.CompletedProcess:
    env = dict(platform.env)
    env.pop("POWERNODE_TOKEN", None)
    if token is not None:
        env["POWERNODE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "manage.py", "mcp_server", *args],
        cwd=BASE_DIR,
        env=env,
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stdio_refuses_to_start_without_a_token(mcp_platform) -> None:
    done = _run_stdio(mcp_platform, token=None)
    assert done.returncode != 0
    assert done.stdout == ""
    assert (
        "mcp_server refuses to start: No operator token: set POWERNODE_TOKEN or pass --token" in done.stderr
    )


@pytest.mark.parametrize("kind", sorted(WRONG_TOKENS))
def test_stdio_refuses_to_start_with_a_wrong_token(mcp_platform, kind: str) -> None:
    done = _run_stdio(mcp_platform, "--token", WRONG_TOKENS[kind], token=mcp_platform.tokens["admin"])
    assert done.returncode != 0, "--token wins over POWERNODE_TOKEN, and this one is wrong"
    assert done.stdout == ""
    assert "The operator token is not valid" in done.stderr


def test_stdio_with_a_valid_token_writes_only_mcp_to_stdout(mcp_platform) -> None:
    done = _run_stdio(mcp_platform, token=mcp_platform.tokens["viewer"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "powernode"
    assert "acting as mcp-viewer" in done.stderr


def _connect_with_a_wrong_token(transport: Transport) -> BaseException:
    """The SDK client's session with an unknown token must fail (not hang); returns what it raised."""

    async def scenario() -> None:
        with anyio.fail_after(120):  # a guard against a hang, not a measurement
            async with transport.session(WRONG_TOKENS["unknown"]) as client:
                await client.list_tools()

    with pytest.raises(Exception) as raised:
        anyio.run(scenario)
    assert not isinstance(raised.value, TimeoutError)
    return raised.value


def test_stdio_sdk_client_fails_to_connect_with_a_wrong_token(mcp_platform) -> None:
    _connect_with_a_wrong_token(Transport(kind="stdio", platform=mcp_platform))


@pytest.mark.parametrize("token", [None, *sorted(WRONG_TOKENS)])
def test_http_refuses_missing_or_wrong_token_with_401(mcp_http, token: str | None) -> None:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {WRONG_TOKENS[token]}"
    answer = httpx2.post(f"{mcp_http}/mcp", headers=headers, json=INITIALIZE)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer ")
    assert answer.json()["error"] == "invalid_token"


def test_http_sdk_client_fails_to_connect_with_a_wrong_token(mcp_platform, mcp_http) -> None:
    raised = _connect_with_a_wrong_token(Transport(kind="http", platform=mcp_platform, http_base=mcp_http))
    assert "Server returned an error response" in repr(raised) or "401" in repr(raised)


def test_http_accepts_a_listed_non_localhost_host(mcp_platform, mcp_http) -> None:
    transport = Transport(kind="http", platform=mcp_platform, http_base=mcp_http, mode="legacy")
    port = mcp_http.rsplit(":", 1)[1]

    async def scenario() -> dict:
        async with transport.session(mcp_platform.tokens["admin"], host=f"{ALLOWED_HOST}:{port}") as client:
            return output(await client.call_tool("system_list_modules", {}))

    assert anyio.run(scenario)["modules"]


def test_http_refuses_an_unlisted_host(mcp_platform, mcp_http) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {mcp_platform.tokens['admin']}", "Host": "evil.test"}
    answer = httpx2.post(f"{mcp_http}/mcp", headers=headers, json=INITIALIZE)
    assert answer.status_code == 421


def test_django_routes_are_untouched_by_the_mcp_mount(mcp_platform, mcp_http) -> None:
    auth = {"Authorization": f"Bearer {mcp_platform.tokens['admin']}"}
    assert httpx2.get(f"{mcp_http}/api/v1/actions/", headers=auth).status_code == 200
    assert httpx2.get(f"{mcp_http}/api/v1/actions/").status_code == 401
    assert httpx2.get(f"{mcp_http}/api/v1/no-such-thing", headers=auth).status_code == 404
