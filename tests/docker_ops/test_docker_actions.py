"""docker_* actions without a daemon: refusals before any network call, and operator cert export.

The calls that reach a real dockerd over the overlay run in the lab tests (tests/lab).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command

from apps.events.models import Event
from tests.csr import make_csr
from tests.handshake.conftest import assert_error

UNKNOWN_HOST = "host-00000000-0000-7000-8000-000000000000"


def _calls(host_id: str) -> dict[str, dict]:
    return {
        "docker_pull_image": {"host_id": host_id, "image": "registry.lab:5000/hello:1"},
        "docker_create_container": {
            "host_id": host_id,
            "image": "registry.lab:5000/hello:1",
            "name": "hello",
            "ports": [{"host": 8080, "container": 80}],
        },
        "docker_list_containers": {"host_id": host_id},
        "docker_delete_container": {"host_id": host_id, "container_id": "hello", "force": True},
        "docker_delete_image": {"host_id": host_id, "image_id": "registry.lab:5000/hello:1"},
    }


@pytest.fixture
def pending_host(agent) -> str:
    agent.ok("installing")
    return agent.ok("wants_cert", csr_pem=make_csr())["host_id"]


@pytest.mark.parametrize("name", list(_calls("x")))
def test_pending_host_is_409_host_not_connected(api, pending_host, name):
    before = Event.objects.count()
    status, body = api.call(name, _calls(pending_host)[name])
    error = assert_error(status, body, 409, "HostNotConnectedError")
    assert error["details"] == {"host_id": pending_host, "status": "pending"}
    assert "ready" in error["message"]
    assert Event.objects.count() == before


@pytest.mark.parametrize("name", list(_calls("x")))
def test_unknown_host_is_404(api, db, name):
    status, body = api.call(name, _calls(UNKNOWN_HOST)[name])
    assert_error(status, body, 404, "NotFound")


@pytest.mark.parametrize(
    "name, payload",
    [
        ("docker_pull_image", {"host_id": "not-a-host", "image": "x:1"}),
        ("docker_pull_image", {"host_id": UNKNOWN_HOST, "image": "has space"}),
        ("docker_create_container", {"host_id": UNKNOWN_HOST, "image": "x:1", "ports": [{"host": 0, "container": 80}]}),
        ("docker_create_container", {"host_id": UNKNOWN_HOST, "image": "x:1", "ports": [{"host": "8080"}]}),
        ("docker_create_container", {"host_id": UNKNOWN_HOST, "image": "x:1", "env": ["NOEQUALS"]}),
        ("docker_create_container", {"host_id": UNKNOWN_HOST, "image": "x:1", "command": []}),
        ("docker_create_container", {"host_id": UNKNOWN_HOST, "image": "x:1", "name": "bad/name"}),
        ("docker_list_containers", {"host_id": UNKNOWN_HOST, "all": "yes"}),
        ("docker_delete_container", {"host_id": UNKNOWN_HOST}),
        ("docker_delete_image", {"host_id": UNKNOWN_HOST, "image_id": "x", "extra": 1}),
    ],
)
def test_bad_input_is_400(api, db, name, payload):
    status, body = api.call(name, payload)
    assert_error(status, body, 400, "ValidationError")


def test_view_permission_can_list_but_not_operate(api_as, pending_host):
    viewer = api_as("viewer", perms=["docker_view"])
    status, body = viewer.call("docker_list_containers", {"host_id": pending_host})
    assert_error(status, body, 409, "HostNotConnectedError")  # past the permission check
    status, body = viewer.call("docker_pull_image", _calls(pending_host)["docker_pull_image"])
    error = assert_error(status, body, 403, "PermissionDenied")
    assert error["details"]["permission"] == "system.docker_operate"
    status, body = viewer.call("system_export_operator_cert", {})
    assert_error(status, body, 403, "PermissionDenied")


def _verify_chain(tmp_path, cert_pem: str, chain_pem: str) -> None:
    (tmp_path / "chain.pem").write_text(chain_pem)
    (tmp_path / "cert.pem").write_text(cert_pem)
    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    root = [c for c in certs if c.issuer == c.subject]
    (tmp_path / "root.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in root))
    result = subprocess.run(
        ["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(tmp_path / "root.pem"),
         "-untrusted", str(tmp_path / "chain.pem"), str(tmp_path / "cert.pem")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_operator_cert_is_short_lived_client_cert(api, db, tmp_path):
    exported = api.ok("system_export_operator_cert", {})
    assert set(exported) >= {"ca_pem", "cert_pem", "key_pem"}
    cert = x509.load_pem_x509_certificate(exported["cert_pem"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "operator:ops-admin"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=5) < lifetime <= dt.timedelta(hours=24)
    assert "PRIVATE KEY" in exported["key_pem"]
    _verify_chain(tmp_path, exported["cert_pem"], exported["ca_pem"])
    kinds = [e.kind for e in Event.objects.filter(kind="system.pki.operator_cert.exported")]
    assert kinds == ["system.pki.operator_cert.exported"]


def test_export_command_writes_the_three_files_with_a_private_key(admin_user, tmp_path, capsys):
    out = tmp_path / "dot-powernode"
    call_command("export_operator_cert", "--user", admin_user.username, "--out", str(out))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["operator-ca.pem", "operator-cert.pem", "operator-key.pem"]
    assert stat.S_IMODE(os.stat(out / "operator-key.pem").st_mode) == 0o600
    assert "docker --tlsverify" in capsys.readouterr().out
    _verify_chain(tmp_path, (out / "operator-cert.pem").read_text(), (out / "operator-ca.pem").read_text())


def test_export_command_refuses_without_docker_operate(make_operator, tmp_path):
    from django.core.management.base import CommandError

    viewer = make_operator("cmd-viewer", perms=["docker_view"])
    with pytest.raises(CommandError, match="system.docker_operate"):
        call_command("export_operator_cert", "--user", viewer.username, "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
