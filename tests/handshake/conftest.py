"""Handshake test helpers: what a refusal must leave unchanged, and the platform's error shape.

The fleet with docker-engine assigned (``docker_fleet``), its ``agent``, the local CA and the run's
OpenBao (``ca_backend``) are root fixtures (tests/conftest.py); the stand-in agent is tests/agents.py.
"""

from __future__ import annotations


def state_counts() -> dict[str, int]:
    """Rows that any handshake or heartbeat could write: a refusal must leave every one unchanged."""
    from apps.docker_hosts.models import DockerHost
    from apps.events.models import Event
    from apps.pki.models import IssuedCertificate, VaultKvOutbox

    return {
        "hosts": DockerHost.objects.count(),
        "events": Event.objects.count(),
        "certificates": IssuedCertificate.objects.count(),
        "kv_outbox": VaultKvOutbox.objects.count(),
    }


def host_snapshot() -> list[tuple]:
    from apps.docker_hosts.models import DockerHost

    return list(
        DockerHost.objects.order_by("id").values_list("id", "status", "server_cert_serial", "version")
    )


def assert_error(status: int, body: dict, expected_status: int, expected_type: str) -> dict:
    """The platform's error shape with the expected status and type; returns the error object."""
    assert status == expected_status, (status, body)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"type", "message", "details"}, error
    assert error["type"] == expected_type, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    return error
