"""factory-boy factories for the tests' rows.

``create()`` goes through the real service wherever one makes the row (template_create, instance_provision,
network_create, peer_attach, module_assign_to_template, the CA services), so a factory row is what the
platform itself would have written, events included; pass ``actor=`` to choose who did it. ``build()``
makes unsaved objects with the same values (overlay addresses from apps.sdwan.addressing).
DockerHost rows have no creating service outside the handshake: DockerHostFactory writes the row a
handshake would have left, with one trait per status; walk the handshake (tests/agents.py) when the
test is about the handshake itself.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.docker_hosts.models import DockerHost, api_endpoint_for
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.pki.models import IssuedCertificate, VaultKvOutbox
from apps.sdwan import addressing
from apps.sdwan.models import HubToken, SdwanNetwork, SdwanPeer
from powernode.actors import Actor

FACTORY_ACTOR = Actor(label="factory")
ENGINE_VERSION = "20.10.24"


def _actor(kwargs: dict[str, Any]) -> Actor:
    return kwargs.pop("actor", None) or FACTORY_ACTOR


def _save_extra(obj: Any, extra: dict[str, Any]) -> Any:
    """Fields the service does not take (a status, a last heartbeat): set on the row the service made."""
    if extra:
        for name, value in extra.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(extra))
    return obj


class NodeTemplateFactory(DjangoModelFactory):
    """``create()`` is template_create (its event included)."""

    class Meta:
        model = NodeTemplate

    name = factory.Sequence(lambda n: f"template-{n}")
    description = ""

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> NodeTemplate:
        from apps.nodes.services import template_create

        actor = _actor(kwargs)
        return template_create(name=kwargs.pop("name"), description=kwargs.pop("description"), actor=actor)


class NodeInstanceFactory(DjangoModelFactory):
    """``create()`` provisions through instance_provision: the row keeps only the token's hash, and the
    returned object carries the plain token once as ``agent_token`` (for AgentClient)."""

    class Meta:
        model = NodeInstance

    name = factory.Sequence(lambda n: f"node-f{n}")
    node_template = factory.SubFactory(NodeTemplateFactory)

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> NodeInstance:
        from apps.nodes.services import instance_provision

        actor = _actor(kwargs)
        provisioned = instance_provision(
            template_id=str(kwargs.pop("node_template").id), name=kwargs.pop("name"), actor=actor
        )
        instance = _save_extra(provisioned.instance, kwargs)
        instance.agent_token = provisioned.agent_token
        return instance


class SdwanNetworkFactory(DjangoModelFactory):
    class Meta:
        model = SdwanNetwork

    name = factory.Sequence(lambda n: f"net-f{n}")
    prefix = factory.Sequence(lambda n: f"fd00:fac:{n:x}::/64")
    hub_endpoint = ""

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> SdwanNetwork:
        from apps.sdwan.services import network_create

        actor = _actor(kwargs)
        return network_create(
            name=kwargs.pop("name"), prefix=kwargs.pop("prefix"), hub_endpoint=kwargs.pop("hub_endpoint"), actor=actor
        )


class HubTokenFactory(DjangoModelFactory):
    """``create()`` is hub_token_create: the returned row carries the plain ``pnh_`` token as ``hub_token``."""

    class Meta:
        model = HubToken

    name = factory.Sequence(lambda n: f"hub-f{n}")

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> HubToken:
        from apps.sdwan.services import hub_token_create

        created = hub_token_create(name=kwargs.pop("name"), actor=_actor(kwargs))
        row = _save_extra(created.row, kwargs)
        row.hub_token = created.token
        return row


def report_hub_key(network: SdwanNetwork | str, *, public_key: str = "", token: HubToken | None = None) -> str:
    """What a hub's first sync does for a network: report its WireGuard key (a fresh one unless given),
    through the real hub_sync service. Returns the key."""
    from apps.sdwan import services, wireguard

    public_key = public_key or wireguard.generate_keypair().public_key
    network_id = str(getattr(network, "id", network))
    token = token or HubToken.objects.filter(revoked_at=None).first() or HubTokenFactory()
    services.hub_sync(
        token=token,
        hub_version="0.0.0-test",
        networks=[services.ReportedNetwork(network_id=network_id, public_key=public_key, peers=[])],
    )
    return public_key


def _next_overlay(network: SdwanNetwork) -> str:
    """The address peer_attach would hand out next (for build(); create() asks the service)."""
    return addressing.address_at(network.prefix, network.next_host_index)


class SdwanPeerFactory(DjangoModelFactory):
    """An instance's peer; ``create()`` is peer_attach (the next free /128 of the network)."""

    class Meta:
        model = SdwanPeer

    network = factory.SubFactory(SdwanNetworkFactory)
    node_instance = factory.SubFactory(NodeInstanceFactory)
    kind = SdwanPeer.Kind.INSTANCE
    overlay_address = factory.LazyAttribute(lambda o: _next_overlay(o.network))

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> SdwanPeer:
        from apps.sdwan.services import peer_attach

        actor = _actor(kwargs)
        return peer_attach(
            network_id=str(kwargs["network"].id), node_instance_id=str(kwargs["node_instance"].id), actor=actor
        )


class ModuleFactory(DjangoModelFactory):
    """A catalog entry, live unless a trait says otherwise (the catalog has no creating service)."""

    class Meta:
        model = Module

    name = factory.Sequence(lambda n: f"module-{n}")
    version = "1.0.0"
    runtime = Module.Runtime.NONE
    lifecycle_state = Module.Lifecycle.LIVE
    blessed = False

    class Params:
        docker = factory.Trait(runtime=Module.Runtime.DOCKER)
        draft = factory.Trait(lifecycle_state=Module.Lifecycle.DRAFT)
        published = factory.Trait(lifecycle_state=Module.Lifecycle.PUBLISHED)
        retired = factory.Trait(lifecycle_state=Module.Lifecycle.RETIRED)


class ModuleAssignmentFactory(DjangoModelFactory):
    """``create()`` is module_assign_to_template (docker modules need every instance to have a peer)."""

    class Meta:
        model = ModuleAssignment

    node_template = factory.SubFactory(NodeTemplateFactory)
    module = factory.SubFactory(ModuleFactory)
    override = False

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> ModuleAssignment:
        from apps.modules.services import module_assign_to_template

        actor = _actor(kwargs)
        return module_assign_to_template(
            template_id=str(kwargs["node_template"].id),
            module_id=str(kwargs["module"].id),
            override=kwargs["override"],
            actor=actor,
        )


class IssuedCertificateFactory(DjangoModelFactory):
    """``create()`` asks the configured CA (the run's local CA, or OpenBao under ``ca_backend``) for a real
    certificate and returns its record: a server certificate by default, a client one with a trait."""

    class Meta:
        model = IssuedCertificate

    kind = IssuedCertificate.Kind.SERVER
    host_id = factory.Sequence(lambda n: f"host-f{n:04d}")
    overlay_address = factory.Sequence(lambda n: f"fd00:fac:ffff::{n + 2:x}")
    common_name = factory.LazyAttribute(lambda o: o.host_id)
    operator = None
    revoked = False
    network_id = "0193a1b2-0000-7000-8000-00000000fac0"  # whose client CA issues client kinds

    class Params:
        platform_client = factory.Trait(
            kind=IssuedCertificate.Kind.PLATFORM_CLIENT,
            common_name=factory.LazyAttribute(lambda o: f"platform:{o.host_id}"),
        )
        operator_client = factory.Trait(
            kind=IssuedCertificate.Kind.OPERATOR_CLIENT,
            host_id="",
            common_name=factory.LazyAttribute(lambda o: f"operator:{o.operator.get_username()}"),
        )

    @classmethod
    def _build(cls, model_class: type, *args: Any, **kwargs: Any) -> IssuedCertificate:
        """An unsaved record with a random serial and no certificate behind it."""
        overlay, revoked = kwargs.pop("overlay_address"), kwargs.pop("revoked")
        kwargs.pop("network_id")
        now = timezone.now()
        return model_class(
            serial=":".join(f"{b:02x}" for b in secrets.token_bytes(16)),
            sans=[overlay] if kwargs["kind"] == IssuedCertificate.Kind.SERVER else [],
            not_before=now,
            not_after=now + dt.timedelta(days=30),
            adapter="LocalCaAdapter",
            revoked_at=now if revoked else None,
            **kwargs,
        )

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> IssuedCertificate:
        from apps.pki import services
        from tests.csr import make_csr

        if kwargs["kind"] == IssuedCertificate.Kind.SERVER:
            row = services.ca_sign_host_csr(
                csr_pem=make_csr(), host_id=kwargs["host_id"], overlay_address=kwargs["overlay_address"]
            ).certificate
        else:
            row = services.ca_issue_client_keypair(
                kind=kwargs["kind"],
                common_name=kwargs["common_name"],
                network_id=kwargs["network_id"],
                host_id=kwargs["host_id"],
                operator=kwargs["operator"],
            ).certificate
        if kwargs["revoked"]:
            row = services.ca_revoke(serial=row.serial, reason="issued revoked by the factory")
        return row


class VaultKvOutboxFactory(DjangoModelFactory):
    """A pending KV write as kv_write_after_commit records it (the payload is opaque to the outbox)."""

    class Meta:
        model = VaultKvOutbox

    path = factory.Sequence(lambda n: f"powernode/hosts/host-f{n:04d}/platform-client")
    payload_encrypted = "x"


def _host_overlay(host: Any) -> str:
    """The instance's peer address on the host's network: attached through peer_attach when missing."""
    if host.network._state.adding or host.node_instance._state.adding:
        return _next_overlay(host.network)
    peer = SdwanPeer.objects.filter(network=host.network, node_instance=host.node_instance).first()
    if peer is None:
        peer = SdwanPeerFactory(network=host.network, node_instance=host.node_instance)
    return peer.overlay_address


_LATER = factory.LazyFunction(timezone.now)


class DockerHostFactory(DjangoModelFactory):
    """The row a handshake leaves: ``pending`` (certificate signed) by default; traits ``configured``,
    ``connected``, ``decommissioning``, ``decommissioned`` and ``failed`` add the timestamps each status
    implies. The server certificate is a serial only and there is no client keypair: a test that needs
    real ones signs them (apps.pki.services) or walks the handshake."""

    class Meta:
        model = DockerHost

    node_instance = factory.SubFactory(NodeInstanceFactory)
    network = factory.SubFactory(SdwanNetworkFactory)
    overlay_address = factory.LazyAttribute(_host_overlay)
    api_endpoint = factory.LazyAttribute(lambda o: api_endpoint_for(o.overlay_address))
    status = DockerHost.Status.PENDING
    cert_signed_at = _LATER
    server_cert_serial = factory.Sequence(lambda n: f"fa:c7:00:{n // 256 % 256:02x}:{n % 256:02x}")
    server_cert_not_after = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))

    class Params:
        configured = factory.Trait(config_sent_at=_LATER)
        connected = factory.Trait(
            configured=True, status=DockerHost.Status.CONNECTED, connected_at=_LATER, version=ENGINE_VERSION
        )
        decommissioning = factory.Trait(
            connected=True, status=DockerHost.Status.DECOMMISSIONING, decommission_requested_at=_LATER
        )
        decommissioned = factory.Trait(
            decommissioning=True,
            status=DockerHost.Status.DECOMMISSIONED,
            decommissioned_at=_LATER,
            client_cert_pem="",
            client_key_encrypted="",
            client_chain_pem="",
        )
        failed = factory.Trait(
            configured=True,
            status=DockerHost.Status.FAILED,
            failed_at=_LATER,
            last_error="dockerd exited: bind: cannot assign requested address",
        )
