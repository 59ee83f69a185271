"""Create the local development CA (Ed25519 root + intermediate) under PKI_LOCAL_CA_DIR."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.pki.adapters.local import CA_FILES, init_local_ca
from apps.pki.services import local_ca_dir


class Command(BaseCommand):
    help = (
        "Make an Ed25519 root and intermediate CA in PKI_LOCAL_CA_DIR (default <var>/pki). Keeps an existing "
        "CA (exit 0); --force replaces it, after which certificates from the old CA no longer verify."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--force", action="store_true", help="replace an existing CA")

    def handle(self, *args, force: bool, **options) -> None:
        ca_dir = local_ca_dir()
        if not force and all((ca_dir / name).exists() for name in CA_FILES):
            self.stdout.write(f"local CA already present in {ca_dir}; kept (use --force to replace it)")
            return
        made = init_local_ca(ca_dir, force=force)
        self.stdout.write(self.style.SUCCESS(f"local CA {'replaced' if force else 'created'} in {ca_dir}"))
        self.stdout.write(f"  root:         {made['root_subject']} serial {made['root_serial']}")
        self.stdout.write(
            f"  intermediate: {made['intermediate_subject']} serial {made['intermediate_serial']}"
        )
