"""deploy/haproxy/haproxy.cfg: HAProxy accepts it, and it carries the directives the cluster tests prove."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cluster.harness import CHECK, READY_PATH, ROOT, haproxy_binary, haproxy_config, why_cluster_cannot_run
from tests.needs import need

pytestmark = pytest.mark.cluster
SAMPLE = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def _throwaway_pem(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "powernode.example.net")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key_pem)
    return path


def test_haproxy_accepts_the_sample_configuration(tmp_path: Path) -> None:
    reason = why_cluster_cannot_run()
    need(reason is None, reason or "")
    text = SAMPLE.read_text()
    text = text.replace("/etc/haproxy/certs/powernode.pem", str(_throwaway_pem(tmp_path / "cert.pem")))
    text = text.replace("/run/haproxy/admin.sock", str(tmp_path / "admin.sock"))
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    done = subprocess.run([haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_sample_checks_and_retries_as_the_tested_cluster_does() -> None:
    def directives(text: str) -> set[str]:
        lines = {" ".join(line.split()) for line in text.splitlines()}
        return {line for line in lines if line and not line.startswith("#")}

    tested = directives(haproxy_config(bind="127.0.0.1:1", servers=[], stats_socket=Path("/nonexistent")))
    shipped = directives(SAMPLE.read_text())
    for line in (
        "balance roundrobin",
        "option httpchk",
        f"http-check send meth GET uri {READY_PATH} ver HTTP/1.1 hdr Host localhost",
        "http-check expect status 200",
        f"default-server {CHECK}",
        "timeout check 3s",
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure",
    ):
        assert line in tested and line in shipped, line
