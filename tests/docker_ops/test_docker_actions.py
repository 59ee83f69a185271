"""docker_* actions without a daemon: refusals before any network call, and operator cert export.

The calls that reach a real dockerd over the overlay run in the lab tests (tests/lab).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import uuid

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command
from django.test import Client

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.pki.models import IssuedCertificate
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
    status, body = viewer.call("system_export_operator_cert", {"network_id": str(uuid.uuid4())})
    assert_error(status, body, 403, "PermissionDenied")


def test_docker_operate_alone_cannot_export_a_cli_certificate(api_as, fleet):
    """The Docker CLI is root on the host: docker_operate is not enough, docker_cli is."""
    operator = api_as("operator", perms=["docker_view", "docker_operate"])
    status, body = operator.call("system_export_operator_cert", {"network_id": fleet["network"]["id"]})
    error = assert_error(status, body, 403, "PermissionDenied")
    assert error["details"]["permission"] == "system.docker_cli"
    assert not IssuedCertificate.objects.exists()

    cli = api_as("cli-user", perms=["docker_cli"])
    assert "cert_pem" in cli.ok("system_export_operator_cert", {"network_id": fleet["network"]["id"]})


def test_platform_admins_hold_docker_cli(db):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="Platform admins")
    assert group.permissions.filter(content_type__app_label="system", codename="docker_cli").exists()


@pytest.mark.parametrize("ttl", [0, 481, "60"])
def test_export_ttl_out_of_range_is_400(api, fleet, ttl):
    status, body = api.call("system_export_operator_cert", {"network_id": fleet["network"]["id"], "ttl_minutes": ttl})
    assert_error(status, body, 400, "ValidationError")
    assert not IssuedCertificate.objects.exists()


def test_export_for_an_unknown_network_is_404(api, db):
    status, body = api.call("system_export_operator_cert", {"network_id": str(uuid.uuid4())})
    assert_error(status, body, 404, "NotFound")


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


def _lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC)


def test_export_operator_cert_is_short_lived_client_cert(api, fleet, pending_host, tmp_path):
    network_id = fleet["network"]["id"]
    exported = api.ok("system_export_operator_cert", {"network_id": network_id})
    assert set(exported) >= {"ca_pem", "cert_pem", "key_pem", "client_ca_pem"}
    assert exported["network_id"] == network_id
    leaf, presented_ca = x509.load_pem_x509_certificates(exported["cert_pem"].encode())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "operator:ops-admin"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # default ttl_minutes: 60
    assert dt.timedelta(minutes=58) < _lifetime(leaf) <= dt.timedelta(minutes=61)
    assert "PRIVATE KEY" in exported["key_pem"]
    # issued by the network's client CA: the one the network's daemons trust (wants_cert's client_ca_pem)
    client_ca = x509.load_pem_x509_certificate(exported["client_ca_pem"].encode())
    assert presented_ca == client_ca and leaf.issuer == client_ca.subject
    leaf.verify_directly_issued_by(client_ca)
    host_client_ca = DockerHost.objects.get(pk=pending_host).client_cert_pem
    assert x509.load_pem_x509_certificates(host_client_ca.encode())[1] == client_ca
    root = x509.load_pem_x509_certificates(exported["ca_pem"].encode())[-1]
    _verify_chain(tmp_path, exported["cert_pem"], exported["client_ca_pem"] + root.public_bytes(Encoding.PEM).decode())
    # ca_pem verifies the daemons' server certificates (the Docker CLI's --tlscacert)
    assert x509.load_pem_x509_certificates(exported["ca_pem"].encode()) == x509.load_pem_x509_certificates(
        Client().get("/api/v1/pki/ca").content
    )
    events = list(Event.objects.filter(kind="system.pki.operator_cert.exported"))
    assert [e.data["network_id"] for e in events] == [network_id]

    longer = api.ok("system_export_operator_cert", {"network_id": network_id, "ttl_minutes": 480})
    longer_leaf = x509.load_pem_x509_certificate(longer["cert_pem"].encode())
    assert dt.timedelta(hours=7, minutes=58) < _lifetime(longer_leaf) <= dt.timedelta(hours=8, minutes=1)
    short = api.ok("system_export_operator_cert", {"network_id": network_id, "ttl_minutes": 5})
    assert _lifetime(x509.load_pem_x509_certificate(short["cert_pem"].encode())) <= dt.timedelta(minutes=5, seconds=30)


def test_export_for_another_network_is_issued_by_another_client_ca(api, fleet):
    other = api.ok("system_sdwan_create_network", {"name": "net-b", "prefix": "fd00:abcd:2::/64"})["network"]
    a = api.ok("system_export_operator_cert", {"network_id": fleet["network"]["id"]})
    b = api.ok("system_export_operator_cert", {"network_id": other["id"]})
    ca_a, ca_b = (x509.load_pem_x509_certificate(e["client_ca_pem"].encode()) for e in (a, b))
    assert ca_a != ca_b and ca_a.subject != ca_b.subject
    leaf_b = x509.load_pem_x509_certificate(b["cert_pem"].encode())
    with pytest.raises((InvalidSignature, ValueError)):
        leaf_b.verify_directly_issued_by(ca_a)
    assert a["ca_pem"] == b["ca_pem"]  # one server chain for every host


def test_export_command_writes_the_three_files_with_a_private_key(admin_user, fleet, tmp_path, capsys):
    out = tmp_path / "dot-powernode"
    call_command(
        "export_operator_cert", "--user", admin_user.username, "--out", str(out),
        "--network", fleet["network"]["id"], "--ttl-minutes", "30",
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["operator-ca.pem", "operator-cert.pem", "operator-key.pem"]
    assert stat.S_IMODE(os.stat(out / "operator-key.pem").st_mode) == 0o600
    assert "docker --tlsverify" in capsys.readouterr().out
    leaf = x509.load_pem_x509_certificate((out / "operator-cert.pem").read_bytes())
    assert dt.timedelta(minutes=28) < _lifetime(leaf) <= dt.timedelta(minutes=31)
    assert leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.endswith(fleet["network"]["id"])


def test_export_command_refuses_without_docker_cli(make_operator, fleet, tmp_path):
    from django.core.management.base import CommandError

    operator = make_operator("cmd-operator", perms=["docker_view", "docker_operate"])
    with pytest.raises(CommandError, match="system.docker_cli"):
        call_command(
            "export_operator_cert", "--user", operator.username, "--out", str(tmp_path / "x"),
            "--network", fleet["network"]["id"],
        )
    assert not (tmp_path / "x").exists()
