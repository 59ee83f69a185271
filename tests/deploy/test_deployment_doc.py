"""docs/DEPLOYMENT.md's haproxy.cfg is a configuration HAProxy accepts (``haproxy -c``), with /readyz checks."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.needs import need_tools

BASE_DIR = Path(__file__).resolve().parents[2]
DOC = BASE_DIR / "docs" / "DEPLOYMENT.md"


def _haproxy_block() -> str:
    blocks = re.findall(r"```\n(global\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "one haproxy.cfg block in docs/DEPLOYMENT.md"
    return blocks[0]


def _throwaway_pem(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "powernode.example.net")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key_pem)


def test_the_documented_haproxy_cfg_is_valid(tmp_path: Path) -> None:
    need_tools("haproxy")
    config = _haproxy_block()
    assert "uri /readyz" in config and "http-check expect status 200" in config
    assert config.count(" check\n") == 3
    _throwaway_pem(tmp_path / "powernode.pem")
    config = config.replace("/etc/haproxy/certs/powernode.pem", str(tmp_path / "powernode.pem"))
    config = config.replace("/run/haproxy/admin.sock", str(tmp_path / "admin.sock"))
    (tmp_path / "haproxy.cfg").write_text(config)
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Configuration file is valid" in done.stdout + done.stderr
