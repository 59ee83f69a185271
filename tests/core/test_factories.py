"""The factories write what the services write: hashed tokens, allocated overlays, real certificates, statuses."""

from __future__ import annotations

import pytest

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.pki.models import IssuedCertificate
from apps.sdwan import addressing
from apps.sdwan.models import SdwanPeer
from powernode import tokens
from tests.agents import AgentClient
from tests.factories import (
    DockerHostFactory,
    IssuedCertificateFactory,
    ModuleAssignmentFactory,
    ModuleFactory,
    NodeInstanceFactory,
    SdwanNetworkFactory,
    SdwanPeerFactory,
)
from tests.pki.helpers import common_name, ip_sans, load_cert

pytestmark = pytest.mark.django_db


def test_instance_keeps_only_the_token_hash_and_the_token_authenticates():
    instance = NodeInstanceFactory()
    assert instance.agent_token_hash == tokens.token_hash(instance.agent_token) != instance.agent_token
    status, answer = AgentClient(instance.agent_token).heartbeat()
    assert status == 200 and answer["instance_id"] == str(instance.id)
    assert Event.objects.filter(kind="system.instance.provisioned", instance_id=instance.id).count() == 1


def test_peers_get_the_addresses_peer_attach_hands_out():
    network = SdwanNetworkFactory()
    first, second = SdwanPeerFactory(network=network), SdwanPeerFactory(network=network)
    assert [first.overlay_address, second.overlay_address] == [
        addressing.address_at(network.prefix, 2),
        addressing.address_at(network.prefix, 3),
    ]
    assert SdwanPeer.objects.filter(network=network, kind=SdwanPeer.Kind.PLATFORM).count() == 1  # the hub
    built = SdwanPeerFactory.build(network=SdwanNetworkFactory.build())
    assert built.overlay_address == addressing.address_at(built.network.prefix, 2) and built.pk is not None


def test_docker_assignment_goes_through_the_service():
    peer = SdwanPeerFactory()
    template = peer.node_instance.node_template
    assignment = ModuleAssignmentFactory(node_template=template, module=ModuleFactory(docker=True))
    assert assignment.override is False
    assert Event.objects.filter(kind="system.docker.module.assigned").count() == 1


def test_certificates_are_signed_by_the_run_ca():
    row = IssuedCertificateFactory(host_id="host-f-1", overlay_address="fd00:fac:1::9")
    cert = load_cert(row.cert_pem)
    assert common_name(cert) == "host-f-1" and ip_sans(cert) == ["fd00:fac:1::9"]
    assert row.adapter == "LocalCaAdapter" and row.revoked_at is None
    client = IssuedCertificateFactory(platform_client=True, revoked=True)
    assert client.kind == IssuedCertificate.Kind.PLATFORM_CLIENT and client.revoked_at is not None


@pytest.mark.parametrize(
    ("trait", "set_", "unset"),
    [
        ("pending", {"cert_signed_at"}, {"config_sent_at", "connected_at", "failed_at", "decommissioned_at"}),
        ("connected", {"cert_signed_at", "config_sent_at", "connected_at"}, {"failed_at", "decommissioned_at"}),
        ("decommissioning", {"connected_at", "decommission_requested_at"}, {"decommissioned_at"}),
        ("decommissioned", {"decommission_requested_at", "decommissioned_at"}, {"failed_at"}),
        ("failed", {"cert_signed_at", "config_sent_at", "failed_at"}, {"connected_at", "decommissioned_at"}),
    ],
)
def test_docker_host_traits_carry_their_timestamps(trait, set_, unset):
    host = DockerHostFactory(**({} if trait == "pending" else {trait: True}))
    assert host.status == trait
    assert all(getattr(host, f) is not None for f in set_), trait
    assert all(getattr(host, f) is None for f in unset), trait
    peer = SdwanPeer.objects.get(node_instance=host.node_instance, network=host.network)
    assert host.overlay_address == peer.overlay_address
    assert host.api_endpoint == f"tcp://[{peer.overlay_address}]:2376"
    assert DockerHost.objects.get(pk=host.pk).status == trait
