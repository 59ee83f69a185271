"""Per-network client CAs against a real dockerd set up by powernode-agent over WireGuard (issue 11, item 1).

The tutorial's node is on lab-a; its dockerd trusts only lab-a's client CA. Client certificates made for
lab-b — an operator export, and the platform's own keypair for a host of lab-b — are refused by it even
from inside the node's own namespace, where a route to the daemon exists on purpose (the hub and
WireGuard would stop them earlier on the real path: that is the intruder's part of the tutorial test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.tutorial import NODE, WORKSTATION, Tutorial
from tests.csr import make_csr
from tests.lab.conftest import fresh_prefix

pytestmark = pytest.mark.lab

REFUSED = ("bad certificate", "certificate", "tls", "remote error")


@pytest.fixture(scope="module")
def tutorial(lab_possible: None) -> Iterator[Tutorial]:
    walk = Tutorial(fresh_prefix(), out=lambda line: None)
    try:
        walk.build()
        walk.assign()
        walk.watch_events()
        walk.connected()
        yield walk
    finally:
        left = walk.close()
    assert left == {}, f"the lab left things behind: {left}"


def _refused(result) -> bool:  # noqa: ANN001 - CompletedProcess
    text = (result.stdout + result.stderr).lower()
    return result.returncode != 0 and any(word in text for word in REFUSED)


def test_an_operator_cert_for_another_network_is_refused_even_with_a_route(tutorial: Tutorial) -> None:
    node_dir = tutorial.lab.dir / NODE / "certs"
    for_a = tutorial.write_certs(
        node_dir / "lab-a",
        tutorial.platform.action("system_export_operator_cert", {"network_id": tutorial.network_ids["lab-a"]}),
    )
    for_b = tutorial.write_certs(
        node_dir / "lab-b",
        tutorial.platform.action("system_export_operator_cert", {"network_id": tutorial.network_ids["lab-b"]}),
    )
    # From the node itself the daemon is routable: network A's certificate works there...
    ok = tutorial.docker_cli(NODE, "version", "--format", "{{.Server.Version}}", certs=for_a)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # ...and network B's, equally valid and from the same CA root, is refused by the TLS handshake.
    refused = tutorial.docker_cli(NODE, "ps", certs=for_b)
    assert _refused(refused), refused.stdout + refused.stderr
    # The workstation's export (lab-a, through the hub) still opens the node.
    ws = tutorial.docker_cli(WORKSTATION, "ps")
    assert ws.returncode == 0, ws.stdout + ws.stderr


def test_the_platform_client_cert_of_a_host_on_another_network_is_refused(tutorial: Tutorial) -> None:
    api = tutorial.platform.action
    # A second instance of the same template, on lab-b: its wants_cert makes a host there and the platform's
    # client keypair for that host (from lab-b's client CA).
    created = api("system_provision_instance", {"template_id": tutorial.template_id, "name": "lab-node-b"})
    instance_b, token_b = created["instance"]["id"], created["agent_token"]
    api("system_sdwan_attach_peer", {"network_id": tutorial.network_ids["lab-b"], "node_instance_id": instance_b})
    status, answer = tutorial.agent_handshake(token_b, "wants_cert", csr_pem=make_csr())
    assert status == 200, answer
    host_b = answer["host_id"]
    assert answer["client_ca_pem"] and answer["client_ca_pem"] not in answer["chain_pem"]

    def platform_certs(host_id: str, name: str):  # noqa: ANN202
        client = tutorial.platform.side("platform-client", "--host-id", host_id)
        return tutorial.write_certs(
            tutorial.lab.dir / NODE / "certs" / name,
            {"ca_pem": client["chain_pem"], "cert_pem": client["cert_pem"], "key_pem": client["key_pem"]},
        )

    own = tutorial.docker_cli(NODE, "ps", certs=platform_certs(tutorial.host_id, "platform-a"))
    assert own.returncode == 0, own.stdout + own.stderr  # host A's own platform keypair works
    other = tutorial.docker_cli(NODE, "ps", certs=platform_certs(host_b, "platform-b"))
    assert _refused(other), other.stdout + other.stderr
