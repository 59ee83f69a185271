"""The WireGuard adapter: X25519 keys and wg-quick configuration text. Nothing else touches WireGuard."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.core import exceptions as django_exceptions

from powernode.errors import ValidationError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# host:port with a hostname, an IPv4 address or a bracketed IPv6 address, port 1-65535. The lookahead
# refuses control characters anywhere: a JSON Schema ``$`` in Python also matches before a final newline.
ENDPOINT_PATTERN = (
    r"^(?![\s\S]*[\x00-\x1f\x7f])(?:" + _LABEL + r"(?:\." + _LABEL + r")*|\[[0-9A-Fa-f:.]{2,45}\]):" + _PORT + "$"
)
# wg-quick reads its config line by line: a newline (or any control character) in a value would start a
# new line of the operator's choosing, e.g. ``[Interface]`` with a ``PostUp`` run as root.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Keypair:
    private_key: str
    public_key: str


def generate_keypair() -> Keypair:
    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Keypair(base64.b64encode(private).decode(), base64.b64encode(public).decode())


def check_public_key(value: str) -> str:
    """A WireGuard public key is 32 bytes, base64; anything else is refused."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValidationError("wireguard_public_key must be a base64 WireGuard (X25519) public key.")
    return value


def endpoint_problem(value: str) -> str | None:
    """Why ``value`` is not a ``host:port`` WireGuard endpoint, or None when it is one."""
    if not isinstance(value, str) or not re.fullmatch(ENDPOINT_PATTERN, value):
        return (
            f"{value!r} is not host:port (a hostname, an IPv4 address or an [IPv6] address, port 1-65535)."
        )
    host = value.rsplit(":", 1)[0]
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
    except ValueError:
        return f"{host!r} in {value!r} is not an IP address."
    return None


def check_endpoint(value: str) -> str:
    """A ``host:port`` hub endpoint (empty: none), else a ValidationError (400)."""
    problem = value and endpoint_problem(value)
    if problem:
        raise ValidationError(f"hub_endpoint {problem}", details={"field": "hub_endpoint"})
    return value


def validate_hub_endpoint(value: str) -> None:
    """The model field's validator (the admin's forms and ``full_clean``)."""
    problem = value and endpoint_problem(value)
    if problem:
        raise django_exceptions.ValidationError(problem, code="invalid_endpoint")


def refuse_control_characters(**fields: object) -> None:
    """Every value that goes into a config must stay on its line: no newline, CR, NUL or other control."""
    for field_name, value in fields.items():
        if value is not None and _CONTROL.search(str(value)):
            raise ValidationError(
                f"{field_name} holds a control character: refusing to write it into a WireGuard config.",
                details={"field": field_name},
            )


def render_client_config(
    *, private_key: str, address: str, hub_public_key: str, hub_endpoint: str, allowed_ips: str
) -> str:
    """A wg-quick config for a spoke: its /128 on the interface, the hub as the only peer."""
    refuse_control_characters(
        private_key=private_key,
        address=address,
        hub_public_key=hub_public_key,
        hub_endpoint=hub_endpoint,
        allowed_ips=allowed_ips,
    )
    if hub_endpoint:
        check_endpoint(hub_endpoint)
    lines = [
        "[Interface]",
        f"PrivateKey = {private_key}",
        f"Address = {address}/128",
        "",
        "[Peer]",
        f"PublicKey = {hub_public_key}",
    ]
    if hub_endpoint:
        lines.append(f"Endpoint = {hub_endpoint}")
    lines += [f"AllowedIPs = {allowed_ips}", "PersistentKeepalive = 25", ""]
    return "\n".join(lines)
