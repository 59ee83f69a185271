"""Write a short-lived operator client certificate for the Docker CLI: operator-{ca,cert,key}.pem.

The certificate comes from one SDWAN network's client CA: only the hosts of that network accept it."""

from __future__ import annotations

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from powernode.actors import Actor
from powernode.errors import ApplicationError
from powernode.registry import run_action


class Command(BaseCommand):
    help = "Export a short-lived operator client certificate (key 0600) for docker --tlsverify."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--out", default=str(Path.home() / ".powernode"), help="directory (default ~/.powernode)")
        parser.add_argument("--user", required=True, help="the operator the certificate is for")
        parser.add_argument(
            "--network", required=True, help="SDWAN network id: only that network's hosts accept the certificate"
        )
        parser.add_argument(
            "--ttl-minutes", type=int, default=60, help="lifetime in minutes (default 60, at most 480)"
        )

    def handle(self, *args, out: str, user: str, network: str, ttl_minutes: int, **options) -> None:
        operator = get_user_model().objects.filter(username=user, is_active=True).first()
        if operator is None:
            raise CommandError(f"No active user named {user!r}.")
        try:
            # the same action (and permission check) as the API and MCP
            exported = run_action(
                name="system_export_operator_cert",
                actor=Actor.for_user(operator),
                payload={"network_id": network, "ttl_minutes": ttl_minutes},
            )
        except ApplicationError as exc:
            raise CommandError(exc.message)
        directory = Path(out).expanduser()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = [("operator-ca.pem", "ca_pem"), ("operator-cert.pem", "cert_pem"), ("operator-key.pem", "key_pem")]
        for name, key in files:
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if key == "key_pem" else 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(exported[key])
            if key == "key_pem":
                path.chmod(0o600)
        self.stdout.write(
            f"wrote {directory}/operator-{{ca,cert,key}}.pem (network {exported['network_id']}, "
            f"valid until {exported['not_after']})"
        )
        self.stdout.write(
            f"docker --tlsverify --tlscacert {directory}/operator-ca.pem --tlscert {directory}/operator-cert.pem "
            f"--tlskey {directory}/operator-key.pem -H tcp://[<overlay address>]:2376 ps"
        )
