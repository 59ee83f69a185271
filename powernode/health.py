"""Liveness and readiness for load balancers and supervisors (DESIGN §7): ``/healthz`` and ``/readyz``.

``/healthz`` answers while the process serves, touching nothing. ``/readyz`` asks the database and every
check an app registered (the CA registers its own, Vault's when Vault is the CA), so a load balancer
sends no request to a process that could not serve it. Part of the kernel: apps register checks in
their ``AppConfig.ready()``; the kernel names none of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection

import powernode

# A check answers "" when ready, else a short reason for the operator (no secrets, no stack traces).
ReadinessCheck = Callable[[], str]

_checks: dict[str, ReadinessCheck] = {}
_checks_lock = threading.Lock()


def register_readiness_check(name: str, check: ReadinessCheck) -> None:
    """Add a check to ``/readyz`` (one per name; registering a name again replaces it)."""
    with _checks_lock:
        _checks[name] = check


def database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ready"; the class only, drivers' text names hosts
        return f"database unavailable ({type(exc).__name__})"
    return ""


def liveness() -> dict[str, str]:
    return {"status": "ok", "version": powernode.__version__}


def readiness() -> tuple[bool, dict[str, object]]:
    """(ready, body): every check run, each reported as "ok" or its reason."""
    with _checks_lock:
        checks = {"database": database_check, **_checks}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:  # a check that breaks is a check that failed, never a 500
            reason = f"check failed ({type(exc).__name__})"
        results[name] = reason or "ok"
    ready = all(value == "ok" for value in results.values())
    return ready, {"status": "ok" if ready else "unready", "version": powernode.__version__, "checks": results}
