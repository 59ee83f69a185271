"""The agent as the platform hands it out: its wheel (built from ``agent/``, the same bytes on every platform
process), the systemd unit, the install script and the copy-paste enrollment command an operator runs on a node.

Nothing here is secret: the wheel, the unit, the script and the platform's CA certificate are served without
authentication. The agent token is the secret; it travels only in the enrollment command the operator copies
(shown once, at provisioning) and in the ``Authorization`` header of the agent's own requests, never in a URL.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import ipaddress
import re
import shlex
import tomllib
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from powernode.errors import ValidationError

FILES_DIR = Path(__file__).resolve().parent / "agent_files"
WHEEL_TAG = "py3-none-any"
# Fixed entry times and no compression: two processes (or two hosts) building the same source get the same
# bytes, so the sha256 an operator's page shows matches whichever process serves the download.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_INSTALL_PATH = "/agent/install.sh"
CA_PATH = "/agent/platform-ca.pem"
CA_DOWNLOAD_TO = "/tmp/powernode-platform-ca.pem"


@dataclass(frozen=True)
class AgentWheel:
    version: str
    filename: str
    sha256: str
    content: bytes

    @property
    def path(self) -> str:
        return f"/agent/{self.filename}"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(source_dir: Path) -> AgentWheel:
    """A pure-Python wheel of the agent from its ``pyproject.toml`` (name, version, dependencies, scripts,
    the packages listed under ``[tool.setuptools]``): standard library only, reproducible byte for byte."""
    try:
        meta = tomllib.loads((source_dir / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ImproperlyConfigured(f"POWERNODE_AGENT_SOURCE_DIR ({source_dir}) holds no agent: {exc}") from None
    project = meta["project"]
    dist = re.sub(r"[-_.]+", "_", project["name"]).lower()
    version = project["version"]
    files: dict[str, bytes] = {}
    for package in meta["tool"]["setuptools"]["packages"]:
        for path in sorted(source_dir.joinpath(*package.split(".")).glob("*.py")):
            files[f"{package.replace('.', '/')}/{path.name}"] = path.read_bytes()
    info = f"{dist}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3')}",
        *(f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])),
    ]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: powernode\nRoot-Is-Purelib: true\nTag: {WHEEL_TAG}\n".encode()
    )
    scripts = project.get("scripts", {})
    if scripts:
        lines = ["[console_scripts]", *(f"{name} = {target}" for name, target in sorted(scripts.items()))]
        files[f"{info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():  # packages first, then the dist-info with RECORD last
            entry = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            entry.external_attr = 0o100644 << 16
            archive.writestr(entry, data)
    content = buffer.getvalue()
    return AgentWheel(
        version=version,
        filename=f"{dist}-{version}-{WHEEL_TAG}.whl",
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


@functools.cache
def agent_wheel() -> AgentWheel:
    """The wheel this platform serves, built once per process from ``POWERNODE_AGENT_SOURCE_DIR``."""
    return build_wheel(Path(settings.POWERNODE_AGENT_SOURCE_DIR))


def unit_text() -> str:
    """The agent's systemd unit: the deployment's file (``POWERNODE_AGENT_UNIT_FILE``) or the built-in copy."""
    configured = Path(settings.POWERNODE_AGENT_UNIT_FILE)
    source = configured if configured.is_file() else FILES_DIR / "powernode-agent.service"
    return source.read_text()


def install_script() -> str:
    """``/agent/install.sh`` with the wheel's name and sha256 written in."""
    wheel = agent_wheel()
    return (
        (FILES_DIR / "install.sh")
        .read_text()
        .replace("@WHEEL_FILENAME@", wheel.filename)
        .replace("@WHEEL_SHA256@", wheel.sha256)
        .replace("@AGENT_VERSION@", wheel.version)
    )


def platform_ca_pem() -> bytes | None:
    """The PEM bundle that verifies the platform's https certificate, when the deployment names one."""
    name = settings.POWERNODE_AGENT_PLATFORM_CA_FILE
    if not name:
        return None
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"POWERNODE_AGENT_PLATFORM_CA_FILE cannot be read: {exc}") from None


def check_platform_url(url: str) -> str:
    """``scheme://host[:port]`` with nothing after it: the base nodes reach the platform at."""
    try:
        parts = urllib.parse.urlsplit(url)
        bad = parts.port is not None and not 0 < parts.port  # .port raises on a port that is not a number
    except ValueError:
        parts, bad = None, True
    if bad or parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(
            f"platform URL {url!r} must be http(s)://HOST[:PORT] with no path or query",
            details={"platform_url": url},
        )
    return f"{parts.scheme}://{parts.netloc}"


def _needs_insecure_http(url: str) -> bool:
    """The agent refuses plain http to anything but loopback unless told (its config.check_platform_url)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").lower()
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def install_command(*, platform_url: str, agent_token: str | None = None) -> str:
    """The one line to run as root on the node (as k3s' ``curl -sfL get.k3s.io | K3S_TOKEN=… sh -``).

    Without ``agent_token`` it reads ``POWERNODE_AGENT_TOKEN`` from the shell's environment. With a private
    platform CA it first fetches the CA and checks it against the sha256 printed here (trust on first use,
    pinned by the page the operator is logged in to), then uses it for every later download and the agent.
    """
    base = check_platform_url(platform_url)
    fetch, script_args = "curl -fsSLg", ["--url", base]
    prelude = ""
    ca = platform_ca_pem()
    if ca is not None:
        digest = hashlib.sha256(ca).hexdigest()
        prelude = (
            f"curl -fsSLgk {shlex.quote(base + CA_PATH)} -o {CA_DOWNLOAD_TO} && "
            f"echo '{digest}  {CA_DOWNLOAD_TO}' | sha256sum -c --quiet - && "
        )
        fetch = f"curl -fsSLg --cacert {CA_DOWNLOAD_TO}"
        script_args += ["--ca-file", CA_DOWNLOAD_TO]
    if _needs_insecure_http(base):
        script_args.append("--insecure-http")
    token = f"POWERNODE_AGENT_TOKEN={shlex.quote(agent_token)} " if agent_token else ""
    return f"{prelude}{fetch} {shlex.quote(base + _INSTALL_PATH)} | {token}sh -s -- {shlex.join(script_args)}"
