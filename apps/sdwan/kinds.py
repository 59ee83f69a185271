"""Event kinds recorded by the SDWAN app."""

from powernode.event_kinds import declare

NETWORK_CREATED = declare("system.sdwan.network.created", "An SDWAN network was created.")
PEER_ATTACHED = declare("system.sdwan.peer.attached", "An instance joined a network with its overlay /128.")
PEER_KEY_REPORTED = declare("system.sdwan.peer.key_reported", "An agent reported a (new) WireGuard public key.")
ACCESS_GRANT_CREATED = declare("system.sdwan.access_grant.created", "An operator device was granted access.")
ACCESS_GRANT_REVOKED = declare(
    "system.sdwan.access_grant.revoked", "An operator device's access was revoked: the hub drops its peer."
)
