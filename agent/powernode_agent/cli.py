"""``powernode-agent run [--once]``, ``status`` and ``hub ...``; logs go to stderr, one line per step."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .config import ConfigError, load_config
from .hub.cli import add_hub_parser, hub_main
from .runner import Runner, status


def _extra(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--daemon-extra wants KEY=VALUE, got {value!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw  # a bare string such as a path


def _common_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("settings (flags win over environment variables, which win over --config)")
    g.add_argument(
        "--config", dest="config_file", metavar="FILE", help="JSON file of settings [POWERNODE_AGENT_CONFIG]"
    )
    g.add_argument("--url", dest="platform_url", help="platform base URL [POWERNODE_URL]")
    g.add_argument(
        "--token",
        dest="agent_token",
        help="agent token (visible in ps: prefer the env var or --token-file) [POWERNODE_AGENT_TOKEN]",
    )
    g.add_argument(
        "--token-file",
        dest="agent_token_file",
        metavar="FILE",
        help="file holding the agent token [POWERNODE_AGENT_TOKEN_FILE]",
    )
    g.add_argument("--state-dir", dest="state_dir", help="state directory [POWERNODE_AGENT_STATE_DIR]")
    g.add_argument(
        "--ca-bundle",
        "--platform-ca",
        dest="platform_ca_file",
        metavar="FILE",
        help="CA bundle trusted for the https platform URL, instead of the system store "
        "[POWERNODE_AGENT_PLATFORM_CA; config key ca_bundle or platform_ca_file]",
    )
    g.add_argument(
        "--insecure-http",
        dest="insecure_http",
        action="store_const",
        const=True,
        help="allow a plain-http platform URL that is not loopback (a trusted lab overlay only) "
        "[POWERNODE_AGENT_INSECURE_HTTP; config key insecure_http]",
    )
    g.add_argument(
        "--heartbeat-interval",
        dest="heartbeat_interval_s",
        type=float,
        metavar="SECONDS",
        help="override the platform's heartbeat_interval_s [POWERNODE_AGENT_HEARTBEAT_INTERVAL]",
    )
    g.add_argument(
        "--wg-prefix",
        dest="wg_interface_prefix",
        help="WireGuard interface name prefix, unique per machine [POWERNODE_AGENT_WG_PREFIX]",
    )
    g.add_argument(
        "--wg-backend",
        dest="wg_backend",
        choices=("auto", "kernel", "wireguard-go"),
        help="[POWERNODE_AGENT_WG_BACKEND]",
    )
    g.add_argument(
        "--docker-install-command",
        dest="docker_install_command",
        help="run with sh -c when dockerd is missing [POWERNODE_AGENT_DOCKER_INSTALL_COMMAND]",
    )
    g.add_argument("--dockerd", dest="dockerd_binary", help="dockerd binary [POWERNODE_AGENT_DOCKERD]")
    g.add_argument(
        "--dockerd-launch",
        dest="dockerd_launch",
        choices=("auto", "systemd", "child"),
        help="[POWERNODE_AGENT_DOCKERD_LAUNCH]",
    )
    g.add_argument(
        "--dockerd-prefix",
        dest="dockerd_command_prefix",
        metavar="COMMAND",
        help="shell-quoted command put before dockerd's argv in child mode [POWERNODE_AGENT_DOCKERD_PREFIX]",
    )
    g.add_argument("--docker-tls-dir", dest="docker_tls_dir", help="[POWERNODE_AGENT_DOCKER_TLS_DIR]")
    g.add_argument("--daemon-json", dest="daemon_json_path", help="[POWERNODE_AGENT_DAEMON_JSON]")
    g.add_argument(
        "--daemon-extra",
        dest="daemon_extra",
        action="append",
        type=_extra,
        metavar="KEY=VALUE",
        help="local daemon.json key (VALUE parsed as JSON when it can be); repeatable",
    )
    g.add_argument(
        "--daemon-extras-json",
        dest="daemon_json_extras",
        metavar="JSON",
        help="local daemon.json keys as one JSON object [POWERNODE_AGENT_DAEMON_EXTRAS]",
    )
    g.add_argument(
        "--ready-timeout",
        dest="ready_timeout_s",
        type=float,
        metavar="SECONDS",
        help="how long to wait for dockerd's TLS listener [POWERNODE_AGENT_READY_TIMEOUT]",
    )
    g.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
    parser = argparse.ArgumentParser(prog="powernode-agent", description=__doc__, parents=[common])
    parser.add_argument("--version", action="version", version=f"powernode-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common], help="heartbeat loop (Ctrl-C or SIGTERM stops it)")
    run.add_argument("--once", action="store_true", help="one heartbeat, then exit (1 if anything failed)")
    sub.add_parser("status", parents=[common], help="print the local state as JSON")
    add_hub_parser(sub)
    return parser


def _on_sigterm(_signum: int, _frame: object) -> None:
    # dockerd keeps running on purpose: restarting the agent must not take containers down.
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "hub":
        return hub_main(args)
    flags = {k: v for k, v in vars(args).items() if k not in {"command", "once", "log_level", "daemon_extra"}}
    if args.daemon_extra:
        extras = json.loads(args.daemon_json_extras) if args.daemon_json_extras else {}
        extras.update(dict(args.daemon_extra))
        flags["daemon_json_extras"] = extras
    try:
        config = load_config(flags=flags, config_file=flags.pop("config_file"))
        config.validate(need_platform=args.command == "run")
    except (ConfigError, json.JSONDecodeError) as exc:
        print(f"powernode-agent: {exc}", file=sys.stderr)
        return 2
    if args.command == "status":
        print(json.dumps(status(config), indent=2))
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    runner = Runner(config)
    try:
        runner.run(once=args.once)
    except KeyboardInterrupt:
        return 0
    return 1 if (args.once and runner.errors) else 0


if __name__ == "__main__":
    sys.exit(main())
