"""The WireGuard adapter: X25519 keys and wg-quick configuration text. Nothing else touches WireGuard."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from powernode.errors import ValidationError


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


def render_client_config(
    *, private_key: str, address: str, hub_public_key: str, hub_endpoint: str, allowed_ips: str
) -> str:
    """A wg-quick config for a spoke: its /128 on the interface, the hub as the only peer."""
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


def render_hub_config(*, private_key: str, listen_port: int | None, peers: list[tuple[str, str]]) -> str:
    """The hub's wg config (``wg setconf`` format): one peer per (public_key, overlay /128)."""
    lines = ["[Interface]", f"PrivateKey = {private_key}"]
    if listen_port:
        lines.append(f"ListenPort = {listen_port}")
    for public_key, address in peers:
        lines += ["", "[Peer]", f"PublicKey = {public_key}", f"AllowedIPs = {address}/128"]
    return "\n".join(lines) + "\n"
