"""Print a new operator Bearer token for a user (and nothing else, so it can be captured)."""

from django.core.management.base import BaseCommand, CommandError

from apps.system.services import operator_token_create
from powernode.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an operator API token for USERNAME and print only the token."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the token")
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="the token stops working after N days (default: never)"
        )

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options) -> None:
        try:
            self.stdout.write(
                operator_token_create(username=username, name=name, expires_in_days=expires_in_days)
            )
        except ApplicationError as exc:
            raise CommandError(exc.message)
