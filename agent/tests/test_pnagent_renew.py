"""The agent's side of renewal (DESIGN §4 "Renewal") and of a ready the platform's probe did not accept."""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from test_pnagent_runner import RecordingWireGuard, _sdwan

from powernode_agent import state as st
from powernode_agent.runner import Runner

PROVISION = {"runtime": "docker", "action": "provision", "host_id": None}


@pytest.fixture
def runner_factory(agent_config, fake_runtime):  # noqa: ANN001, ANN201 - as in test_pnagent_runner
    def make() -> tuple[Runner, RecordingWireGuard]:
        wg = RecordingWireGuard()
        return Runner(
            agent_config, store=fake_runtime.store, runtime=fake_runtime, wireguard=wg, sleep=lambda s: None
        ), wg

    return make


def _provisioned(fake_platform, runner_factory, fake_runtime):  # noqa: ANN001, ANN202
    fake_platform.sdwan = [_sdwan()]
    fake_platform.runtime_orders = [PROVISION]
    runner, _ = runner_factory()
    runner.tick()
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "ready"]
    assert fake_platform.host_status == "connected" and runner.errors == []
    fake_runtime.calls.clear()
    return runner


def _renew(fake_platform) -> dict:  # noqa: ANN001
    return {"runtime": "docker", "action": "renew", "host_id": fake_platform.host_id}


def _serial(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def test_renew_order_rekeys_restarts_dockerd_and_posts_ready(
    fake_platform, runner_factory, fake_runtime, agent_config
) -> None:
    runner = _provisioned(fake_platform, runner_factory, fake_runtime)
    old_key, old_cert = runner.store.read(st.DOCKER_KEY), runner.store.read(st.DOCKER_CERT)
    fake_platform.runtime_orders = [PROVISION, _renew(fake_platform)]
    runner.tick()
    assert runner.errors == []
    renew_post = fake_platform.handshakes()[4]
    assert renew_post["phase"] == "wants_cert" and renew_post["renew"] is True
    assert fake_platform.phases()[4:] == ["wants_cert", "wants_config", "ready"]
    assert fake_platform.host_status == "connected"
    new_key, new_cert = runner.store.read(st.DOCKER_KEY), runner.store.read(st.DOCKER_CERT)
    assert new_key != old_key and _serial(new_cert) != _serial(old_cert)
    # dockerd was restarted to load the new certificate, with live-restore so containers keep running
    assert fake_runtime.calls.count("stop") == 1 and fake_runtime.running
    assert (agent_config.docker_tls_dir / "key.pem").read_bytes() == new_key
    assert json.loads(agent_config.daemon_json_path.read_text())["live-restore"] is True
    assert runner.store.read(st.DOCKER_RENEW_KEY) is None
    data = runner.store.load()
    assert data["docker_step"] == "ready" and not data.get("docker_renewing")

    # the order is gone once the platform has the new certificate: nothing more happens
    fake_platform.runtime_orders = [PROVISION]
    runner.tick()
    assert fake_platform.phases()[-1] == "ready" and len(fake_platform.phases()) == 7


def test_a_refused_renewal_changes_nothing_and_reports_no_failure(
    fake_platform, runner_factory, fake_runtime
) -> None:
    runner = _provisioned(fake_platform, runner_factory, fake_runtime)
    old_key, old_cert = runner.store.read(st.DOCKER_KEY), runner.store.read(st.DOCKER_CERT)
    fake_platform.errors["wants_cert"] = (409, "HostNotConnectedError", "not connected")
    fake_platform.runtime_orders = [PROVISION, _renew(fake_platform)]
    runner.tick()
    assert any("renew" in e for e in runner.errors)
    assert "failed" not in fake_platform.phases()  # the daemon still serves its valid certificate
    assert (runner.store.read(st.DOCKER_KEY), runner.store.read(st.DOCKER_CERT)) == (old_key, old_cert)
    assert "stop" not in fake_runtime.calls and fake_runtime.running
    assert runner.store.load()["docker_step"] == "ready"
    # the next order retries with the key saved before the refused post
    saved = runner.store.read(st.DOCKER_RENEW_KEY)
    assert saved is not None
    runner.tick()
    assert runner.store.read(st.DOCKER_KEY) == saved
    assert fake_platform.phases()[-1] == "ready"


def test_a_crash_after_the_renewed_certificate_still_restarts_dockerd_before_ready(
    fake_platform, runner_factory, fake_runtime
) -> None:
    runner = _provisioned(fake_platform, runner_factory, fake_runtime)
    fake_runtime.crash_in = "write_tls"
    fake_platform.runtime_orders = [PROVISION, _renew(fake_platform)]
    try:
        runner.tick()
    except BaseException as exc:  # the simulated crash of the agent process
        assert type(exc).__name__ == "SimulatedCrash"
    assert fake_runtime.running and "stop" not in fake_runtime.calls
    new_cert = runner.store.read(st.DOCKER_CERT)
    # a new agent process; the platform still orders renew (no ready confirmed the new certificate yet)
    fake_platform.runtime_orders = [PROVISION, _renew(fake_platform)]
    runner2, _ = runner_factory()
    posts_before = len(fake_platform.phases())
    runner2.tick()
    assert "stop" in fake_runtime.calls  # the old dockerd did not keep serving the old certificate
    # the provision order finished the renewal (ready with the new serial); renew was not answered twice
    assert fake_platform.phases()[posts_before:] == ["ready"]
    assert fake_platform.handshakes()[-1]["cert_serial"] == _colon(new_cert)
    assert not runner2.store.load().get("docker_renewing") and runner2.errors == []


def _colon(pem: bytes) -> str:
    text = format(_serial(pem), "x")
    text = text.zfill(len(text) + len(text) % 2)
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


class _LostAnswer(BaseException):
    """The agent process dies right after the platform signed the renewed certificate."""


def test_a_crash_before_the_renewed_certificate_was_written_renews_again_on_the_repeated_order(
    fake_platform, runner_factory, fake_runtime, monkeypatch
) -> None:
    from powernode_agent.handshake import HandshakeWalker

    runner = _provisioned(fake_platform, runner_factory, fake_runtime)
    old_cert = runner.store.read(st.DOCKER_CERT)
    store_cert = HandshakeWalker._store_cert

    def crash(self, *args):  # noqa: ANN001, ANN202
        raise _LostAnswer()

    monkeypatch.setattr(HandshakeWalker, "_store_cert", crash)
    fake_platform.runtime_orders = [PROVISION, _renew(fake_platform)]
    with pytest.raises(_LostAnswer):
        runner.tick()
    monkeypatch.setattr(HandshakeWalker, "_store_cert", store_cert)
    assert runner.store.read(st.DOCKER_CERT) == old_cert  # dockerd serves the old certificate
    lost_csr = fake_platform.handshakes()[-1]["csr_pem"]

    # the dockerd died as well: the new agent starts it again with what it has, and says which certificate
    fake_runtime.running = False
    runner2, _ = runner_factory()
    fake_platform.runtime_orders = [PROVISION]
    runner2.tick()
    assert fake_platform.phases()[-1] == "ready"
    # not the certificate the platform signed last
    assert fake_platform.handshakes()[-1]["cert_serial"] == _colon(old_cert)

    # the platform repeats renew (nothing confirmed the new certificate): the saved key is used again
    fake_platform.runtime_orders = [PROVISION, _renew(fake_platform)]
    runner2.tick()
    renew_posts = [h for h in fake_platform.handshakes() if h.get("renew")]
    assert len(renew_posts) == 2 and renew_posts[1]["csr_pem"] == lost_csr
    new_cert = runner2.store.read(st.DOCKER_CERT)
    assert _serial(new_cert) != _serial(old_cert)
    assert fake_platform.handshakes()[-1] == {**fake_platform.handshakes()[-1], "phase": "ready",
                                              "cert_serial": _colon(new_cert)}
    assert runner2.errors == [] and runner2.store.read(st.DOCKER_RENEW_KEY) is None


def test_ready_left_pending_by_the_platforms_probe_is_posted_again(
    fake_platform, runner_factory, fake_runtime
) -> None:
    fake_platform.sdwan = [_sdwan()]
    fake_platform.runtime_orders = [PROVISION]
    fake_platform.ready_pending = 1
    runner, _ = runner_factory()
    runner.tick()
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "ready"]
    assert fake_platform.host_status == "pending" and fake_runtime.running
    assert runner.store.load()["docker_step"] == "configured"
    runner.tick()
    assert fake_platform.phases()[-1] == "ready" and fake_platform.phases().count("ready") == 2
    assert fake_platform.host_status == "connected"
    assert runner.store.load()["docker_step"] == "ready"
    assert "failed" not in fake_platform.phases()
