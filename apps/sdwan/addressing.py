"""Pure IPv6 arithmetic for SDWAN prefixes and /128 allocation."""

from __future__ import annotations

import ipaddress
import secrets

from powernode.errors import ValidationError

ULA = ipaddress.IPv6Network("fc00::/7")
MAX_PREFIX_LEN = 64


def parse_prefix(value: str) -> ipaddress.IPv6Network:
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError as exc:
        raise ValidationError(
            f"prefix {value!r} is not an IPv6 network with its host bits zero ({exc}).",
            details={"fields": {"prefix": str(exc)}},
        )
    if not net.subnet_of(ULA):
        raise ValidationError(
            f"prefix {value} is not an IPv6 ULA (fc00::/7, usually fd00::/8).",
            details={"fields": {"prefix": "must be inside fc00::/7"}},
        )
    if net.prefixlen > MAX_PREFIX_LEN:
        raise ValidationError(
            f"prefix {value} is longer than /{MAX_PREFIX_LEN}; use a /64 or shorter.",
            details={"fields": {"prefix": f"/{MAX_PREFIX_LEN} or shorter"}},
        )
    return net


def random_ula_64() -> ipaddress.IPv6Network:
    """A random fdXX:XXXX:XXXX:YYYY::/64 (RFC 4193 global id plus subnet)."""
    bits = (0xFD << 120) | (secrets.randbits(56) << 64)
    return ipaddress.IPv6Network((bits, 64))


def address_at(prefix: str, index: int) -> str:
    net = ipaddress.IPv6Network(prefix)
    if index >= net.num_addresses - 1:
        raise ValidationError(f"The network {prefix} has no free addresses left.")
    return str(net.network_address + index)
