"""A short-lived client keypair for an operator's Docker CLI (``system_export_operator_cert``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.docker_hosts import kinds
from apps.events.services import event_record
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_issue_client_keypair
from powernode.actors import Actor
from powernode.errors import PermissionDenied


@transaction.atomic
def operator_cert_export(*, actor: Actor) -> dict[str, Any]:
    """A short-lived client keypair for the calling operator, usable as-is by the Docker CLI."""
    if actor.user is None:
        raise PermissionDenied("Only an operator can export an operator certificate.")
    issued = ca_issue_client_keypair(
        kind=IssuedCertificate.Kind.OPERATOR_CLIENT,
        common_name=f"operator:{actor.user.get_username()}",
        operator=actor.user,
        actor=actor,
    )
    event_record(
        kind=kinds.OPERATOR_CERT_EXPORTED,
        actor=actor,
        data={"serial": issued.certificate.serial, "not_after": issued.certificate.not_after.isoformat()},
    )
    return {
        "ca_pem": issued.chain_pem,
        "cert_pem": issued.cert_pem,
        "key_pem": issued.key_pem,
        "serial": issued.certificate.serial,
        "not_after": issued.certificate.not_after.isoformat(),
    }
