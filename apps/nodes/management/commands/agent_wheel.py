"""``manage.py agent_wheel [--out DIR]``: the agent wheel this platform serves at /agent/, with its sha256.

The platform builds it in memory on the first download (the same bytes on every process); this command writes
that wheel to a directory, for a mirror or a node without a route to the platform, and prints
``<sha256>  <path>`` (what ``sha256sum -c`` reads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.nodes.agent_dist import agent_wheel


class Command(BaseCommand):
    help = "Write the agent wheel served at /agent/ to a directory and print its sha256 and path."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default=".", help="directory to write the wheel to (default: here)")

    def handle(self, *args: Any, out: str, **options: Any) -> None:
        wheel = agent_wheel()
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / wheel.filename
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(wheel.content)
        temporary.replace(path)
        self.stdout.write(f"{wheel.sha256}  {path}")
