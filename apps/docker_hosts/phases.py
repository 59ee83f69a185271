"""The phases of the Docker runtime handshake (DESIGN §4), defined once.

An agent posts them to ``/api/v1/runtime/handshake`` and reports its last one in every heartbeat
(``runtimes.docker.phase``); the phase machine, the runtime provider and the admin take them from here.
"""

NONE = "none"
INSTALLING = "installing"
WANTS_CERT = "wants_cert"
WANTS_CONFIG = "wants_config"
READY = "ready"
FAILED = "failed"
DECOMMISSIONED = "decommissioned"

#: what an agent may post to the handshake, in protocol order
HANDSHAKE_PHASES = (INSTALLING, WANTS_CERT, WANTS_CONFIG, READY, FAILED, DECOMMISSIONED)
#: what an agent may report in a heartbeat: a handshake phase, or ``none`` before the first one
REPORTED_PHASES = (NONE, *HANDSHAKE_PHASES)
