"""Bearer tokens: ``<kind>_<prefix>_<secret>``; the prefix finds the row, the hash proves the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

OPERATOR = "pno"
AGENT = "pna"
HUB = "pnh"


@dataclass(frozen=True)
class NewToken:
    token: str
    prefix: str
    token_hash: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(kind: str) -> NewToken:
    prefix = secrets.token_hex(6)
    token = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(token=token, prefix=prefix, token_hash=token_hash(token))


def parse_token(token: str, kind: str) -> str | None:
    """Return the lookup prefix of a token of this kind, or None when it is not one."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != kind or len(parts[1]) != 12:
        return None
    return parts[1]


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)
