"""The phase walker against the fake platform: order, CSR, key secrecy, resume after a crash, `failed`."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pnagent_fakes import TestCa

from powernode_agent import state as st
from powernode_agent.handshake import HandshakeFailed, HandshakeWalker, decommission, runtime_report
from powernode_agent.platform_api import PlatformClient

OVERLAY = "fd00:abcd:1::2"


def _walker(fake_platform, fake_runtime, overlays=(OVERLAY,)) -> HandshakeWalker:
    client = PlatformClient(fake_platform.url, fake_platform.token)
    return HandshakeWalker(
        client,
        fake_runtime,
        fake_runtime.store,
        instance_id=fake_platform.instance_id,
        overlay_addresses=overlays,
    )


def _secret_forms(key_pem: bytes) -> list[bytes]:
    """The private key as PEM, as its body, and as raw bytes in base64: none may appear in a request."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = b"".join(key_pem.splitlines()[1:-1])
    return [key_pem, body, base64.b64encode(raw), raw.hex().encode()]


def test_full_walk_posts_phases_in_order_and_keeps_the_key_local(fake_platform, fake_runtime) -> None:
    version = _walker(fake_platform, fake_runtime).walk()

    assert version == "20.10.24+dfsg1"
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "ready"]
    bodies = fake_platform.handshakes()
    assert all(b["runtime"] == "docker" for b in bodies)
    assert bodies[-1]["version"] == "20.10.24+dfsg1"
    assert fake_platform.host_status == "connected"

    csr = x509.load_pem_x509_csr(bodies[1]["csr_pem"].encode())
    assert isinstance(csr.public_key(), ed25519.Ed25519PublicKey)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == fake_platform.instance_id

    key_pem = fake_runtime.store.read(st.DOCKER_KEY)
    for request in fake_platform.requests:
        for secret in _secret_forms(key_pem):
            assert secret not in request.raw
    assert b"PRIVATE KEY" not in b"".join(r.raw for r in fake_platform.requests)

    config = fake_runtime.config
    daemon = json.loads(config.daemon_json_path.read_text())
    assert daemon["hosts"] == [f"tcp://[{OVERLAY}]:2376"]
    assert daemon["tlskey"] == str(config.docker_tls_dir / "key.pem")
    assert daemon["bip"] == "198.18.7.1/24"
    assert (config.docker_tls_dir / "key.pem").read_bytes() == key_pem
    for name in ("key.pem", "cert.pem", "ca.pem"):
        assert stat.S_IMODE(os.stat(config.docker_tls_dir / name).st_mode) == 0o600
    # a platform that sends no client_ca_pem: the chain is the daemon's client CA, as before
    assert (config.docker_tls_dir / "ca.pem").read_bytes() == fake_platform.ca.pem

    data = fake_runtime.store.load()
    assert (data["docker_step"], data["docker_phase"], data["host_id"]) == (
        "ready",
        "ready",
        fake_platform.host_id,
    )
    assert runtime_report(fake_runtime.store) == {"phase": "ready", "version": "20.10.24+dfsg1"}

    # Walking again when ready posts nothing.
    _walker(fake_platform, fake_runtime).walk()
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "ready"]


def test_resume_after_a_crash_while_writing_the_config(fake_platform, fake_runtime, crash_type) -> None:
    fake_runtime.crash_in = "write_daemon_json"
    with pytest.raises(crash_type):
        _walker(fake_platform, fake_runtime).walk()
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config"]  # no `failed`: it crashed
    assert fake_runtime.store.load()["docker_step"] == "wants_config"

    # A new agent process: fresh runtime object over the same state directory.
    fresh = type(fake_runtime)(fake_runtime.config, st.StateStore(fake_runtime.config.state_dir))
    assert _walker(fake_platform, fresh).walk() == "20.10.24+dfsg1"
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "ready"]


def test_resume_after_a_crash_between_post_and_save_reuses_the_key(
    fake_platform, fake_runtime, crash_type, monkeypatch
) -> None:
    # The wants_cert answer arrives but the agent dies before storing it.
    original = st.StateStore.write

    def dying_write(self, name, data):
        if name == st.DOCKER_CERT:
            raise crash_type("killed")
        return original(self, name, data)

    monkeypatch.setattr(st.StateStore, "write", dying_write)
    with pytest.raises(crash_type):
        _walker(fake_platform, fake_runtime).walk()
    monkeypatch.setattr(st.StateStore, "write", original)

    _walker(fake_platform, fake_runtime).walk()
    phases = fake_platform.phases()
    assert phases == ["installing", "wants_cert", "wants_cert", "wants_config", "ready"]
    csrs = [
        x509.load_pem_x509_csr(b["csr_pem"].encode())
        for b in fake_platform.handshakes()
        if b["phase"] == "wants_cert"
    ]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert csrs[0].public_key().public_bytes(*spki) == csrs[1].public_key().public_bytes(*spki)


def test_write_error_posts_failed_and_a_retry_recovers(fake_platform, fake_runtime, tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    good_path = fake_runtime.config.daemon_json_path
    fake_runtime.config.daemon_json_path = blocker / "daemon.json"
    with pytest.raises(HandshakeFailed):
        _walker(fake_platform, fake_runtime).walk()
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "failed"]
    error = fake_platform.handshakes()[-1]["error"]
    assert "configure" in error and "not-a-dir" in error
    assert runtime_report(fake_runtime.store) == {"phase": "failed"}
    assert fake_runtime.store.load()["docker_error"] == error

    fake_runtime.config.daemon_json_path = good_path
    _walker(fake_platform, fake_runtime).walk()
    # The retry fetches the daemon config again but keeps the certificate.
    assert fake_platform.phases()[4:] == ["wants_config", "ready"]
    assert runtime_report(fake_runtime.store)["phase"] == "ready"


def test_platform_refusal_posts_failed(fake_platform, fake_runtime) -> None:
    fake_platform.errors["wants_cert"] = (400, "InvalidCsrError", "CSR signature is invalid")
    with pytest.raises(HandshakeFailed, match="InvalidCsrError"):
        _walker(fake_platform, fake_runtime).walk()
    assert fake_platform.phases() == ["installing", "wants_cert", "failed"]
    assert "CSR signature is invalid" in fake_platform.handshakes()[-1]["error"]


def test_validation_refuses_a_host_not_on_our_overlay(fake_platform, fake_runtime) -> None:
    with pytest.raises(HandshakeFailed, match="not an overlay address of this node"):
        _walker(fake_platform, fake_runtime, overlays=["fd00:abcd:1::99"]).walk()
    assert fake_platform.phases()[-1] == "failed"
    assert "start" not in fake_runtime.calls


def test_readiness_failure_stops_dockerd_and_posts_failed(fake_platform, fake_runtime) -> None:
    fake_runtime.crash_in = None

    def not_ready(*args, **kwargs):
        raise RuntimeError("nothing answers on [fd00:abcd:1::2]:2376")

    fake_runtime.wait_ready = not_ready
    with pytest.raises(HandshakeFailed):
        _walker(fake_platform, fake_runtime).walk()
    assert fake_runtime.calls[-1] == "stop"
    assert fake_runtime.running is False
    assert "nothing answers" in fake_platform.handshakes()[-1]["error"]


def test_decommission_stops_removes_files_and_confirms(fake_platform, fake_runtime) -> None:
    _walker(fake_platform, fake_runtime).walk()
    config, store = fake_runtime.config, fake_runtime.store
    client = PlatformClient(fake_platform.url, fake_platform.token)

    decommission(client, fake_runtime, store, host_id=fake_platform.host_id)

    assert fake_runtime.running is False
    for path in (
        config.docker_tls_dir / "key.pem",
        config.docker_tls_dir / "cert.pem",
        config.docker_tls_dir / "ca.pem",
        config.daemon_json_path,
        store.path(st.DOCKER_KEY),
        store.path(st.DOCKER_CERT),
        store.path(st.DAEMON_CONFIG),
    ):
        assert not path.exists(), path
    last = fake_platform.handshakes()[-1]
    assert last == {"runtime": "docker", "phase": "decommissioned", "host_id": fake_platform.host_id}
    assert fake_platform.host_status == "decommissioned"
    assert runtime_report(store) == {"phase": "decommissioned"}

    # Repeating it (the order is still in the next heartbeat) is harmless: the platform's 409 counts as done.
    decommission(client, fake_runtime, store, host_id=fake_platform.host_id)
    assert runtime_report(store) == {"phase": "decommissioned"}


def test_daemon_trusts_only_the_networks_client_ca_when_sent(fake_platform, fake_runtime) -> None:
    """tlscacert is the network's client CA alone; the server chain still checks the daemon (the probe)."""
    client_ca = TestCa("powernode client CA 0193a1b2-0000-7000-8000-0000000000aa")
    fake_platform.client_ca_pem = client_ca.pem
    _walker(fake_platform, fake_runtime).walk()

    tls_dir = fake_runtime.config.docker_tls_dir
    assert (tls_dir / "ca.pem").read_bytes() == client_ca.pem
    assert stat.S_IMODE(os.stat(tls_dir / "ca.pem").st_mode) == 0o600
    assert fake_runtime.store.read(st.DOCKER_CHAIN) == fake_platform.ca.pem
    assert fake_runtime.store.read(st.DOCKER_CLIENT_CA) == client_ca.pem
    assert fake_platform.host_status == "connected"


def test_an_empty_client_ca_is_refused(fake_platform, fake_runtime) -> None:
    fake_platform.client_ca_pem = b"not a certificate"
    with pytest.raises(HandshakeFailed):
        _walker(fake_platform, fake_runtime).walk()
    assert not (fake_runtime.config.docker_tls_dir / "ca.pem").exists()
