"""``hub once`` / ``hub run`` against a fake platform on 127.0.0.1: the protocol, not the host (no root)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from powernode_agent.cli import main
from powernode_agent.hub.config import HubConfig
from powernode_agent.hub.desired import Desired
from powernode_agent.hub.runner import Hub, HubRunner, ReconcileResult

TOKEN = "pnh_0123456789ab_secret"
KEY = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
HUB_KEY = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="


class FakeHubPlatform:
    """POST /api/v1/hub/sync as the hub contract has it; answers can be swapped or made to fail."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.version = "v1"
        self.error: tuple[int, dict] | None = None
        self.hold_s = 0.0  # > 0: a sync posting the current version with wait_s is held (the watch)
        self.held = threading.Event()  # set while a sync is being held
        self.lock = threading.Lock()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with platform.lock:
                    platform.requests.append(
                        {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                    )
                    status, answer = platform.error or (200, platform.answer())
                if platform.hold_s and body.get("wait_s") and body.get("desired_version") == platform.version:
                    platform.held.set()
                    time.sleep(min(platform.hold_s, body["wait_s"]))
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def answer(self) -> dict[str, Any]:
        return {
            "desired_version": self.version,
            "poll_interval_s": 0.05,
            "networks": [
                {
                    "network_id": "0193a1b2-0000-7000-8000-00000000000a",
                    "name": "net-a",
                    "prefix": "fd00:abcd:1::/64",
                    "hub_address": "fd00:abcd:1::1",
                    "listen_port": 51820,
                    "public_key": "",
                    "peers": [{"public_key": KEY, "allowed_ips": ["fd00:abcd:1::2/128"]}],
                }
            ],
        }


class RecordingHub(Hub):
    """The real Hub's bookkeeping with the host left alone: reconcile records, the status is canned."""

    def __init__(self, config: HubConfig) -> None:
        super().__init__(config)
        self.reconciled: list[Desired] = []

    def reconcile(self, desired: Desired) -> ReconcileResult:
        self.reconciled.append(desired)
        first = len(self.reconciled) == 1
        self.store.ensure()
        self.store.update(applied_version=desired.desired_version)
        return ReconcileResult(desired.desired_version, new_keys=first)

    def status_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"networks": []}
        if self.reconciled:
            report["networks"] = [
                {
                    "network_id": "0193a1b2-0000-7000-8000-00000000000a",
                    "public_key": HUB_KEY,
                    "peers": [{"public_key": KEY, "latest_handshake": 0, "rx_bytes": 0, "tx_bytes": 0}],
                }
            ]
            report["applied_version"] = self.store.load().get("applied_version")
        return report


@pytest.fixture
def platform() -> Any:
    fake = FakeHubPlatform()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def _config(platform: FakeHubPlatform, tmp_path: Path) -> HubConfig:
    return HubConfig(platform_url=platform.url, hub_token=TOKEN, state_dir=tmp_path / "state")


def test_once_sends_the_token_and_the_contract_shape_and_reports_a_new_key_at_once(
    platform, tmp_path
) -> None:
    config = _config(platform, tmp_path)
    hub = RecordingHub(config)
    result = HubRunner(config, hub=hub).once()
    assert result.ok
    first, second = (r for r in platform.requests)
    assert first["path"] == second["path"] == "/api/v1/hub/sync"
    assert first["auth"] == second["auth"] == f"Bearer {TOKEN}"
    assert first["body"]["hub_version"] and first["body"]["status"] == {"networks": []}
    assert "desired_version" not in first["body"] and first["body"]["wait_s"] == 0
    # the key made in the first round goes to the platform in a second sync straight away
    body = second["body"]
    assert body["desired_version"] == "v1"
    assert body["status"]["applied_version"] == "v1"
    (net,) = body["status"]["networks"]
    assert set(net) == {"network_id", "public_key", "peers"} and net["public_key"] == HUB_KEY
    assert set(net["peers"][0]) == {"public_key", "latest_handshake", "rx_bytes", "tx_bytes"}
    assert hub.store.load()["last_sync"]["ok"] is True


def test_once_exits_non_zero_with_a_clear_message_on_an_error_answer(platform, tmp_path, capsys) -> None:
    platform.error = (401, {"error": {"type": "AuthenticationFailed", "message": "token revoked"}})
    code = main(["hub", "once", "--url", platform.url, "--token", TOKEN, "--state-dir", str(tmp_path / "s")])
    assert code == 1
    err = capsys.readouterr().err
    assert "hub once: sync failed: AuthenticationFailed: token revoked (HTTP 401)" in err
    status = json.loads(
        _run_cli(capsys, ["hub", "status", "--json", "--state-dir", str(tmp_path / "s")], expect=0)
    )
    assert status["last_sync"]["ok"] is False and "token revoked" in status["last_sync"]["error"]


def _run_cli(capsys, argv: list[str], *, expect: int) -> str:
    assert main(argv) == expect
    return capsys.readouterr().out


def test_once_refuses_a_bad_answer_and_wrong_settings(platform, tmp_path, capsys) -> None:
    platform.error = (200, {"desired_version": "v1", "networks": "nope"})
    assert main(["hub", "once", "--url", platform.url, "--token", TOKEN, "--state-dir", str(tmp_path)]) == 1
    assert "networks must be a list" in capsys.readouterr().err
    assert main(["hub", "once", "--url", platform.url, "--token", "pna_x", "--state-dir", str(tmp_path)]) == 2
    assert "hub token" in capsys.readouterr().err
    assert main(["hub", "once", "--url", "http://hub.example", "--token", TOKEN]) == 2
    assert "plain-http" in capsys.readouterr().err


def test_run_picks_up_a_changed_desired_version_and_stops_cleanly(platform, tmp_path) -> None:
    config = _config(platform, tmp_path)
    hub = RecordingHub(config)
    stop = threading.Event()
    runner = HubRunner(config, hub=hub, stop=stop)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        _wait(lambda: len(platform.requests) >= 4)
        assert [d.desired_version for d in hub.reconciled] == ["v1"]  # no re-apply of an unchanged version
        platform.version = "v2"
        _wait(lambda: any(d.desired_version == "v2" for d in hub.reconciled))
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    bodies = [r["body"] for r in platform.requests]
    # nothing applied yet: the first sync must not be held; then held at most 25 s (until a reconcile is due)
    assert bodies[0]["wait_s"] == 0 and all(b["wait_s"] == 25 for b in bodies[1:])
    assert bodies[1]["desired_version"] == "v1"
    assert [d.desired_version for d in hub.reconciled] == ["v1", "v2"]


def test_run_backs_off_on_errors_and_recovers(platform, tmp_path) -> None:
    config = _config(platform, tmp_path)
    hub = RecordingHub(config)
    platform.error = (503, {"error": {"type": "Unavailable", "message": "later"}})
    stop = threading.Event()
    delays: list[float] = []
    runner = HubRunner(config, hub=hub, stop=stop, rand=lambda: 0.01)
    real_wait = stop.wait

    def wait(timeout: float | None = None) -> bool:
        delays.append(timeout or 0)
        return real_wait(timeout)

    stop.wait = wait  # type: ignore[method-assign]
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        _wait(lambda: len(platform.requests) >= 4)
        platform.error = None
        _wait(lambda: bool(hub.reconciled))
    finally:
        stop.set()
        thread.join(timeout=5)
    assert delays[:3] == pytest.approx([0.01, 0.02, 0.04])  # full jitter of 1, 2, 4 s


def _wait(predicate, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
