"""Managed Docker runtimes: the DockerHost lifecycle and the agent's runtime handshake."""
