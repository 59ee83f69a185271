"""``powernode-agent hub run|once|status|down|apply``: argument parsing and exit codes."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from ..config import ConfigError
from ..platform_api import AgentApiError
from .config import load_hub_config
from .desired import DesiredError
from .runner import Hub, HubRunner, HubStopping, apply, dump_json, format_status


def _hub_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("hub settings (flags win over environment variables, which win over --config)")
    g.add_argument(
        "--config", dest="config_file", metavar="FILE", help="JSON file of settings [POWERNODE_HUB_CONFIG]"
    )
    g.add_argument("--url", dest="platform_url", help="platform base URL [POWERNODE_URL]")
    g.add_argument(
        "--token",
        dest="hub_token",
        help="hub token pnh_... (shows in ps: prefer the env var or --token-file) [POWERNODE_HUB_TOKEN]",
    )
    g.add_argument(
        "--token-file",
        dest="hub_token_file",
        metavar="FILE",
        help="file holding the hub token [POWERNODE_HUB_TOKEN_FILE]",
    )
    g.add_argument(
        "--state-dir",
        dest="state_dir",
        help="keys and state.json (default /var/lib/powernode-hub) [POWERNODE_HUB_STATE_DIR]",
    )
    g.add_argument(
        "--interface-prefix",
        dest="interface_prefix",
        help="interface name prefix, unique per machine (default pnh) [POWERNODE_HUB_INTERFACE_PREFIX]",
    )
    g.add_argument(
        "--allow-port",
        dest="allow_ports",
        action="append",
        type=int,
        metavar="PORT",
        help="TCP port overlay peers may reach on the hub's address (repeatable; default: the platform URL's "
        "port) [POWERNODE_HUB_ALLOW_PORTS, comma-separated]",
    )
    g.add_argument(
        "--reconcile-interval",
        dest="reconcile_interval_s",
        type=float,
        metavar="SECONDS",
        help="repair drift at least this often (default and max 30) [POWERNODE_HUB_RECONCILE_INTERVAL]",
    )
    g.add_argument(
        "--ca-bundle",
        dest="platform_ca_file",
        metavar="FILE",
        help="CA bundle trusted for the https URL [POWERNODE_HUB_CA_BUNDLE]",
    )
    g.add_argument(
        "--insecure-http",
        dest="insecure_http",
        action="store_const",
        const=True,
        help="allow a plain-http URL that is not loopback (a trusted lab overlay only) "
        "[POWERNODE_HUB_INSECURE_HTTP]",
    )
    g.add_argument(
        "--wg-backend",
        dest="wg_backend",
        choices=("auto", "kernel", "wireguard-go"),
        help="[POWERNODE_HUB_WG_BACKEND]",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def add_hub_parser(sub: Any) -> None:
    """``hub`` and its subcommands; the hub's settings are its own, not the node agent's."""
    flags = _hub_flags()
    hub = sub.add_parser("hub", help="the SDWAN hub (run as root on the hub host)", description=__doc__)
    hsub = hub.add_subparsers(dest="hub_command", required=True)
    hsub.add_parser("run", parents=[flags], help="sync loop; SIGTERM/Ctrl-C stop it, tunnels stay up")
    hsub.add_parser("once", parents=[flags], help="one sync and apply; exit 1 with the reason on failure")
    st = hsub.add_parser("status", parents=[flags], help="what is applied right now")
    st.add_argument("--json", action="store_true", help="JSON instead of text")
    hsub.add_parser("down", parents=[flags], help="remove the hub's interfaces and nft table (keys stay)")
    ap = hsub.add_parser(
        "apply", parents=[flags], help="apply a desired-state JSON file (a sync answer's shape), no platform"
    )
    ap.add_argument("--file", required=True, metavar="FILE", help="desired state JSON ('-': stdin)")


FLAG_NAMES = (
    "platform_url",
    "hub_token",
    "hub_token_file",
    "state_dir",
    "interface_prefix",
    "allow_ports",
    "reconcile_interval_s",
    "platform_ca_file",
    "insecure_http",
    "wg_backend",
)


def hub_main(args: argparse.Namespace) -> int:
    command = args.hub_command
    flags = {name: getattr(args, name, None) for name in FLAG_NAMES}
    try:
        config = load_hub_config(flags=flags, config_file=getattr(args, "config_file", None))
        config.validate(need_platform=command in ("run", "once"))
    except ConfigError as exc:
        print(f"powernode-agent hub: {exc}", file=sys.stderr)
        return 2
    if command == "status":
        data = Hub(config).local_status()
        print(dump_json(data) if args.json else format_status(data))
        return 0
    if command == "down":
        left = Hub(config).down()
        if left:
            print(f"powernode-agent hub down: still present: {', '.join(left)}", file=sys.stderr)
            return 1
        return 0
    if command == "apply":
        try:
            text = sys.stdin.read() if args.file == "-" else open(args.file).read()
            result = apply(json.loads(text), config)
        except (OSError, json.JSONDecodeError, DesiredError) as exc:
            print(f"powernode-agent hub apply: {args.file}: {exc}", file=sys.stderr)
            return 1
        print(dump_json(result.as_dict()))
        if not result.ok:
            print(f"powernode-agent hub apply: {'; '.join(result.errors)}", file=sys.stderr)
        return 0 if result.ok else 1
    stop = threading.Event()
    runner = HubRunner(config, stop=stop)
    if command == "once":
        try:
            result = runner.once()
        except (AgentApiError, DesiredError) as exc:
            print(f"powernode-agent hub once: sync failed: {exc}", file=sys.stderr)
            return 1
        if not result.ok:
            print(f"powernode-agent hub once: {'; '.join(result.errors)}", file=sys.stderr)
            return 1
        return 0

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()  # the loop wakes from its wait and returns; interfaces stay up
        if runner.syncing:
            raise HubStopping  # out of a held sync at once (nothing is written while waiting on the platform)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner.run()
    except HubStopping:
        pass
    return 0
