"""SDWAN: prefixes, /128 allocation (also under concurrency on PostgreSQL), access grants fed to real wg tools."""

from __future__ import annotations

import ipaddress
import subprocess
import threading
import uuid

import pytest
from django.db import connection

from apps.sdwan.models import SdwanPeer
from tests.factories import NodeInstanceFactory, NodeTemplateFactory, SdwanNetworkFactory
from tests.needs import need_postgres, need_root, need_tools


def test_network_with_allocated_prefix(api):
    network = api.ok("system_sdwan_create_network", {"name": "auto"})["network"]
    net = ipaddress.IPv6Network(network["prefix"])
    assert net.prefixlen == 64 and net.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert network["hub_overlay_address"] == str(net.network_address + 1)
    peers = api.ok("system_sdwan_list_peers", {"network_id": network["id"]})["peers"]
    assert [(p["kind"], p["overlay_address"]) for p in peers] == [("platform", network["hub_overlay_address"])]


@pytest.mark.parametrize(
    "prefix, fragment",
    [
        ("fd00:abcd:1::/80", "/64 or shorter"),
        ("2001:db8::/64", "ULA"),
        ("fd00:abcd:1::5/64", "host bits"),
        ("192.0.2.0/24", "IPv6"),
        ("nonsense", "IPv6"),
    ],
)
def test_bad_prefix_is_400(api, prefix, fragment):
    status, body = api.call("system_sdwan_create_network", {"name": "bad", "prefix": prefix})
    assert status == 400, body
    assert fragment in body["error"]["message"]


def test_overlapping_prefix_is_409(api):
    api.ok("system_sdwan_create_network", {"name": "a", "prefix": "fd00:abcd::/32"})
    status, body = api.call("system_sdwan_create_network", {"name": "b", "prefix": "fd00:abcd:1::/64"})
    assert status == 409 and "overlaps" in body["error"]["message"]


def test_attach_allocates_sequential_addresses_and_refuses_twice(api, fleet):
    template_id = fleet["template"]["id"]
    network_id = fleet["network"]["id"]
    assert fleet["peer"]["overlay_address"] == "fd00:abcd:1::2"
    instance = api.ok("system_provision_instance", {"template_id": template_id, "name": "node-2"})["instance"]
    peer = api.ok("system_sdwan_attach_peer", {"network_id": network_id, "node_instance_id": instance["id"]})["peer"]
    assert peer["overlay_address"] == "fd00:abcd:1::3"
    assert peer["node_instance_id"] == instance["id"] and peer["kind"] == "instance"
    before = SdwanPeer.objects.count()
    status, body = api.call("system_sdwan_attach_peer", {"network_id": network_id, "node_instance_id": instance["id"]})
    assert status == 409 and body["error"]["type"] == "AlreadyAttachedError"
    assert SdwanPeer.objects.count() == before
    kinds = [e["kind"] for e in api.ok("recent_events", {"kind_prefix": "system.sdwan.peer"})["events"]]
    assert kinds == ["system.sdwan.peer.attached", "system.sdwan.peer.attached"]
    got = api.ok("system_get_instance", {"id": instance["id"]})["instance"]
    assert got["sdwan_peers"] == [{"id": peer["id"], "network_id": network_id, "overlay_address": "fd00:abcd:1::3"}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_attaches_never_share_an_address(admin_actor):
    need_postgres()
    from apps.sdwan.services import peer_attach

    network = SdwanNetworkFactory(name="race-net", prefix="fd00:4ace::/64", actor=admin_actor)
    instances = NodeInstanceFactory.create_batch(24, node_template=NodeTemplateFactory(name="race"), actor=admin_actor)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(chunk):  # noqa: ANN001
        try:
            barrier.wait()
            for inst in chunk:
                peer_attach(network_id=network.id, node_instance_id=inst.id, actor=admin_actor)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(instances[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    addresses = list(
        SdwanPeer.objects.filter(network=network, kind="instance").values_list("overlay_address", flat=True)
    )
    assert len(addresses) == 24 and len(set(addresses)) == 24


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_double_attach_of_one_instance_gives_one_peer(admin_actor):
    need_postgres()
    from apps.sdwan.services import peer_attach
    from powernode.errors import AlreadyAttachedError

    network = SdwanNetworkFactory(name="race2-net", actor=admin_actor)
    inst = NodeInstanceFactory(name="dup", actor=admin_actor)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def worker():  # noqa: ANN202
        try:
            barrier.wait()
            peer_attach(network_id=network.id, node_instance_id=inst.id, actor=admin_actor)
            outcomes.append("ok")
        except AlreadyAttachedError:
            outcomes.append("409")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409"] * 5 + ["ok"]
    assert SdwanPeer.objects.filter(node_instance=inst).count() == 1


def test_access_grant_config_shape_and_key_not_stored(api, fleet):
    grant = api.ok(
        "system_sdwan_create_access_grant", {"network_id": fleet["network"]["id"], "device_name_hint": "ops-laptop"}
    )["grant"]
    config = grant["wireguard_config"]
    private_key = next(line.split(" = ", 1)[1] for line in config.splitlines() if line.startswith("PrivateKey"))
    assert f"Address = {grant['overlay_address']}/128" in config
    assert f"PublicKey = {fleet['network']['hub_public_key']}" in config
    assert "AllowedIPs = fd00:abcd:1::/64" in config
    peer = SdwanPeer.objects.get(pk=grant["peer_id"])
    assert peer.kind == "device" and peer.device_name == "ops-laptop"
    # the private key is nowhere in the database
    from django.apps import apps

    for model in apps.get_models():
        if not model._meta.managed:
            continue
        for row in model.objects.all().values():
            assert private_key not in repr(row), model


def test_access_grant_config_is_valid_for_real_wireguard_tools(api, fleet, tmp_path):
    need_tools("wg", "wg-quick")
    grant = api.ok(
        "system_sdwan_create_access_grant", {"network_id": fleet["network"]["id"], "device_name_hint": "ops-laptop"}
    )["grant"]
    conf = tmp_path / "pnops0.conf"
    conf.write_text(grant["wireguard_config"])
    conf.chmod(0o600)
    stripped = subprocess.run(["wg-quick", "strip", str(conf)], capture_output=True, text=True, check=True).stdout
    assert "Address" not in stripped and "PrivateKey" in stripped
    private_key = next(line.split(" = ", 1)[1] for line in stripped.splitlines() if line.startswith("PrivateKey"))
    derived = subprocess.run(["wg", "pubkey"], input=private_key, capture_output=True, text=True, check=True).stdout
    assert derived.strip() == SdwanPeer.objects.get(pk=grant["peer_id"]).public_key

    # `wg setconf` parses the whole stripped config on a real (userspace) WireGuard interface
    need_root()
    need_tools("wireguard-go", "ip")
    ns = f"pnt-{uuid.uuid4().hex[:6]}"
    ifname = f"pnt{uuid.uuid4().hex[:8]}"
    (tmp_path / "stripped.conf").write_text(stripped)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        nsenter = ["nsenter", f"--net=/var/run/netns/{ns}"]
        # wireguard-go daemonises; its child must not hold our pipes open
        subprocess.run(
            [*nsenter, "wireguard-go", ifname], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        subprocess.run([*nsenter, "wg", "setconf", ifname, str(tmp_path / "stripped.conf")], check=True)
        shown = subprocess.run([*nsenter, "wg", "show", ifname, "allowed-ips"], capture_output=True, text=True).stdout
        assert fleet["network"]["hub_public_key"] in shown and "fd00:abcd:1::/64" in shown
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "del", ifname], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
