"""Event kinds recorded by the SDWAN app."""

from powernode.event_kinds import declare

NETWORK_CREATED = declare("system.sdwan.network.created", "An SDWAN network was created.")
PEER_ATTACHED = declare("system.sdwan.peer.attached", "An instance joined a network with its overlay /128.")
PEER_KEY_REPORTED = declare("system.sdwan.peer.key_reported", "An agent reported a (new) WireGuard public key.")
PEER_KEY_REFUSED = declare(
    "system.sdwan.peer.key_refused",
    "An agent reported a WireGuard key that was refused (its peer is pinned to another key, or the key is taken).",
)
PEER_KEY_RESET = declare(
    "system.sdwan.peer.key_reset", "An operator cleared a peer's pinned WireGuard key: the next key is accepted."
)
ACCESS_GRANT_CREATED = declare("system.sdwan.access_grant.created", "An operator device was granted access.")
ACCESS_GRANT_REVOKED = declare(
    "system.sdwan.access_grant.revoked", "An operator device's access was revoked: the hub drops its peer."
)
PEER_DETACHED = declare(
    "system.sdwan.peer.detached", "An instance left a network: its peer (and /128, never reused) is gone."
)
HUB_TOKEN_CREATED = declare("system.sdwan.hub_token.created", "An operator made a hub token (pnh_...).")
HUB_TOKEN_REVOKED = declare("system.sdwan.hub_token.revoked", "A hub token was revoked: that hub cannot sync.")
HUB_REKEYED = declare(
    "system.sdwan.hub.rekeyed",
    "A hub reported a new WireGuard key for a network: access grants naming the old key need replacing.",
)
HUB_APPLIED = declare("system.sdwan.hub.applied", "A hub reported it applied a new desired state.")
