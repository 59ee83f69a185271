"""A platform restart with 2,000 watching agents: the peak request rate during their return, as a multiple
of the steady rate (issue 13, goal ≤ 2×).

This is a **model**, not a server measurement: it replays the agent's own retry policy
(``powernode_agent.runner.backoff_s``, with the arguments the runner passes) over simulated time. In steady
state each agent holds one watch of ``wait_s`` seconds and calls again when it ends, so requests arrive at
N / wait_s per second. At t = 0 the platform goes down for ``--down`` seconds: every held watch breaks at
once; each agent retries after its backoff, fails again while the platform is down, and so on. Prints the
peak of 1-second buckets after the restart over the steady rate, for the shipped policy (a broken watch is
retried within the watch's length) and for plain exponential backoff from 1 s (the policy before).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from powernode_agent.runner import backoff_s  # noqa: E402


def peak_ratio(*, agents: int, wait_s: float, interval_s: float, down_s: float, floor: bool, seed: int) -> float:
    rng = random.Random(seed)
    buckets: Counter[int] = Counter()
    for _ in range(agents):
        t, failures = 0.0, 0
        while True:
            failures += 1
            t += backoff_s(failures, cap_s=interval_s, floor_s=wait_s if floor else 0.0, rand=rng.uniform)
            buckets[int(t)] += 1
            if t >= down_s:
                break
    steady = agents / wait_s
    return max(buckets.values()) / steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--wait-s", type=float, default=50, help="the agent's watch length (default 50)")
    parser.add_argument("--interval-s", type=float, default=60, help="heartbeat interval (default 60)")
    parser.add_argument("--down", type=float, default=3, help="seconds the platform is down (default 3)")
    args = parser.parse_args()
    print(f"platform restart, {args.agents} watching agents (wait_s {args.wait_s:g}, interval {args.interval_s:g} s, "
          f"down {args.down:g} s); model of the agent's retry policy, steady rate {args.agents / args.wait_s:.0f}/s")
    for label, floor in (("shipped: broken watch retried within wait_s", True),
                         ("before: exponential from 1 s", False)):
        ratios = [peak_ratio(agents=args.agents, wait_s=args.wait_s, interval_s=args.interval_s,
                             down_s=args.down, floor=floor, seed=seed) for seed in range(5)]
        print(f"  {label:45s} peak/steady {max(ratios):5.2f}× (worst of 5 seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
