"""The heartbeat loop: report, receive the desired state, reconcile SDWAN, act on runtime orders, sleep.

Against a platform that answers ``desired_version`` the heartbeat is a watch: the platform holds it until
the desired state changes (or ``watch_wait_s`` passes), the agent acts at once and watches again. Against
an older platform it polls at the interval. Failures back off exponentially with full jitter.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from . import state as st
from .config import AgentConfig
from .docker_runtime import DockerRuntime, DockerSupervisor
from .handshake import HandshakeFailed, HandshakeWalker, decommission, runtime_report, step_index
from .platform_api import AgentApiError, PlatformClient
from .wireguard import (
    HubPeer,
    Membership,
    WireGuardError,
    WireGuardManager,
    generate_private_key,
    interface_name,
    public_key_for,
)

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
#: failure backoff: full jitter over base × 2^failures, capped by the heartbeat interval and this
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0


def backoff_s(
    failures: int, *, cap_s: float, base_s: float = BACKOFF_BASE_S, floor_s: float = 0.0, rand=random.uniform  # noqa: ANN001
) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1, 2, ...): uniform in [0, min(cap,
    max(floor, base·2^(failures-1)))] ("full jitter"), so agents that lost the platform together come back
    spread out. ``floor_s``: a watch broken off (a platform restart drops every held request at once) is
    retried within the watch's own length, the window in which the agent would have called again anyway:
    the fleet returns at about its steady rate instead of all in the first second."""
    ceiling = min(cap_s, BACKOFF_CAP_S, max(floor_s, base_s * 2 ** min(max(failures - 1, 0), 30)))
    return rand(0.0, ceiling)


class Runner:
    """One agent: owns the state directory, the platform client, WireGuard and the docker runtime."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        client: PlatformClient | None = None,
        store: st.StateStore | None = None,
        runtime: DockerRuntime | None = None,
        wireguard: WireGuardManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.store = store or st.StateStore(config.state_dir)
        self.client = client or PlatformClient.for_settings(config, config.agent_token)
        self.runtime = runtime or DockerRuntime(config, self.store)
        self.wireguard = wireguard or WireGuardManager(
            backend=config.wg_backend, wireguard_go=config.wireguard_go_binary
        )
        self.sleep = sleep
        self.interval_s = config.heartbeat_interval_s or DEFAULT_INTERVAL_S
        self.errors: list[str] = []  # what went wrong in the last tick (``run --once`` exits 1 on any)
        self.desired_version: str | None = None  # from the last answer; None: the platform has no watch
        self.failures = 0  # heartbeats failed (or watches answered early unchanged) in a row
        self._renewal_finished = False  # this tick's provision order finished an interrupted renewal

    # wireguard key
    def wireguard_public_key(self) -> str:
        """The instance's WireGuard public key; the private key is made here on first use and stays here."""
        self.store.ensure()
        private = self.store.read(st.WG_PRIVATE_KEY)
        if private is None:
            private = (generate_private_key() + "\n").encode()
            self.store.write(st.WG_PRIVATE_KEY, private)
            log.info("wireguard: generated this instance's key")
        return public_key_for(private.decode())

    # one heartbeat
    def tick(self) -> float:
        """One heartbeat and everything it asks for; returns the seconds to wait before the next one."""
        self.errors = []
        public_key = self.wireguard_public_key()
        known = self.desired_version
        wait_s = self.config.watch_wait_s if known is not None else 0
        started = time.monotonic()
        try:
            answer = self.client.heartbeat(
                runtimes={"docker": runtime_report(self.store)},
                wireguard_public_key=public_key,
                desired_version=known,
                wait_s=wait_s,
            )
        except AgentApiError as exc:
            if exc.is_key_conflict:
                # Not fixable from here: keep heartbeating (with the same key) until an operator acts.
                log.error(
                    "heartbeat refused: the platform does not accept this instance's WireGuard key %s (%s). "
                    "If the key changed on purpose (reinstall, lost state), an operator must run "
                    "system_sdwan_reset_peer_key for this instance's peer(s); otherwise this agent's token "
                    "may be in use elsewhere.",
                    public_key,
                    exc.message,
                )
            else:
                log.error("heartbeat failed: %s", exc)
            self.errors.append(f"heartbeat: {exc}")
            self.failures += 1
            return backoff_s(self.failures, cap_s=self.interval_s, floor_s=float(wait_s))
        interval = answer.get("heartbeat_interval_s")
        if isinstance(interval, (int, float)) and interval > 0:
            self.interval_s = float(interval)
        if self.config.heartbeat_interval_s:
            self.interval_s = self.config.heartbeat_interval_s
        log.info(
            "heartbeat: ok, %d networks, %d orders, next in %gs",
            len(answer.get("sdwan") or []),
            len(answer.get("runtime_orders") or []),
            self.interval_s,
        )
        if answer.get("instance_id"):
            self.store.update(instance_id=str(answer["instance_id"]))
        overlays = self.reconcile_sdwan(answer.get("sdwan") or [])
        self.act_on_orders(answer, overlays)
        return self._next_wait(answer, known=known, wait_s=wait_s, held_s=time.monotonic() - started)

    def _next_wait(self, answer: dict[str, Any], *, known: str | None, wait_s: int, held_s: float) -> float:
        """When to heartbeat again: at once while watching, the interval against a platform without it."""
        version = answer.get("desired_version")
        if not isinstance(version, str) or not self.config.watch_wait_s:
            self.desired_version, self.failures = None, 0
            return self.interval_s  # an older platform (or the watch turned off): plain polling
        self.desired_version = version
        if wait_s and version == known and held_s < wait_s / 2:
            # Answered early with nothing new (the platform lost its LISTEN connection or is shutting
            # down): come back soon, but spread out, like after a failure.
            self.failures += 1
            return backoff_s(self.failures, cap_s=self.interval_s)
        self.failures = 0
        return 0.0  # a change was acted on, or the watch ran its course: watch again now

    def reconcile_sdwan(self, entries: list[dict[str, Any]]) -> list[str]:
        """Bring up one interface per membership, remove the ones for networks we left; returns our /128s."""
        key_file = self.store.path(st.WG_PRIVATE_KEY)
        known: dict[str, str] = dict(self.store.load().get("wg_interfaces") or {})
        wanted: dict[str, str] = {}
        overlays: list[str] = []
        for entry in entries:
            try:
                network_id = str(entry["network_id"])
                ifname = interface_name(self.config.wg_interface_prefix, network_id)
                hub_data = entry.get("hub") or {}
                hub = None
                if hub_data.get("public_key"):
                    hub = HubPeer(
                        public_key=hub_data["public_key"],
                        endpoint=hub_data.get("endpoint"),
                        allowed_ips=(str(entry["prefix"]),),
                    )
                membership = Membership(
                    network_id=network_id,
                    interface=ifname,
                    overlay_address=str(entry["overlay_address"]),
                    prefix=str(entry["prefix"]),
                    hub=hub,
                )
            except (KeyError, TypeError, ValueError, WireGuardError) as exc:
                log.error("sdwan: cannot use membership %r: %s", entry, exc)
                continue
            wanted[network_id] = ifname
            overlays.append(membership.overlay_address)
            try:
                self.wireguard.bring_up(membership, private_key_file=key_file)
            except (WireGuardError, OSError, ValueError) as exc:
                log.error("sdwan: %s for network %s: %s", ifname, network_id, exc)
        for network_id, ifname in known.items():
            if network_id not in wanted:
                try:
                    self.wireguard.tear_down(ifname)
                except WireGuardError as exc:
                    log.error("sdwan: could not remove %s: %s", ifname, exc)
                    wanted.setdefault(network_id, ifname)  # keep it on the books to retry
        if wanted != known:
            self.store.update(wg_interfaces=wanted or None)
        return overlays

    def act_on_orders(self, answer: dict[str, Any], overlays: list[str]) -> None:
        self._renewal_finished = False
        for order in answer.get("runtime_orders") or []:
            if not isinstance(order, dict) or order.get("runtime") != "docker":
                continue
            action = order.get("action")
            try:
                if action == "provision":
                    self._provision(
                        str(answer.get("instance_id") or self.store.load().get("instance_id", "")), overlays
                    )
                elif action == "renew":
                    self._renew(
                        str(answer.get("instance_id") or self.store.load().get("instance_id", "")), overlays
                    )
                elif action == "decommission":
                    decommission(self.client, self.runtime, self.store, host_id=order.get("host_id"))
                else:
                    log.warning("orders: unknown docker action %r ignored", action)
            except HandshakeFailed as exc:
                log.error("orders: docker %s failed: %s", action, exc)
                self.errors.append(f"docker {action}: {exc}")
            except AgentApiError as exc:
                log.error("orders: docker %s: platform error: %s", action, exc)
                self.errors.append(f"docker {action}: {exc}")
            except Exception as exc:  # one broken order must not stop the heartbeat loop
                log.exception("orders: docker %s crashed", action)
                self.errors.append(f"docker {action}: {exc}")

    def _provision(self, instance_id: str, overlays: list[str]) -> None:
        walker = HandshakeWalker(
            self.client, self.runtime, self.store, instance_id=instance_id, overlay_addresses=overlays
        )
        data = self.store.load()
        step = step_index(data.get("docker_step"))
        if step >= step_index("ready"):
            if self.runtime.is_running():
                self.runtime.want_running = True
                return
            log.warning("orders: dockerd is not running although ready was posted; starting it again")
            walker.restart_daemon()
            return
        walker.walk()
        # A renewal that had its new certificate but not its ready (the agent stopped in between) ended here.
        self._renewal_finished = bool(data.get("docker_renewing"))

    def _renew(self, instance_id: str, overlays: list[str]) -> None:
        """The certificate reached two thirds of its life: re-key, re-enroll, restart dockerd, ready.

        The platform repeats ``renew`` until a ``ready`` confirms the new certificate; when the provision
        order of the same answer just finished an interrupted renewal, that order is already answered."""
        if self._renewal_finished:
            log.info("orders: renew already answered by the interrupted renewal finished this tick")
            return
        HandshakeWalker(
            self.client, self.runtime, self.store, instance_id=instance_id, overlay_addresses=overlays
        ).renew()

    # the loop
    def run(self, *, once: bool = False, max_ticks: int | None = None) -> None:
        """Heartbeat until stopped (Ctrl-C / SIGTERM); ``once`` makes a single heartbeat."""
        self.store.ensure()
        supervisor = None
        if not once and self.runtime.launch_mode() == "child":
            supervisor = DockerSupervisor(self.runtime)
            supervisor.start()
        ticks = 0
        try:
            while True:
                wait = self.tick()
                ticks += 1
                if once or (max_ticks is not None and ticks >= max_ticks):
                    return
                if wait > 0:
                    self.sleep(wait)
        finally:
            if supervisor is not None:
                supervisor.stop()


def status(config: AgentConfig) -> dict[str, Any]:
    """What ``powernode-agent status`` prints: local state only, never key material."""
    store = st.StateStore(config.state_dir)
    data = store.load()
    runtime = DockerRuntime(config, store)
    private = store.read(st.WG_PRIVATE_KEY)
    return {
        "state_dir": str(store.dir),
        "instance_id": data.get("instance_id"),
        "wireguard_public_key": public_key_for(private.decode()) if private else None,
        "wireguard_interfaces": data.get("wg_interfaces") or {},
        "docker": {
            "phase": data.get("docker_phase", "none"),
            "step": data.get("docker_step", "none"),
            "host_id": data.get("host_id"),
            "version": data.get("docker_version"),
            "error": data.get("docker_error"),
            "decommissioned_host_id": data.get("decommissioned_host_id"),
            "dockerd_launch": runtime.launch_mode(),
            "dockerd_running": runtime.is_running(),
        },
    }
