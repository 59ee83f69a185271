"""The hub's reconcile on a real wireguard-go interface and nftables, in a fresh network namespace.

Figures (seconds, no assertions): one network of N peers (default 1,000) applied from scratch (key,
wireguard-go interface, address, wg syncconf, nft table), then one peer added, then a reconcile with
nothing to change (dump + nft check only). Root only; everything it makes is removed at the end.

Run: ``sudo .venv/bin/python bench/bench_hub.py [--peers 1000] [--runs 5]``
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "agent"))

from powernode_agent.hub import HubConfig  # noqa: E402
from powernode_agent.hub.runner import Hub  # noqa: E402
from powernode_agent.wireguard import generate_private_key, public_key_for  # noqa: E402

PREFIX = ipaddress.IPv6Network("fd00:b3c4:1::/64")


def peers(count: int, start: int = 0) -> list[dict]:
    return [
        {"public_key": public_key_for(generate_private_key()), "allowed_ips": [f"{PREFIX[i + 2]}/128"]}
        for i in range(start, start + count)
    ]


def desired(version: str, peer_list: list[dict]) -> dict:
    return {
        "desired_version": version,
        "networks": [
            {
                "network_id": "bench",
                "name": "bench",
                "prefix": str(PREFIX),
                "hub_address": str(PREFIX[1]),
                "listen_port": 51820,
                "peers": peer_list,
            }
        ],
    }


def timed(hub: Hub, answer: dict) -> tuple[float, list[str]]:
    parsed = hub.parse(answer)
    start = time.perf_counter()
    result = hub.reconcile(parsed)
    elapsed = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"reconcile failed: {result.errors}")
    return elapsed, result.repairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="repetitions of the add-one and no-change figures")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_hub: needs root (network namespaces)", file=sys.stderr)
        return 2
    missing = [t for t in ("ip", "nsenter", "wg", "wireguard-go", "nft", "sysctl") if not shutil.which(t)]
    if missing:
        print(f"bench_hub: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2

    tag = secrets.token_hex(2)
    ns = f"pnhub-bench-{tag}"
    workdir = Path(tempfile.mkdtemp(prefix="pnhub-bench-"))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    config = HubConfig(
        state_dir=workdir / "state",
        interface_prefix=f"pnb{tag}",
        allow_ports=[8000],
        command_prefix=["nsenter", f"--net=/var/run/netns/{ns}"],
    )
    hub = Hub(config)
    try:
        base = peers(args.peers)
        scratch, _ = timed(hub, desired("v0", base))
        adds, noops = [], []
        current = list(base)
        for run in range(args.runs):
            current = current + peers(1, start=len(current))
            elapsed, repairs = timed(hub, desired(f"v{run + 1}", current))
            assert any("peers converged" in r for r in repairs), repairs
            adds.append(elapsed)
            elapsed, repairs = timed(hub, desired(f"v{run + 1}", current))
            assert repairs == [], repairs
            noops.append(elapsed)
        live = hub.wg.dump(hub.parse(desired("x", current)).networks[0].ifname)
        print(f"hub reconcile, one network, wireguard-go + nftables in a fresh namespace ({len(live.peers)} peers)")
        rows = [
            (f"apply {args.peers} peers from scratch", scratch),
            (f"add one peer (median of {args.runs})", statistics.median(adds)),
            (f"no-change reconcile (median of {args.runs})", statistics.median(noops)),
        ]
        for label, seconds in rows:
            print(f"  {label + ':':<40} {seconds:8.3f} s")
    finally:
        left = hub.down()
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        if left:
            print(f"bench_hub: cleanup left {left}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
