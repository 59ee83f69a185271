"""``manage.py smoke_test_docker_runtime`` end to end, with each CA adapter, and its cleanup on failure."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.pki.models import IssuedCertificate
from apps.sdwan.models import SdwanNetwork

# The in-process server answers from other threads: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

STEPS = [
    "ca ready",
    "create throwaway objects",
    "assign docker-engine",
    "heartbeat: provision order",
    "installing",
    "wants_cert: chain and SAN",
    "host pending",
    "wants_config: daemon.json",
    "ready: probe, then connected",
    "decommission",
    "certificates revoked",
    "events in order",
    "cleanup",
]


def no_throwaway_rows_left() -> bool:
    return not (
        NodeTemplate.objects.filter(name__startswith="smoke-").exists()
        or NodeInstance.objects.filter(name__startswith="smoke-").exists()
        or SdwanNetwork.objects.filter(name__startswith="smoke-").exists()
        or DockerHost.objects.exists()
    )


def test_smoke_command_passes_with_each_adapter(catalog, ca_backend):
    out = io.StringIO()
    call_command("smoke_test_docker_runtime", stdout=out)
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("[")]
    assert [line[len("[PASS] 12 ") :].split("  ")[0] for line in lines] == STEPS, text
    assert all(line.startswith("[PASS]") for line in lines), text
    assert all(" ms " in line for line in lines), text  # each step reports its duration
    assert ca_backend in lines[0]
    assert text.rstrip().splitlines()[-1].startswith("smoke_test_docker_runtime: PASS")
    assert no_throwaway_rows_left()
    # the history stays: the events of the walk and the revoked certificates
    assert Event.objects.filter(kind="system.docker.decommissioned").count() == 1
    assert IssuedCertificate.objects.filter(revoked_at__isnull=True, host_id__startswith="host-").count() == 0


def test_smoke_command_keep_leaves_rows_decommissioned(catalog):
    call_command("smoke_test_docker_runtime", "--keep", stdout=io.StringIO())
    host = DockerHost.objects.get()
    assert host.status == DockerHost.Status.DECOMMISSIONED
    assert NodeInstance.objects.get(name__startswith="smoke-").status == NodeInstance.Status.DELETED


def test_smoke_command_fails_and_cleans_up_when_the_platform_is_unreachable(catalog):
    from tests.openbao import free_port

    out = io.StringIO()
    with pytest.raises(CommandError, match="heartbeat"):
        call_command("smoke_test_docker_runtime", "--url", f"http://127.0.0.1:{free_port()}", stdout=out)
    text = out.getvalue()
    assert "[FAIL]  4 heartbeat: provision order" in text, text
    assert "[PASS]  5 cleanup" in text, text
    assert no_throwaway_rows_left()


def test_smoke_command_fails_without_the_docker_engine_module(db):
    out = io.StringIO()
    with pytest.raises(CommandError, match="assign docker-engine"):
        call_command("smoke_test_docker_runtime", stdout=out)
    assert "no live docker-engine module" in out.getvalue()
    assert no_throwaway_rows_left()


def test_smoke_command_with_the_ready_probe_on_expects_pending(catalog, settings):
    """As shipped (probe on): the smoke has no dockerd, so ready must leave the host pending with the error."""
    settings.POWERNODE_DOCKER_READY_PROBE = True
    settings.POWERNODE_DOCKER_PROBE_TIMEOUT_S = 1
    out = io.StringIO()
    call_command("smoke_test_docker_runtime", stdout=out)
    text = out.getvalue()
    assert "stays pending: the platform's probe found no daemon" in text, text
    assert text.rstrip().splitlines()[-1].startswith("smoke_test_docker_runtime: PASS"), text
    assert Event.objects.filter(kind="system.docker.handshake.probe_failed").count() == 1
    assert no_throwaway_rows_left()
