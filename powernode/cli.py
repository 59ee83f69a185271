"""``powernode-admin``: manage.py for an installed platform (``powernode-admin migrate``, ``powernode_setup``)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
