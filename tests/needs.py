"""Skips that say why — and that turn into failures under CI=true, where nothing may be skipped."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true but missing: {reason}")
    pytest.skip(reason)


def need_root() -> None:
    need(os.geteuid() == 0, "needs root (network namespaces, WireGuard interfaces)")


def need_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    need(not missing, f"missing tools: {', '.join(missing)} (scripts/install_lab_deps.sh installs them)")


def need_postgres() -> None:
    from django.db import connection

    need(connection.vendor == "postgresql", "needs PostgreSQL: run with DATABASE_URL=postgres://... (make test)")
