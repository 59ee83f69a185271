"""/healthz and /readyz (DESIGN §7): cheap, unauthenticated, answered whatever the Host header, truthful."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from django.test import Client

import powernode
from tests.deploy.helpers import production_env, python


def get(path: str, **headers: str):  # noqa: ANN201 - django's test response
    return Client().get(path, **headers)


def test_healthz_answers_ok_without_touching_the_database():
    # no ``db`` fixture: pytest-django fails any query this test makes
    response = get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": powernode.__version__}
    assert response["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response


@pytest.mark.django_db
def test_readyz_is_ready_when_the_database_and_the_ca_answer(ca_backend: str):
    response = get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "version": powernode.__version__,
        "checks": {"database": "ok", "ca": "ok"},
    }


@pytest.mark.django_db
def test_readyz_is_unready_without_a_ca(settings, tmp_path: Path):
    settings.PKI_LOCAL_CA_DIR = tmp_path / "no-ca-here"
    response = get("/readyz/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"]["database"] == "ok"
    assert "No local CA" in body["checks"]["ca"]


def closed_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


@pytest.mark.vault
@pytest.mark.django_db
def test_readyz_is_unready_when_vault_is_down_or_refuses_the_token(settings, openbao):  # noqa: ANN001
    from tests.openbao import point_settings_at

    point_settings_at(settings, openbao)
    assert get("/readyz").status_code == 200
    settings.VAULT_TOKEN = "hvs.not-a-token-it-issued"
    response = get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["ca"] == "Vault rejected the platform's token"
    settings.VAULT_ADDR = f"http://[::1]:{closed_port()}"
    settings.VAULT_TIMEOUT = 2.0
    response = get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["ca"].startswith("Vault does not answer")


# Production settings: HTTPS redirect on, one allowed host. A health check comes over plain HTTP to the
# process's address (HAProxy, Prometheus): the probes answer it; every other path still refuses the Host.
PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="10.0.0.7:8000")
out = {}
for path in ("/healthz", "/readyz", "/api/v1/pki/ca"):
    response = client.get(path)
    out[path] = [response.status_code, response.content.decode()[:400]]
print(json.dumps(out))
"""


def test_probes_answer_over_http_whatever_the_host_in_production(tmp_path: Path):
    done = python(PROBE, production_env(tmp_path, DATABASE_URL=f"postgres://nobody:x@[::1]:{closed_port()}/none"))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["/healthz"][0] == 200 and json.loads(seen["/healthz"][1])["status"] == "ok"
    status, body = seen["/readyz"]
    assert status == 503
    checks = json.loads(body)["checks"]
    assert checks["database"] == "database unavailable (OperationalError)"
    assert "No local CA" in checks["ca"]
    assert seen["/api/v1/pki/ca"][0] in (301, 400)  # the rest of the site: HTTPS redirect or DisallowedHost
