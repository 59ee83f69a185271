"""Run the platform's settings and commands in a subprocess with an environment of the test's choosing."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[2]
# what would leak this run's settings (the tests' development mode, a Vault, a database) into the child
_FOREIGN = ("DJANGO_", "POWERNODE_", "VAULT_", "DATABASE_URL")


def clean_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Nothing set but the var dir: what a fresh deployment starts with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(DJANGO_SETTINGS_MODULE="powernode.settings", POWERNODE_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """A production deployment behind HTTPS: its own keys, its host names, HSTS and the HTTPS redirect."""
    return clean_env(
        var_dir,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="powernode.example.net",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        DJANGO_SECURE_HSTS_PRELOAD="true",
        DJANGO_SECURE_SSL_REDIRECT="true",
        **extra,
    )


def python(code: str, env: dict[str, str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def manage(*argv: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
