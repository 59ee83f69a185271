"""Peer attach → first packet through the hub (issue 12), on the product: the platform server ``make run``
starts (scripts/serve.sh), ``powernode-agent hub run`` with its defaults, real WireGuard in lab namespaces.

Each round: ``system_sdwan_create_access_grant`` for a new device on network A (the clock starts before the
call), the device brings its spoke up from the grant's wg-quick config, then connects every 20 ms to a
listener on the workstation's overlay address, another peer of A, until one connection gets through the
hub. Nothing is done on the hub: it learns the peer from the platform (a held sync, the watch). Prints the
median and the worst of the rounds; the spoke coming up is part of the figure (as for an operator).

Needs root:  sudo .venv/bin/python bench/bench_hub_attach.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.proc import LabError, wait_for, why_lab_cannot_run  # noqa: E402
from lab.tutorial import WORKSTATION, Tutorial  # noqa: E402

PORT = 9090


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="attaches (default 20)")
    args = parser.parse_args()
    reason = why_lab_cannot_run()
    if reason:
        print(f"bench_hub_attach: cannot run: {reason}", file=sys.stderr)
        return 2
    tutorial = Tutorial(f"pnb{secrets.token_hex(2)[:3]}-", out=lambda line: None)
    try:
        tutorial.build()
        lab = tutorial.lab
        network_id = tutorial.network_ids["lab-a"]
        grants = tutorial.platform.action("system_sdwan_list_access_grants", {"network_id": network_id})["grants"]
        target = next(g["overlay_address"] for g in grants if g["device_name_hint"] == "ops-laptop")
        lab.spawn(WORKSTATION, "listener", [sys.executable, "-m", "http.server", "--bind", target, str(PORT)],
                  sandbox=False)
        url = f"http://[{target}]:{PORT}/"
        wait_for(lambda: lab.curl(WORKSTATION, url, max_time=2).returncode == 0, timeout=20, what="the listener")
        lab.add_host("dev")
        seconds: list[float] = []
        for round_ in range(args.rounds):
            started = time.monotonic()
            grant = tutorial.platform.action(
                "system_sdwan_create_access_grant", {"network_id": network_id, "device_name_hint": f"dev-{round_}"}
            )["grant"]
            spoke = lab.join_with_config("dev", "A", grant["wireguard_config"])
            try:
                while lab.curl("dev", url, max_time=0.5).returncode != 0:
                    if time.monotonic() - started > 60:
                        raise LabError(f"round {round_}: no packet through the hub after 60 s")
                    time.sleep(0.02)
                seconds.append(time.monotonic() - started)
            finally:
                spoke.stop()
                lab.spokes.pop(("dev", "A"), None)
            tutorial.platform.action("system_sdwan_revoke_access_grant", {"grant_id": grant["id"]})
        print(f"peer attach → first packet through the hub, {len(seconds)} rounds "
              f"(product defaults: hub watch, platform under scripts/serve.sh):")
        print(f"  median {statistics.median(seconds):.3f} s, worst {max(seconds):.3f} s, "
              f"best {min(seconds):.3f} s")
    finally:
        left = tutorial.close()
        if left:
            print(f"bench_hub_attach: the lab left {left}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
