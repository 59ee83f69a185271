"""What the lab asks of the platform's own database and CA, outside the operator API.

Run as ``python -m lab.platform_side <command>`` with the lab platform's environment (lab.platform sets
it): the platform's settings then point at the lab's SQLite database and local CA. Each command prints
one JSON document on stdout. Nothing here is an operator capability: it is what an installer (setup),
or a test (revocation records) reads on the platform machine itself.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import sys
from typing import Any

OPERATOR = "operator"


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
    import django

    django.setup()


def setup(*, registry_name: str, registry_address: str) -> dict[str, Any]:
    """Migrate, catalog, local CA, the operator and its token (``powernode_setup``), plus the image
    registry's TLS certificate issued by the platform's CA."""
    from django.conf import settings
    from django.core.management import call_command

    # Nested commands print to sys.stdout; this command's stdout is reserved for its JSON answer.
    with contextlib.redirect_stdout(sys.stderr):
        call_command("powernode_setup", admin=OPERATOR, stdout=sys.stderr)
    token = (settings.VAR_DIR / "operator_token").read_text().strip()
    return {
        "operator": OPERATOR,
        "token": token,
        "registry": registry_certificate(registry_name, registry_address),
    }


def registry_certificate(name: str, address: str) -> dict[str, str]:
    """A serverAuth certificate for the registry from the platform's local CA, recorded (``registry_server``).

    The CA adapter's interface issues IP SANs only (hosts are addressed by their overlay /128), but dockerd
    verifies a registry by its name (image references cannot hold IPv6 literals on 20.10), so the lab signs
    with the local CA's intermediate itself and records the certificate like any other.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from apps.pki.adapters.base import format_serial, generate_ed25519_key
    from apps.pki.adapters.local import LocalCaAdapter
    from apps.pki.models import IssuedCertificate
    from apps.pki.services import get_ca_adapter

    adapter = get_ca_adapter()
    if not isinstance(adapter, LocalCaAdapter):
        raise SystemExit("the lab platform runs the local CA (VAULT_* are removed from its environment)")
    intermediate, ca_key, _root, chain = adapter._load()
    key, key_pem = generate_ed25519_key()
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + dt.timedelta(days=7), intermediate.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, None)
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    serial = format_serial(cert.serial_number)
    adapter._record_issued(cert, serial)
    IssuedCertificate.objects.create(
        serial=serial,
        kind=IssuedCertificate.Kind.REGISTRY_SERVER,
        common_name=name,
        sans=[name, address],
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        adapter=adapter.name,
        cert_pem=cert_pem,
    )
    return {"cert_pem": cert_pem, "key_pem": key_pem, "chain_pem": chain, "serial": serial}


def host_certificates(*, host_id: str) -> dict[str, Any]:
    """Every certificate the platform issued for a host, with its revocation time."""
    from apps.pki.models import IssuedCertificate

    rows = IssuedCertificate.objects.filter(host_id=host_id).order_by("created_at")
    return {
        "certificates": [
            {
                "serial": r.serial,
                "kind": r.kind,
                "common_name": r.common_name,
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in rows
        ]
    }


def platform_client(*, host_id: str) -> dict[str, Any]:
    """The platform's own client keypair for a host (the row's copy, key decrypted): the bench compares the
    platform's action with the Docker SDK using these same certificates."""
    from apps.docker_hosts.models import DockerHost
    from powernode import secretbox

    host = DockerHost.objects.get(pk=host_id)
    return {
        "cert_pem": host.client_cert_pem,
        "key_pem": secretbox.decrypt(host.client_key_encrypted),
        "chain_pem": host.client_chain_pem,
        "api_endpoint": host.api_endpoint,
    }


def admin_pages(*, host_id: str) -> dict[str, Any]:
    """The admin pages an operator opens around a host, fetched by a logged-in superuser (Django's test client
    on the lab's database): the host page, the registry credentials' list and pages, the events list.
    ``{path: {"status", "html"}}``: the lab greps them for secrets."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.docker_hosts.models import RegistryCredential

    user, _ = get_user_model().objects.get_or_create(
        username="lab-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    paths = [
        f"/admin/docker_hosts/dockerhost/{host_id}/change/",
        "/admin/docker_hosts/registrycredential/",
        *(f"/admin/docker_hosts/registrycredential/{pk}/change/"
          for pk in RegistryCredential.objects.values_list("pk", flat=True)),
        "/admin/events/event/",
    ]
    pages = {}
    for path in paths:
        response = client.get(path, SERVER_NAME="localhost")
        pages[path] = {"status": response.status_code, "html": response.content.decode(errors="replace")}
    return {"pages": pages}


def all_events() -> dict[str, Any]:
    """Every event row (kind and data) as stored."""
    from apps.events.models import Event

    return {"events": [{"kind": kind, "data": data} for kind, data in Event.objects.values_list("kind", "data")]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.platform_side", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup")
    p_setup.add_argument("--registry-name", required=True)
    p_setup.add_argument("--registry-address", required=True)
    for name in ("host-certificates", "platform-client", "admin-pages"):
        sub.add_parser(name).add_argument("--host-id", required=True)
    sub.add_parser("events")
    args = parser.parse_args(argv)
    _django()
    if args.command == "setup":
        result = setup(registry_name=args.registry_name, registry_address=args.registry_address)
    elif args.command == "host-certificates":
        result = host_certificates(host_id=args.host_id)
    elif args.command == "admin-pages":
        result = admin_pages(host_id=args.host_id)
    elif args.command == "events":
        result = all_events()
    else:
        result = platform_client(host_id=args.host_id)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
