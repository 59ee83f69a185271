"""The tutorial's "drive via MCP": docker_list_containers on a real dockerd, reached over the SDWAN overlay.

The lab (tests/lab, lab/) gives real pieces: a platform namespace with the WireGuard hub, a node
namespace joined to the network at the /128 the platform allocated, and a dockerd there with the
certificate the platform signed in the handshake. The MCP stdio server runs in the platform
namespace (where the platform reaches overlays through the hub); the client is the SDK's.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.agents import AgentClient
from tests.csr import make_csr_and_key
from tests.mcp.conftest import Platform, Transport, output, unique
from tests.needs import need

pytestmark = pytest.mark.lab

PROBE_IMAGE = "mcp-probe/busybox:1"


@pytest.fixture
def lab(mcp_platform: Platform) -> Iterator[object]:
    from lab.proc import why_lab_cannot_run
    from lab.topology import Lab

    reason = why_lab_cannot_run()
    need(reason is None, reason or "")
    need(
        shutil.which("docker") is not None and Path("/bin/busybox").exists(),
        "needs the docker CLI and busybox",
    )
    # the tests/lab prefix form ("pnl" + 3 hex), so its sweep of labs whose owner died finds this one too
    world = Lab(f"pnl{secrets.token_hex(2)[:3]}-").up()
    try:
        yield world
    finally:
        left = world.close()
    assert left == {}, f"the lab left things behind: {left}"


def _docker(socket: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["docker", "-H", f"unix://{socket}", *args], input=stdin, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


def _busybox_rootfs_tar(workdir: Path) -> bytes:
    tar_path = workdir / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
    return tar_path.read_bytes()


def test_docker_list_containers_on_a_real_host_through_mcp(
    lab, mcp_platform: Platform, mcp_http: str
) -> None:
    from lab.dockerd import DockerdTls
    from lab.pki import KeyPair

    admin = mcp_platform.tokens["admin"]
    prefix = f"fd70:6e6c:c{secrets.token_hex(2)[:3]}::/64"

    # 1. The tutorial's preparation, as MCP calls: template, instance, network, peer, docker-engine.
    async def prepare() -> dict:
        async with Transport(kind="stdio", platform=mcp_platform).session(admin) as client:

            async def ok(tool: str, /, **arguments: object) -> dict:
                return output(await client.call_tool(tool, arguments))

            template = (await ok("system_create_node_template", name=unique("docker-nodes")))["template"]
            provisioned = await ok(
                "system_provision_instance", template_id=template["id"], name=unique("node")
            )
            network = (await ok("system_sdwan_create_network", name=unique("lab"), prefix=prefix))["network"]
            peer = (
                await ok(
                    "system_sdwan_attach_peer",
                    network_id=network["id"],
                    node_instance_id=provisioned["instance"]["id"],
                )
            )["peer"]
            docker = next(
                m for m in (await ok("system_list_modules"))["modules"] if m["name"] == "docker-engine"
            )
            await ok("system_assign_module_to_template", template_id=template["id"], module_id=docker["id"])
            return {
                "agent_token": provisioned["agent_token"],
                "overlay": peer["overlay_address"].split("/")[0],
            }

    state = anyio.run(prepare)
    overlay = state["overlay"]

    # 2. The SDWAN for real: the node joins the hub at the /128 the platform allocated.
    lab.add_host("node")
    lab.add_network("A", prefix)
    lab.join("node", "A", overlay)

    # 3. The agent's handshake against the platform's HTTP API, then dockerd with the signed certificate.
    agent = AgentClient(state["agent_token"], base_url=mcp_http, timeout_s=60)
    agent.ok("installing")
    csr_pem, key_pem = make_csr_and_key(common_name="node")
    signed = agent.ok("wants_cert", csr_pem=csr_pem)
    config = agent.ok("wants_config")["daemon_config"]
    assert config["hosts"] == [f"tcp://[{overlay}]:2376"]
    dockerd = lab.dockerd(
        "node",
        tcp_hosts=config["hosts"],
        tls=DockerdTls(ca_pem=signed["chain_pem"], server=KeyPair(signed["cert_pem"], key_pem)),
        unix_socket=True,  # the node's own local socket, to make a container the MCP list must show
    ).start()
    _docker(dockerd.socket_path, "import", "-", PROBE_IMAGE, stdin=_busybox_rootfs_tar(dockerd.workdir))
    probe = _docker(
        dockerd.socket_path, "create", "--name", "mcp-probe", PROBE_IMAGE, "/bin/busybox", "true"
    )
    version = _docker(dockerd.socket_path, "version", "--format", "{{.Server.Version}}")
    assert agent.ok("ready", version=version)["status"] == "connected"
    host_id = signed["host_id"]

    # 4. MCP in the platform's namespace: the call goes platform → hub → overlay /128 → dockerd (mTLS).
    platform_ns = Transport(
        kind="stdio", platform=mcp_platform, launcher=("nsenter", f"--net=/var/run/netns/{lab.platform.name}")
    )

    async def drive() -> tuple[dict, dict, dict]:
        async with platform_ns.session(admin) as client:
            hosts = output(await client.call_tool("docker_list_hosts", {}))
            running = output(await client.call_tool("docker_list_containers", {"host_id": host_id}))
            everything = output(
                await client.call_tool("docker_list_containers", {"host_id": host_id, "all": True})
            )
            return hosts, running, everything

    hosts, running, everything = anyio.run(drive)
    host = next(h for h in hosts["hosts"] if h["id"] == host_id)
    assert host["status"] == "connected" and host["api_endpoint"] == f"tcp://[{overlay}]:2376"
    assert host["version"] == version
    assert [c for c in running["containers"] if c["id"].startswith(probe[:12])] == []  # created, not running
    listed = [
        c for c in everything["containers"] if probe.startswith(c["id"]) or c["id"].startswith(probe[:12])
    ]
    assert len(listed) == 1, everything
    assert listed[0]["name"].lstrip("/") == "mcp-probe" and listed[0]["image"] == PROBE_IMAGE
