"""The hub's settings, layered like the agent's: defaults < JSON file < environment < command-line flags."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import (
    MAX_WG_PREFIX_LEN,
    WG_BACKENDS,
    ConfigError,
    check_platform_url,
    load_settings,
    parse_bool,
)

MAX_RECONCILE_INTERVAL_S = 30.0
TOKEN_PREFIX = "pnh_"


@dataclass
class HubConfig:
    """Everything the hub needs: the platform, its token, where its keys live, how it names things."""

    platform_url: str = ""
    hub_token: str = ""
    state_dir: Path = Path("/var/lib/powernode-hub")
    interface_prefix: str = "pnh"
    allow_ports: list[int] = field(default_factory=list)  # empty: the platform URL's port
    reconcile_interval_s: float = MAX_RECONCILE_INTERVAL_S
    platform_ca_file: str | None = None
    insecure_http: bool = False
    http_timeout_s: float = 60.0  # above the 25 s the platform may hold a sync (watch)
    wg_backend: str = "auto"
    wireguard_go_binary: str = "wireguard-go"
    # argv put before every ip/wg/nft/sysctl/wireguard-go command, e.g. ["nsenter", "--net=/var/run/netns/X"]
    # (the lab, tests); a hub running in the right namespace leaves it empty.
    command_prefix: list[str] = field(default_factory=list)

    def validate(self, *, need_platform: bool = True) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        if need_platform:
            if not self.platform_url:
                raise ConfigError("no platform URL: pass --url or set POWERNODE_URL")
            if not self.hub_token:
                raise ConfigError("no hub token: set POWERNODE_HUB_TOKEN or pass --token-file")
            if not self.hub_token.startswith(TOKEN_PREFIX):
                raise ConfigError(f"the hub token must be a hub token ({TOKEN_PREFIX}...)")
            check_platform_url(self.platform_url, insecure_http=self.insecure_http)
        prefix = self.interface_prefix
        if not prefix or len(prefix) > MAX_WG_PREFIX_LEN or not all(c.isalnum() or c in "-_" for c in prefix):
            raise ConfigError(
                f"interface prefix {prefix!r} must be 1-{MAX_WG_PREFIX_LEN} letters, digits, - or _"
            )
        if self.wg_backend not in WG_BACKENDS:
            raise ConfigError(f"wireguard backend must be one of {', '.join(WG_BACKENDS)}")
        if not 0 < self.reconcile_interval_s <= MAX_RECONCILE_INTERVAL_S:
            raise ConfigError(
                f"reconcile interval must be above 0 and at most {MAX_RECONCILE_INTERVAL_S:g} s"
            )
        for port in self.allow_ports:
            if not 1 <= port <= 65535:
                raise ConfigError(f"allowed port {port} is not 1-65535")

    def ports(self) -> list[int]:
        """The TCP ports overlay peers may reach on the hub's own address: --allow-port, else the URL's."""
        if self.allow_ports:
            return sorted(set(self.allow_ports))
        if not self.platform_url:
            return []
        parts = urllib.parse.urlsplit(self.platform_url)
        try:
            port = parts.port
        except ValueError:
            return []
        return [port or (443 if parts.scheme == "https" else 80)]


ENV_VARS: dict[str, str] = {
    "platform_url": "POWERNODE_URL",
    "hub_token": "POWERNODE_HUB_TOKEN",
    "hub_token_file": "POWERNODE_HUB_TOKEN_FILE",
    "state_dir": "POWERNODE_HUB_STATE_DIR",
    "interface_prefix": "POWERNODE_HUB_INTERFACE_PREFIX",
    "allow_ports": "POWERNODE_HUB_ALLOW_PORTS",
    "reconcile_interval_s": "POWERNODE_HUB_RECONCILE_INTERVAL",
    "platform_ca_file": "POWERNODE_HUB_CA_BUNDLE",
    "insecure_http": "POWERNODE_HUB_INSECURE_HTTP",
    "wg_backend": "POWERNODE_HUB_WG_BACKEND",
    "wireguard_go_binary": "POWERNODE_HUB_WIREGUARD_GO",
}


def _coerce(name: str, value: Any) -> Any:
    if name == "state_dir":
        return Path(value)
    if name == "insecure_http":
        return parse_bool(name, value)
    if name in {"reconcile_interval_s", "http_timeout_s"}:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if name == "allow_ports":
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ConfigError("allow_ports must be a list of port numbers")
        try:
            return [int(v) for v in items]
        except (TypeError, ValueError):
            raise ConfigError(f"allow_ports must be port numbers, got {value!r}") from None
    if name == "command_prefix":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("command_prefix must be a list of strings")
        return list(value)
    return value


def load_hub_config(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> HubConfig:
    """Build a HubConfig: flags win over the environment, which wins over the JSON file."""
    return load_settings(
        HubConfig,
        env_vars=ENV_VARS,
        config_env_var="POWERNODE_HUB_CONFIG",
        token_field="hub_token",
        coerce=_coerce,
        flags=flags,
        env=env,
        config_file=config_file,
    )
