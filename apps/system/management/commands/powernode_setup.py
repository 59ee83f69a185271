"""Make a fresh platform usable: database, default catalog, local CA, an admin login and token."""

from __future__ import annotations

from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.modules.models import Module
from apps.system.services import operator_token_create, platform_admin_ensure
from powernode.secretfiles import create_private_file, replace_private_file


class Command(BaseCommand):
    help = "Migrate, load the default catalog, make the local CA and an admin user (idempotent)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--admin", default="admin", help="admin user name (made when missing)")

    def handle(self, *args, admin: str, **options) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        if not Module.objects.filter(name="docker-engine").exists():
            call_command("loaddata", "default_catalog", verbosity=0)
            self.stdout.write("default catalog loaded (docker-engine live; k3s-server, k3s-agent published)")
        if django_apps.is_installed("apps.pki"):
            call_command("pki_init_local_ca", verbosity=0)  # keeps an existing CA
        from django.conf import settings

        password_file = settings.VAR_DIR / "admin_password"
        password = platform_admin_ensure(username=admin)
        if password is not None:
            replace_private_file(password_file, password + "\n")
        token_file = settings.VAR_DIR / "operator_token"
        # the token is made only when this run creates the file (0600): a second setup keeps the first token
        create_private_file(token_file, lambda: operator_token_create(username=admin, name="setup") + "\n")
        self.stdout.write(f"admin login: {admin} / password in {password_file}")
        self.stdout.write(f"operator token for {admin}: in {token_file}")
