"""The hub's one nftables table: render it, apply it in one transaction, notice when someone changed it.

Only ``table inet powernode_hub`` is ever touched. Its ``forward`` chain (policy drop) lets traffic through
only within a network, and accepts first whatever touches none of the hub's interfaces (other forwarding on
the host is not the hub's business). Its ``input`` chain lets overlay peers reach the hub's own address on
their network on the allowed TCP ports, and nothing else on the hub host.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..state import atomic_write

log = logging.getLogger(__name__)

TABLE = "powernode_hub"
FAMILY = "inet"


@dataclass(frozen=True)
class FirewallNetwork:
    ifname: str
    hub_address: str


def _names(ifnames: Iterable[str]) -> str:
    return "{ " + ", ".join(f'"{name}"' for name in ifnames) + " }"


def render_ruleset(networks: Sequence[FirewallNetwork], ports: Sequence[int]) -> str:
    """The whole table as an ``nft -f`` script: create-if-missing, delete, define; one transaction.

    Interface names and addresses come validated (hex names, normalized IPv6), so they are safe to quote.
    """
    networks = sorted(networks, key=lambda n: n.ifname)
    lines = [
        f"table {FAMILY} {TABLE} {{}}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
        "  chain forward {",
        "    type filter hook forward priority filter; policy drop;",
    ]
    if networks:
        names = _names(n.ifname for n in networks)
        lines.append(f"    iifname != {names} oifname != {names} accept")
        for net in networks:
            lines.append(f'    iifname "{net.ifname}" oifname "{net.ifname}" accept')
        # counts what the policy is about to drop (between networks): `nft list table inet powernode_hub`
        lines.append('    counter comment "dropped"')
    else:
        lines.append("    accept")
    lines += [
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
    ]
    if networks:
        names = _names(n.ifname for n in networks)
        lines.append(f"    iifname != {names} accept")
        lines.append("    ct state established,related accept")
        port_set = "{ " + ", ".join(str(p) for p in sorted(set(ports))) + " }"
        if ports:
            for net in networks:
                lines.append(
                    f'    iifname "{net.ifname}" ip6 daddr {net.hub_address} tcp dport {port_set} accept'
                )
        lines.append('    counter drop comment "dropped"')
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def normalize(listing: Any) -> list[Any]:
    """``nft -j list table`` without what changes on its own: metainfo, handles, counter values."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "handle":
                    continue
                if key == "counter" and isinstance(item, dict):
                    out[key] = {}
                    continue
                out[key] = strip(item)
            return out
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    items = listing.get("nftables", []) if isinstance(listing, dict) else []
    return [strip(item) for item in items if not (isinstance(item, dict) and "metainfo" in item)]


def fingerprint(normalized: list[Any]) -> str:
    return hashlib.sha256(json.dumps(normalized, sort_keys=True).encode()).hexdigest()


def text_hash(ruleset: str) -> str:
    return hashlib.sha256(ruleset.encode()).hexdigest()


Command = Callable[..., Any]  # (*argv, check=bool) -> CompletedProcess


class NftTable:
    """Applies the rendered table and tells whether the live table still matches what was applied."""

    def __init__(self, cmd: Command, workdir: Path) -> None:
        self._cmd = cmd
        self.workdir = workdir

    def apply(self, ruleset: str) -> str:
        """Load ``ruleset`` atomically; returns the fingerprint of the live table right after."""
        path = self.workdir / "ruleset.nft"
        atomic_write(path, ruleset.encode())  # 0600 like everything in the state dir
        result = self._cmd("nft", "-f", str(path), check=False)
        if result.returncode != 0:
            raise NftError(f"nft -f {path} failed: {(result.stderr or result.stdout).strip()}")
        live = self.live_fingerprint()
        if live is None:
            raise NftError(f"table {FAMILY} {TABLE} is missing right after nft -f")
        return live

    def live_fingerprint(self) -> str | None:
        """The normalized live table's fingerprint, or None when the table is not there."""
        result = self._cmd("nft", "-j", "list", "table", FAMILY, TABLE, check=False)
        if result.returncode != 0:
            return None
        try:
            return fingerprint(normalize(json.loads(result.stdout or "{}")))
        except json.JSONDecodeError:
            return None

    def delete(self) -> bool:
        """Delete the table; True when it existed."""
        return self._cmd("nft", "delete", "table", FAMILY, TABLE, check=False).returncode == 0

    def exists(self) -> bool:
        return self._cmd("nft", "list", "table", FAMILY, TABLE, check=False).returncode == 0


class NftError(Exception):
    """nft refused the ruleset or the table could not be read back."""
