"""A short-lived client keypair for an operator's Docker CLI (``system_export_operator_cert``), from one SDWAN
network's client CA: only that network's daemons accept it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from apps.docker_hosts import kinds
from apps.events.services import event_record
from apps.pki.adapters.base import network_key
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_issue_client_keypair
from apps.sdwan.models import SdwanNetwork
from powernode.actors import Actor
from powernode.errors import NotFound, PermissionDenied, ValidationError

DEFAULT_TTL_MINUTES = 60
MAX_TTL_MINUTES = 480


@transaction.atomic
def operator_cert_export(
    *, actor: Actor, network_id: str, ttl_minutes: int = DEFAULT_TTL_MINUTES
) -> dict[str, Any]:
    """A client keypair for the calling operator, valid ``ttl_minutes`` on the hosts of ``network_id``.

    ``ca_pem`` verifies the daemons' server certificates (``--tlscacert``); ``cert_pem`` is the leaf then
    the network's client CA (``--tlscert``); ``client_ca_pem`` is that CA alone.
    """
    if actor.user is None:
        raise PermissionDenied("Only an operator can export an operator certificate.")
    if not 1 <= ttl_minutes <= MAX_TTL_MINUTES:
        raise ValidationError(
            f"ttl_minutes must be 1 to {MAX_TTL_MINUTES}.", details={"ttl_minutes": ttl_minutes}
        )
    network = SdwanNetwork.objects.filter(pk=network_key(network_id)).first()
    if network is None:
        raise NotFound(f"No SDWAN network with id {network_id}.", details={"network_id": network_id})
    issued = ca_issue_client_keypair(
        kind=IssuedCertificate.Kind.OPERATOR_CLIENT,
        common_name=f"operator:{actor.user.get_username()}",
        network_id=str(network.pk),
        operator=actor.user,
        ttl=dt.timedelta(minutes=ttl_minutes),
        actor=actor,
    )
    event_record(
        kind=kinds.OPERATOR_CERT_EXPORTED,
        actor=actor,
        data={
            "serial": issued.certificate.serial,
            "not_after": issued.certificate.not_after.isoformat(),
            "network_id": str(network.pk),
            "ttl_minutes": ttl_minutes,
        },
    )
    return {
        "ca_pem": issued.server_ca_pem,
        "cert_pem": issued.presented_pem,
        "key_pem": issued.key_pem,
        "client_ca_pem": issued.client_ca_pem,
        "network_id": str(network.pk),
        "serial": issued.certificate.serial,
        "not_after": issued.certificate.not_after.isoformat(),
    }
