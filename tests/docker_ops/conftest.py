"""docker_* action tests reuse the handshake fixtures (a real LocalCaAdapter, an agent over HTTP)."""

from tests.handshake.conftest import agent, docker_fleet, handshake_ca_dir, local_ca  # noqa: F401
