"""The hub's reconcile (callable with a desired-state dict, no platform), sync loop, status, down."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..platform_api import AgentApiError, PlatformClient
from ..state import StateStore
from ..wireguard import WireGuardError, public_key_for
from .config import HubConfig
from .desired import Desired, DesiredError, is_hub_interface, parse_desired
from .nft import FirewallNetwork, NftError, NftTable, render_ruleset, text_hash
from .wg import HubWireGuard, KeyStore, matches, parse_endpoint, remembered_endpoints, wait_for_exit

log = logging.getLogger("powernode_agent.hub")

SYNC_PATH = "/api/v1/hub/sync"
WATCH_WAIT_S = 25
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
MAX_REPORTED_PEERS = 65536
FORWARDING_SYSCTL = "net.ipv6.conf.all.forwarding"
ENDPOINTS_FILE = "endpoints.json"  # network id -> peer public key -> the endpoint last seen (no secrets)


def backoff_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE_S,
    cap: float = BACKOFF_CAP_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rand() * min(cap, base * 2 ** min(attempt, 32))


@dataclass
class ReconcileResult:
    desired_version: str | None
    new_keys: bool = False
    errors: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    networks: list[dict[str, Any]] = field(default_factory=list)  # what the lab needs: ifname, public key...

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "desired_version": self.desired_version,
            "new_keys": self.new_keys,
            "repairs": self.repairs,
            "errors": self.errors,
            "networks": self.networks,
        }


class Hub:
    """Owns this host's hub interfaces, keys and nft table; every method is safe to call again."""

    def __init__(self, config: HubConfig, *, wireguard: HubWireGuard | None = None) -> None:
        self.config = config
        self.store = StateStore(config.state_dir)
        self.keys = KeyStore(config.state_dir)
        self.wg = wireguard or HubWireGuard(
            backend=config.wg_backend,
            wireguard_go=config.wireguard_go_binary,
            command_prefix=config.command_prefix,
        )
        self.nft = NftTable(self.wg._cmd, self.store.dir)
        self._endpoints: dict[str, dict[str, str]] | None = None  # endpoints.json as last written or read

    def parse(self, answer: Any) -> Desired:
        return parse_desired(answer, interface_prefix=self.config.interface_prefix)

    # reconcile
    def reconcile(self, desired: Desired) -> ReconcileResult:
        """Make the host match ``desired``; repairs drift. Per-network failures are reported, not raised."""
        self.store.ensure()
        result = ReconcileResult(desired.desired_version)
        state = self.store.load()
        known: dict[str, dict[str, Any]] = dict(state.get("networks") or {})
        kept: dict[str, dict[str, Any]] = {}
        endpoints_before = self._endpoints if self._endpoints is not None else self._load_endpoints()
        endpoints: dict[str, dict[str, str]] = {}

        for network_id, reason in desired.skipped.items():
            result.errors.append(f"network {network_id} skipped: {reason}")
            log.error("desired: network %s skipped (left as it was): %s", network_id, reason)
            if network_id in known:
                kept[network_id] = known[network_id]
            if network_id in endpoints_before:
                endpoints[network_id] = endpoints_before[network_id]

        for net in desired.networks:
            kept[net.network_id] = net.as_dict()
            # kept as they were if this network fails below: the next reconcile restores its peers with them
            endpoints[net.network_id] = endpoints_before.get(net.network_id, {})
            try:
                private, made = self.keys.ensure(net.network_id)
                result.new_keys |= made
                public = public_key_for(private)
                repairs = self.wg.ensure_link(net)
                device = self.wg.dump(net.ifname)
                seen = remembered_endpoints(endpoints[net.network_id], device, net)
                endpoints[net.network_id] = seen
                if not matches(device, net, public):
                    live = {peer.public_key for peer in device.peers}
                    restore = {key: endpoint for key, endpoint in seen.items() if key not in live}
                    self.wg.syncconf(net, private, self.store.dir, restore)
                    repairs.append(
                        f"peers converged ({len(net.peers)} wanted, {len(device.peers)} found"
                        + (f", {len(restore)} re-added at their last endpoint)" if restore else ")")
                    )
            except (WireGuardError, OSError, ValueError) as exc:
                result.errors.append(f"network {net.network_id} ({net.ifname}): {exc}")
                log.error("wireguard: %s for network %s: %s", net.ifname, net.network_id, exc)
                continue
            for repair in repairs:
                log.info("wireguard: %s %s", net.ifname, repair)
            result.repairs += [f"{net.ifname}: {r}" for r in repairs]
            result.networks.append({**net.as_dict(), "public_key": public, "peers": len(net.peers)})

        for network_id, spec in known.items():
            if network_id in kept:
                continue
            try:
                if self.wg.tear_down(spec["ifname"]):
                    wait_for_exit(spec["ifname"])
                    result.repairs.append(f"{spec['ifname']}: removed (network {network_id} not desired)")
            except WireGuardError as exc:
                result.errors.append(f"removing {spec['ifname']}: {exc}")
                log.error("wireguard: could not remove %s: %s", spec["ifname"], exc)
                kept[network_id] = spec  # on the books until it is gone

        nft_state = self._reconcile_nft(kept, state.get("nft") or {}, result)
        self._reconcile_forwarding(result)
        if endpoints != endpoints_before:
            self._save_endpoints(endpoints)
        else:
            self._endpoints = endpoints

        changes: dict[str, Any] = {"networks": kept or None, "nft": nft_state or None}
        if desired.desired_version is not None:
            changes["desired_version"] = desired.desired_version
            if result.ok:
                changes["applied_version"] = desired.desired_version
        changes["last_reconcile"] = {"at": int(time.time()), "ok": result.ok, "errors": result.errors[:20]}
        self.store.update(**changes)
        log.log(
            logging.INFO if (result.repairs or result.errors) else logging.DEBUG,
            "reconcile: %d networks, %d repairs, %d errors",
            len(desired.networks),
            len(result.repairs),
            len(result.errors),
        )
        return result

    def _load_endpoints(self) -> dict[str, dict[str, str]]:
        """The endpoints last seen per network and peer (``endpoints.json``); a broken file reads as none."""
        try:
            data = self.store.load_document(ENDPOINTS_FILE)
        except OSError as exc:  # unreadable (a directory, an I/O error): only a faster recovery is lost
            log.warning("state: cannot read %s: %s", ENDPOINTS_FILE, exc)
            return {}
        loaded: dict[str, dict[str, str]] = {}
        for network_id, peers in data.items():
            if isinstance(peers, dict):
                loaded[str(network_id)] = {
                    str(key): endpoint
                    for key, value in peers.items()
                    if (endpoint := parse_endpoint(value)) is not None
                }
        return loaded

    def _save_endpoints(self, endpoints: dict[str, dict[str, str]]) -> None:
        try:
            self.store.write(ENDPOINTS_FILE, json.dumps(endpoints, sort_keys=True, separators=(",", ":")))
        except OSError as exc:  # only a faster recovery is lost: never a reason to fail the reconcile
            log.warning("state: cannot write %s: %s", ENDPOINTS_FILE, exc)
            self._endpoints = None  # the next reconcile reads the file again, finds the difference, retries
            return
        self._endpoints = endpoints

    def _ruleset(self, networks: dict[str, dict[str, Any]]) -> str:
        fw = [FirewallNetwork(spec["ifname"], spec["hub_address"]) for spec in networks.values()]
        return render_ruleset(fw, self.config.ports())

    def _reconcile_nft(
        self, networks: dict[str, dict[str, Any]], applied: dict[str, Any], result: ReconcileResult
    ) -> dict[str, Any]:
        ruleset = self._ruleset(networks)
        want = text_hash(ruleset)
        live = self.nft.live_fingerprint()
        if applied.get("text") == want and live is not None and live == applied.get("live"):
            return applied
        reason = (
            "missing"
            if live is None
            else "changed by hand"
            if applied.get("text") == want
            else "desired state changed"
        )
        try:
            fingerprint = self.nft.apply(ruleset)
        except NftError as exc:
            result.errors.append(f"nft: {exc}")
            log.error("nft: %s", exc)
            return {}
        log.info("nft: table inet powernode_hub applied (%s, %d interfaces)", reason, len(networks))
        result.repairs.append(f"nft: applied ({reason})")
        return {"text": want, "live": fingerprint}

    def _reconcile_forwarding(self, result: ReconcileResult) -> None:
        current = self.wg._cmd("sysctl", "-n", FORWARDING_SYSCTL, check=False).stdout.strip()
        if current == "1":
            return
        done = self.wg._cmd("sysctl", "-w", f"{FORWARDING_SYSCTL}=1", check=False)
        if done.returncode != 0:
            result.errors.append(f"sysctl {FORWARDING_SYSCTL}=1: {done.stderr.strip()}")
            log.error("sysctl: cannot set %s=1: %s", FORWARDING_SYSCTL, done.stderr.strip())
            return
        log.info("sysctl: %s=1", FORWARDING_SYSCTL)
        result.repairs.append(f"sysctl {FORWARDING_SYSCTL}=1")

    # what goes to the platform
    def status_report(self) -> dict[str, Any]:
        """The sync's ``status``: per network the hub's public key and its peers' handshakes and counters."""
        state = self.store.load()
        networks = []
        budget = MAX_REPORTED_PEERS
        for network_id, spec in sorted((state.get("networks") or {}).items()):
            public = self.keys.public_key(network_id)
            if public is None:
                continue
            peers = []
            try:
                if self.wg.exists(spec["ifname"]):
                    for peer in self.wg.dump(spec["ifname"]).peers[:budget]:
                        peers.append(
                            {
                                "public_key": peer.public_key,
                                "latest_handshake": peer.latest_handshake,
                                "rx_bytes": peer.rx_bytes,
                                "tx_bytes": peer.tx_bytes,
                            }
                        )
            except (WireGuardError, ValueError) as exc:
                log.warning("status: cannot read %s: %s", spec["ifname"], exc)
            budget -= len(peers)
            networks.append({"network_id": network_id, "public_key": public, "peers": peers})
        report: dict[str, Any] = {"networks": networks}
        if state.get("applied_version"):
            report["applied_version"] = state["applied_version"]
        return report

    # local inspection and teardown
    def local_status(self) -> dict[str, Any]:
        """What is applied right now (``hub status``): never key material but public keys."""
        state = self.store.load()
        now = int(time.time())
        networks = []
        for network_id, spec in sorted((state.get("networks") or {}).items()):
            link = self.wg.link(spec["ifname"])
            entry: dict[str, Any] = {
                "network_id": network_id,
                "name": spec.get("name", ""),
                "ifname": spec["ifname"],
                "present": link.exists,
                "up": link.up,
                "addresses": sorted(link.addresses),
                "public_key": self.keys.public_key(network_id),
                "listen_port": None,
                "peer_count": 0,
                "peers": [],
            }
            if link.exists:
                try:
                    device = self.wg.dump(spec["ifname"])
                    entry["listen_port"] = device.listen_port
                    entry["peer_count"] = len(device.peers)
                    entry["peers"] = [
                        {
                            "public_key": p.public_key,
                            "allowed_ips": list(p.allowed_ips),
                            "handshake_age_s": now - p.latest_handshake if p.latest_handshake else None,
                        }
                        for p in device.peers
                    ]
                except (WireGuardError, ValueError) as exc:
                    entry["error"] = str(exc)
            networks.append(entry)
        applied_nft = state.get("nft") or {}
        live = self.nft.live_fingerprint()
        return {
            "state_dir": str(self.store.dir),
            "desired_version": state.get("desired_version"),
            "applied_version": state.get("applied_version"),
            "last_sync": state.get("last_sync"),
            "last_reconcile": state.get("last_reconcile"),
            "nft": {
                "present": live is not None,
                "matches": live is not None and live == applied_nft.get("live"),
            },
            "networks": networks,
        }

    def down(self) -> list[str]:
        """Remove every interface this hub made and its nft table; keep the keys. Returns what is left."""
        state = self.store.load()
        prefix = self.config.interface_prefix
        names = {spec["ifname"] for spec in (state.get("networks") or {}).values()}
        for name, kind in self.wg.list_links():
            if is_hub_interface(prefix, name) and (
                kind == "wireguard" or Path(f"/var/run/wireguard/{name}.sock").exists()
            ):
                names.add(name)
        left = []
        for name in sorted(names):
            try:
                if self.wg.tear_down(name):
                    log.info("down: removed %s", name)
            except WireGuardError as exc:
                log.error("down: %s", exc)
            killed = wait_for_exit(name)
            if killed:
                log.warning("down: wireguard-go for %s lingered; killed %s", name, killed)
            if self.wg.exists(name):
                left.append(name)
        if self.nft.delete():
            log.info("down: removed table inet powernode_hub")
        if self.nft.exists():
            left.append("table inet powernode_hub")
        if self.store.dir.is_dir():
            self.store.update(networks=None, nft=None, applied_version=None)
        return left


def apply(desired: dict[str, Any], config: HubConfig) -> ReconcileResult:
    """Reconcile this host to ``desired`` (shaped like a sync answer) without a platform: the lab's entry.

    Raises DesiredError when the document as a whole is unusable; per-network problems are in
    ``result.errors``. ``result.networks`` names each applied network's interface and hub public key.
    """
    hub = Hub(config)
    return hub.reconcile(hub.parse(desired))


def status(config: HubConfig) -> dict[str, Any]:
    return Hub(config).local_status()


def down(config: HubConfig) -> list[str]:
    return Hub(config).down()


class HubStopping(BaseException):
    """Raised by the signal handler while a sync waits on the platform (the watch holds it up to 25 s): the
    hub stops at once instead of after the hold. A BaseException, so no ``except Exception`` swallows it."""


class HubRunner:
    """The sync loop: sync -> reconcile -> sleep, backoff on errors; ``once`` for a single round."""

    def __init__(
        self,
        config: HubConfig,
        *,
        hub: Hub | None = None,
        client: PlatformClient | None = None,
        stop: threading.Event | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.hub = hub or Hub(config)
        self.client = client or PlatformClient.for_settings(config, config.hub_token)
        self.stop = stop or threading.Event()
        self.rand = rand
        self.desired: Desired | None = None
        self.syncing = False  # a sync is waiting on the platform (SIGTERM may interrupt it: HubStopping)
        self.reconciled_version: str | None = None
        self.last_reconcile = 0.0

    def sync(self, *, wait_s: int) -> Desired:
        body: dict[str, Any] = {
            "hub_version": __version__,
            "wait_s": wait_s,
            "status": self.hub.status_report(),
        }
        if self.desired is not None and self.desired.desired_version:
            body["desired_version"] = self.desired.desired_version
        try:
            self.syncing = True
            try:
                answer = self.client.post(SYNC_PATH, body)
            finally:
                self.syncing = False
            desired = self.hub.parse(answer)
        except (AgentApiError, DesiredError) as exc:
            self._record_sync(False, str(exc))
            raise
        self._record_sync(True, None)
        if self.desired is None or desired.desired_version != self.desired.desired_version:
            log.info(
                "sync: desired_version %s, %d networks (%d skipped), poll %gs",
                desired.desired_version,
                len(desired.networks),
                len(desired.skipped),
                desired.poll_interval_s,
            )
        self.desired = desired
        return desired

    def _record_sync(self, ok: bool, error: str | None) -> None:
        self.hub.store.ensure()
        self.hub.store.update(last_sync={"at": int(time.time()), "ok": ok, "error": error})

    def reconcile(self) -> ReconcileResult:
        assert self.desired is not None
        try:
            result = self.hub.reconcile(self.desired)
        except Exception as exc:  # a tool missing, an odd answer from one: the loop must go on
            log.exception("reconcile crashed")
            result = ReconcileResult(self.desired.desired_version, errors=[f"reconcile crashed: {exc}"])
        self.last_reconcile = time.monotonic()
        self.reconciled_version = self.desired.desired_version if result.ok else None
        return result

    def once(self) -> ReconcileResult:
        """One sync and its reconcile; a key made just now is reported to the platform at once."""
        self.sync(wait_s=0)
        result = self.reconcile()
        if result.new_keys:
            previous = self.desired.desired_version if self.desired else None
            self.sync(wait_s=0)
            if self.desired is not None and self.desired.desired_version != previous:
                result = self.reconcile()
        return result

    def watch_wait_s(self) -> int:
        """How long the platform may hold the next sync: until the next reconcile is due, at most 25 s."""
        until_due = self.last_reconcile + self.config.reconcile_interval_s - time.monotonic()
        return max(0, min(WATCH_WAIT_S, int(until_due)))

    def _due(self) -> bool:
        return time.monotonic() - self.last_reconcile >= self.config.reconcile_interval_s

    def run(self, *, max_rounds: int | None = None) -> None:
        """Until ``stop`` is set (SIGTERM/SIGINT): interfaces are left up when it returns."""
        attempt = 0
        rounds = 0
        while not self.stop.is_set():
            rounds += 1
            if max_rounds is not None and rounds > max_rounds:
                return
            previous = self.desired.desired_version if self.desired is not None else None
            wait_s = self.watch_wait_s()
            started = time.monotonic()
            try:
                desired = self.sync(wait_s=wait_s)
            except (AgentApiError, DesiredError) as exc:
                delay = backoff_delay(attempt, rand=self.rand)
                attempt += 1
                log.error("sync failed (%s); retrying in %.1fs", exc, delay)
                if self.desired is not None and self._due():
                    self.reconcile()  # keep repairing drift with the last desired state
                self.stop.wait(delay)
                continue
            # A platform that holds the sync (the watch) answered at a change or at wait_s: sync again now.
            # One that answers at once with the same version does not hold: poll every poll_interval_s.
            held = wait_s > 0 and time.monotonic() - started >= 0.8 * wait_s
            changed = desired.desired_version != previous
            delay = 0.0 if (held or changed) else desired.poll_interval_s
            if desired.desired_version != self.reconciled_version or self._due():
                result = self.reconcile()
                if result.new_keys:
                    continue  # tell the platform the new key(s) straight away
                if not result.ok:
                    delay = max(delay, backoff_delay(attempt, rand=self.rand))
                    attempt += 1
                else:
                    attempt = 0
            else:
                attempt = 0
            self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        """Sleep until the next sync, reconciling on schedule meanwhile (long poll intervals)."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            until_reconcile = self.last_reconcile + self.config.reconcile_interval_s - now
            if until_reconcile <= 0:
                self.reconcile()
                continue
            self.stop.wait(min(deadline - now, until_reconcile))


def format_status(data: dict[str, Any]) -> str:
    """``hub status`` for people."""
    lines = [
        f"state dir: {data['state_dir']}",
        f"desired version: {data.get('desired_version') or '-'}",
        f"applied version: {data.get('applied_version') or '-'}",
    ]
    sync = data.get("last_sync")
    if sync:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sync["at"]))
        lines.append(f"last sync: {when} {'ok' if sync['ok'] else 'FAILED: ' + str(sync.get('error'))}")
    else:
        lines.append("last sync: never")
    nft = data["nft"]
    table = (
        "missing" if not nft["present"] else "matches" if nft["matches"] else "DIFFERS from the applied one"
    )
    lines.append(f"nft table inet powernode_hub: {table}")
    if not data["networks"]:
        lines.append("no networks")
    for net in data["networks"]:
        state = "up" if net["up"] else "DOWN" if net["present"] else "MISSING"
        lines.append(
            f"{net['ifname']} ({net.get('name') or net['network_id']}): {state}, "
            f"{', '.join(net['addresses']) or 'no address'}, port {net['listen_port'] or '-'}, "
            f"{net['peer_count']} peers, key {net['public_key'] or '-'}"
        )
        for peer in net["peers"]:
            age = peer["handshake_age_s"]
            lines.append(f"  {peer['public_key']}  handshake {'never' if age is None else f'{age}s ago'}")
    return "\n".join(lines)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
