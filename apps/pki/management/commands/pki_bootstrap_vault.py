"""Set up the PKI on Vault/OpenBao: root and intermediate mounts, node roles, platform policy, and the client CA
of every existing SDWAN network (idempotent)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from apps.pki.adapters.vault import PLATFORM_POLICY, approle_bootstrap, bootstrap
from apps.sdwan.models import SdwanNetwork
from powernode.errors import ApplicationError
from powernode.secretfiles import replace_private_file


class Command(BaseCommand):
    help = (
        "Create the root and intermediate PKI mounts, the roles and the platform policy on the Vault at "
        "VAULT_ADDR, and a client CA mount (pki_clients/<id>) for each existing SDWAN network (later networks "
        "get theirs on first use). Safe to run twice: existing CAs are kept, roles and policy are rewritten."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--url", default="", help="Vault address (default: VAULT_ADDR)")
        parser.add_argument(
            "--token", default="", help="token allowed to manage mounts and policies (default: VAULT_TOKEN)"
        )
        parser.add_argument(
            "--allowed-ip-sans-cidr",
            action="append",
            default=None,
            help="CIDR the server role accepts as IP SAN (repeatable; default fc00::/7, the IPv6 ULA range)",
        )
        parser.add_argument(
            "--approle",
            action="store_true",
            help="also enable AppRole auth and write the platform's role (policy above); prints its role_id",
        )
        parser.add_argument("--approle-token-ttl", default="1h", help="the role's token TTL (renewed; default 1h)")
        parser.add_argument(
            "--approle-token-max-ttl", default="24h", help="the role's token max TTL (then a new login; default 24h)"
        )
        parser.add_argument(
            "--secret-id-file",
            default="",
            help="with --approle: write a new secret_id to this file (0600) for VAULT_SECRET_ID_FILE",
        )

    def _network_ids(self) -> tuple[str, ...]:
        try:
            return tuple(str(pk) for pk in SdwanNetwork.objects.values_list("pk", flat=True))
        except DatabaseError as exc:  # Vault bootstrapped before `migrate`: networks get theirs on first use
            self.stderr.write(f"no SDWAN networks read ({exc}); their client CAs are made on first use")
            return ()

    def handle(
        self,
        *args,
        url: str,
        token: str,
        allowed_ip_sans_cidr: list[str] | None,
        approle: bool,
        approle_token_ttl: str,
        approle_token_max_ttl: str,
        secret_id_file: str,
        **options,
    ) -> None:
        if secret_id_file and not approle:
            raise CommandError("--secret-id-file needs --approle.")
        url = url or getattr(settings, "VAULT_ADDR", "")
        token = token or getattr(settings, "VAULT_TOKEN", "")
        if not url or not token:
            raise CommandError("Set VAULT_ADDR and VAULT_TOKEN (or pass --url and --token).")
        kwargs = {}
        if allowed_ip_sans_cidr:
            kwargs["allowed_ip_sans_cidr"] = tuple(allowed_ip_sans_cidr)
        try:
            report = bootstrap(
                url=url,
                token=token,
                pki_mount=getattr(settings, "VAULT_PKI_MOUNT", "pki_int"),
                role=getattr(settings, "VAULT_PKI_ROLE", "node"),
                root_mount=getattr(settings, "VAULT_PKI_ROOT_MOUNT", "pki"),
                kv_mount=getattr(settings, "VAULT_KV_MOUNT", "secret"),
                network_ids=self._network_ids(),
                **kwargs,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for item in report["created"]:
            self.stdout.write(f"created  {item}")
        for item in report["present"]:
            self.stdout.write(f"present  {item}")
        if approle:
            self._approle(url, token, approle_token_ttl, approle_token_max_ttl, secret_id_file)
        else:
            self.stdout.write(
                f"policy   {PLATFORM_POLICY} written; give the platform a token with only this policy: "
                f"bao token create -policy={PLATFORM_POLICY} (or rerun with --approle)"
            )
        self.stdout.write(self.style.SUCCESS("Vault PKI ready"))

    def _approle(self, url: str, token: str, ttl: str, max_ttl: str, secret_id_file: str) -> None:
        mount = getattr(settings, "VAULT_APPROLE_MOUNT", "approle")
        try:
            report = approle_bootstrap(
                url=url,
                token=token,
                mount=mount,
                token_ttl=ttl,
                token_max_ttl=max_ttl,
                new_secret_id=bool(secret_id_file),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for item in report["created"]:
            self.stdout.write(f"created  {item}")
        for item in report["present"]:
            self.stdout.write(f"present  {item}")
        if secret_id_file:
            replace_private_file(Path(secret_id_file), report["secret_id"] + "\n")
            self.stdout.write(f"secret_id written to {secret_id_file} (0600): VAULT_SECRET_ID_FILE={secret_id_file}")
        else:
            self.stdout.write(
                f"secret_id: make one with: bao write -f auth/{mount}/role/{PLATFORM_POLICY}/secret-id "
                "(or rerun with --secret-id-file PATH)"
            )
        self.stdout.write(f"VAULT_ROLE_ID={report['role_id']}")
