"""``python -m lab up|walk|down|status``: stand up the standard lab world, walk tutorial 03 end to end
with the platform and the agent (``make lab``), remove it, or show what exists.

``up`` leaves the world running (its processes outlive this command) and writes ``<lab dir>/world.json``
plus the platform's client certificate, so the Docker CLI and curl can be tried by hand.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from lab import DEFAULT_PREFIX
from lab.proc import LabError, why_lab_cannot_run, write_private
from lab.teardown import down, lab_dir, leftovers
from lab.topology import Lab
from lab.world import build_world


def cmd_up(args: argparse.Namespace) -> int:
    if any(leftovers(args.prefix).values()):
        if not args.replace:
            print(f"a lab with prefix {args.prefix} exists: `python -m lab down` first, or --replace",
                  file=sys.stderr)
            return 1
        down(args.prefix)
    started = time.monotonic()
    lab = Lab(args.prefix)
    try:
        lab.up()
        world = build_world(lab, with_node_dockerd=not args.no_node_dockerd)
    except BaseException:
        lab.close()
        raise
    certs = lab.dir / "platform-client"
    paths = {
        "ca": str(write_private(certs / "ca.pem", world.ca.ca_pem, 0o644)),
        "cert": str(write_private(certs / "cert.pem", world.platform_client.cert_pem, 0o644)),
        "key": str(write_private(certs / "key.pem", world.platform_client.key_pem, 0o600)),
    }
    summary = {
        "prefix": lab.prefix,
        "lab_dir": str(lab.dir),
        "service_address": lab.service_address,
        "namespaces": {"platform": lab.platform.name, **{r: h.ns.name for r, h in lab.hosts.items()}},
        "networks": {
            name: {"prefix": n.prefix, "hub_interface": n.ifname, "hub_public_key": n.public_key,
                   "hub_endpoint": n.endpoint, "hub_address": n.hub_address}
            for name, n in lab.hub.networks.items()
        },
        "registry": lab.registry.host if lab.registry else None,
        "image": world.image_ref,
        "node_overlay": world.node_overlay,
        "docker_endpoint": world.docker_endpoint if world.node_dockerd else None,
        "platform_client_cert": paths,
    }
    write_private(lab.dir / "world.json", json.dumps(summary, indent=2) + "\n", 0o644)
    print(json.dumps(summary, indent=2))
    print(f"\nlab up in {time.monotonic() - started:.1f} s; try from the workstation:")
    if world.node_dockerd:
        print(f"  nsenter --net=/var/run/netns/{lab.hosts['ws'].ns.name} docker --tlsverify "
              f"--tlscacert {paths['ca']} --tlscert {paths['cert']} --tlskey {paths['key']} "
              f"-H tcp://[{world.node_overlay}]:2376 ps")
    print(f"remove it with: python -m lab down --prefix {lab.prefix}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_walk(args: argparse.Namespace) -> int:
    """Tutorial 03 for real: build the world with the platform server and agent, walk every step."""
    from lab.tutorial import Tutorial

    if any(leftovers(args.prefix).values()):
        if not args.replace:
            print(f"a lab with prefix {args.prefix} exists: `make lab-down` (python -m lab down) first, "
                  "or --replace", file=sys.stderr)
            return 1
        down(args.prefix)
    # Ctrl-C and a plain `kill` both end in the cleanup below (a background job may inherit SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    tutorial = Tutorial(args.prefix, agent_from_platform=True, out=lambda line: print(line, flush=True))
    print(f"lab {args.prefix}: building the world (work directory {tutorial.lab.dir})", flush=True)
    ok = False
    try:
        tutorial.build()
        print("walking tutorial 03 through the operator API:", flush=True)
        tutorial.walk()
        ok = True
    except LabError as exc:
        print(f"\nlab walk FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    finally:
        print(tutorial.summary(), flush=True)
        if not ok or not args.keep:
            left = tutorial.close()
            print(f"lab {args.prefix}: removed" + (f"; still present: {left}" if left else ""), flush=True)
    if ok and args.keep:
        print(f"the lab is still up (platform {tutorial.platform.url}, operator token in "
              f"{tutorial.platform.var_dir / 'operator_token'}, logs in {tutorial.lab.dir / 'logs'});"
              f" remove it with: make lab-down")
    return 0 if ok else 1


def cmd_down(args: argparse.Namespace) -> int:
    left = down(args.prefix)
    if left:
        print(f"still present: {json.dumps(left, indent=2)}", file=sys.stderr)
        return 1
    print(f"lab {args.prefix}: nothing left")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    present = {k: v for k, v in leftovers(args.prefix).items() if v}
    world = lab_dir(args.prefix) / "world.json"
    print(json.dumps({"present": present, "world": json.loads(world.read_text()) if world.exists() else None},
                     indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help=f"name prefix of everything (default {DEFAULT_PREFIX})")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="stand up the standard world and leave it running")
    up.add_argument("--replace", action="store_true", help="remove an existing lab with this prefix first")
    up.add_argument("--no-node-dockerd", action="store_true", help="leave the node without dockerd (for an agent)")
    walk = sub.add_parser("walk", help="tutorial 03 end to end: platform, hub, agent, dockerd (make lab)")
    walk.add_argument("--replace", action="store_true", help="remove an existing lab with this prefix first")
    walk.add_argument("--keep", action="store_true", help="leave the lab running after a successful walk")
    sub.add_parser("down", help="remove everything with the prefix, even after a crash")
    sub.add_parser("status", help="show what exists with the prefix")
    args = parser.parse_args(argv)
    if args.command in ("up", "walk", "down"):
        reason = why_lab_cannot_run()
        if reason and (args.command != "down" or "root" in reason):
            print(f"lab: {reason}", file=sys.stderr)
            return 2
    try:
        return {"up": cmd_up, "walk": cmd_walk, "down": cmd_down, "status": cmd_status}[args.command](args)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
