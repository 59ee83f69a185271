"""The agent's settings, layered: defaults < JSON file < environment < command-line flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shlex
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

WG_BACKENDS = ("auto", "kernel", "wireguard-go")
DOCKERD_LAUNCH_MODES = ("auto", "systemd", "child")
# Linux IFNAMSIZ is 16 including the NUL; the agent appends at least 6 hex digits of the network id.
MAX_WG_PREFIX_LEN = 9

# daemon.json keys that come from the platform and that local extras must never override.
PROTECTED_DAEMON_KEYS = frozenset({"hosts", "ip", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey"})


class ConfigError(Exception):
    """The agent's configuration is incomplete or contradictory."""


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_platform_url(url: str, *, insecure_http: bool = False) -> None:
    """Refuse a plain-http platform URL unless it is loopback or ``insecure_http`` says so.

    Over plain http anyone on the path reads the agent token and can swap the chain ``wants_cert``
    returns (which becomes dockerd's client CA).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise ConfigError(f"platform URL {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"platform URL {url!r} must be https://HOST[:PORT] (or http:// on loopback)")
    if parts.scheme == "http" and not insecure_http and not is_loopback_host(host):
        raise ConfigError(
            f"refusing the plain-http platform URL {url}: anyone on the path could read the agent token and "
            "swap the certificates the platform sends. Use https:// (with --ca-bundle for a private CA), "
            "or pass --insecure-http (POWERNODE_AGENT_INSECURE_HTTP=1, config key insecure_http) only on a "
            "network you trust, such as a lab overlay"
        )


@dataclass
class AgentConfig:
    """Everything the agent needs to know about the platform and the node it runs on."""

    platform_url: str = ""
    agent_token: str = ""
    state_dir: Path = Path("/var/lib/powernode-agent")
    platform_ca_file: str | None = None  # CA bundle for https (instead of the system store): --ca-bundle
    insecure_http: bool = False  # allow a plain-http platform URL that is not loopback
    http_timeout_s: float = 30.0
    heartbeat_interval_s: float | None = None  # overrides the platform's answer (tests, the lab)
    watch_wait_s: int = 50  # how long the platform may hold a heartbeat (watch); 0 polls at the interval
    wg_interface_prefix: str = "pnwg"
    wg_backend: str = "auto"
    wireguard_go_binary: str = "wireguard-go"
    docker_install_command: str = "apt-get install -y docker.io"
    dockerd_binary: str = "dockerd"
    dockerd_launch: str = "auto"
    dockerd_command_prefix: list[str] = field(default_factory=list)
    docker_tls_dir: Path = Path("/etc/docker/powernode")
    daemon_json_path: Path = Path("/etc/docker/daemon.json")
    daemon_json_extras: dict[str, Any] = field(default_factory=dict)
    systemd_dropin_path: Path = Path("/etc/systemd/system/docker.service.d/powernode.conf")
    ready_timeout_s: float = 60.0

    def validate(self, *, need_platform: bool = True) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        if need_platform and not self.platform_url:
            raise ConfigError("no platform URL: pass --url or set POWERNODE_URL")
        if need_platform and not self.agent_token:
            raise ConfigError("no agent token: set POWERNODE_AGENT_TOKEN or pass --token-file")
        if need_platform:
            check_platform_url(self.platform_url, insecure_http=self.insecure_http)
        if self.wg_backend not in WG_BACKENDS:
            raise ConfigError(f"wireguard backend must be one of {', '.join(WG_BACKENDS)}")
        if self.dockerd_launch not in DOCKERD_LAUNCH_MODES:
            raise ConfigError(f"dockerd launch mode must be one of {', '.join(DOCKERD_LAUNCH_MODES)}")
        prefix = self.wg_interface_prefix
        if not prefix or len(prefix) > MAX_WG_PREFIX_LEN or not all(c.isalnum() or c in "-_" for c in prefix):
            raise ConfigError(
                f"wireguard interface prefix {prefix!r} must be 1-{MAX_WG_PREFIX_LEN} letters, digits, - or _"
            )
        clash = PROTECTED_DAEMON_KEYS & set(self.daemon_json_extras)
        if clash:
            raise ConfigError(
                f"daemon.json extras may not set {', '.join(sorted(clash))}: the platform owns those keys"
            )
        if self.heartbeat_interval_s is not None and self.heartbeat_interval_s <= 0:
            raise ConfigError("heartbeat interval override must be positive")
        if not 0 <= self.watch_wait_s <= 55:
            raise ConfigError("watch wait must be 0 (no watch) to 55 seconds")


# setting name -> environment variable. The three documented ones come first.
ENV_VARS: dict[str, str] = {
    "platform_url": "POWERNODE_URL",
    "agent_token": "POWERNODE_AGENT_TOKEN",
    "state_dir": "POWERNODE_AGENT_STATE_DIR",
    "agent_token_file": "POWERNODE_AGENT_TOKEN_FILE",
    "platform_ca_file": "POWERNODE_AGENT_PLATFORM_CA",
    "insecure_http": "POWERNODE_AGENT_INSECURE_HTTP",
    "heartbeat_interval_s": "POWERNODE_AGENT_HEARTBEAT_INTERVAL",
    "watch_wait_s": "POWERNODE_AGENT_WATCH_WAIT",
    "wg_interface_prefix": "POWERNODE_AGENT_WG_PREFIX",
    "wg_backend": "POWERNODE_AGENT_WG_BACKEND",
    "wireguard_go_binary": "POWERNODE_AGENT_WIREGUARD_GO",
    "docker_install_command": "POWERNODE_AGENT_DOCKER_INSTALL_COMMAND",
    "dockerd_binary": "POWERNODE_AGENT_DOCKERD",
    "dockerd_launch": "POWERNODE_AGENT_DOCKERD_LAUNCH",
    "dockerd_command_prefix": "POWERNODE_AGENT_DOCKERD_PREFIX",
    "docker_tls_dir": "POWERNODE_AGENT_DOCKER_TLS_DIR",
    "daemon_json_path": "POWERNODE_AGENT_DAEMON_JSON",
    "daemon_json_extras": "POWERNODE_AGENT_DAEMON_EXTRAS",
    "ready_timeout_s": "POWERNODE_AGENT_READY_TIMEOUT",
}


def _coerce(name: str, value: Any) -> Any:
    """Turn a string (env var, flag) or JSON value into the field's type."""
    if name in {"state_dir", "docker_tls_dir", "daemon_json_path", "systemd_dropin_path"}:
        return Path(value)
    if name == "insecure_http":
        return parse_bool(name, value)
    if name in {"heartbeat_interval_s", "http_timeout_s", "ready_timeout_s"}:
        return None if value in (None, "") else float(value)
    if name == "watch_wait_s":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"watch wait must be a whole number of seconds, got {value!r}") from None
    if name == "dockerd_command_prefix":
        if isinstance(value, str):
            return shlex.split(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError("dockerd command prefix must be a string or a list of strings")
    if name == "daemon_json_extras":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"daemon.json extras are not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ConfigError("daemon.json extras must be a JSON object")
        return dict(value)
    return value


def read_layers(
    *,
    known: set[str],
    env_vars: Mapping[str, str],
    flags: Mapping[str, Any] | None,
    env: Mapping[str, str],
    config_file: str | os.PathLike[str] | None,
) -> dict[str, Any]:
    """Settings by name from a JSON file < the environment < flags (unknown file keys are an error)."""
    layered: dict[str, Any] = {}
    if config_file:
        try:
            data = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {config_file} must hold a JSON object")
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        layered.update(data)
    for name, var in env_vars.items():
        if env.get(var) not in (None, ""):
            layered[name] = env[var]
    for name, value in (flags or {}).items():
        if value is not None and name in known:
            layered[name] = value
    return layered


def resolve_token_file(layered: dict[str, Any], token: str, token_file: str) -> None:
    """Read ``layered[token_file]`` into ``layered[token]`` unless a token was given directly."""
    path = layered.pop(token_file, None)
    if path and not layered.get(token):
        try:
            layered[token] = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read token file {path}: {exc}") from exc


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def load_settings(
    cls: type[T],
    *,
    env_vars: Mapping[str, str],
    config_env_var: str,
    token_field: str,
    coerce: Callable[[str, Any], Any],
    flags: Mapping[str, Any] | None,
    env: Mapping[str, str] | None,
    config_file: str | os.PathLike[str] | None,
) -> T:
    """A settings dataclass from defaults < JSON file < environment < flags, for the agent and the hub.

    ``<token_field>_file`` reads the token from a file; the config file's ``ca_bundle`` is
    ``platform_ca_file``.
    """
    env = os.environ if env is None else env
    known = {f.name for f in dataclasses.fields(cls)} | {f"{token_field}_file", "ca_bundle"}  # type: ignore[arg-type]
    layered = read_layers(
        known=known,
        env_vars=env_vars,
        flags=flags,
        env=env,
        config_file=config_file or env.get(config_env_var),
    )
    if "ca_bundle" in layered:  # the config file's name for --ca-bundle
        layered.setdefault("platform_ca_file", layered.pop("ca_bundle"))
    resolve_token_file(layered, token_field, f"{token_field}_file")
    return cls(**{name: coerce(name, value) for name, value in layered.items()})


def load_config(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> AgentConfig:
    """Build an AgentConfig: flags win over the environment, which wins over the JSON file."""
    return load_settings(
        AgentConfig,
        env_vars=ENV_VARS,
        config_env_var="POWERNODE_AGENT_CONFIG",
        token_field="agent_token",
        coerce=_coerce,
        flags=flags,
        env=env,
        config_file=config_file,
    )
