"""Application error types: every refusal the platform makes, with its HTTP status.

Transports (REST, MCP, admin, commands) render these the same way:
``{"error": {"type": <class name>, "message": ..., "details": {...}}}``.
Adapters translate vendor exceptions (hvac, docker, psycopg) into these at their edge.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """Base of every error the platform reports to a caller."""

    status_code = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    @property
    def type_name(self) -> str:
        return type(self).__name__

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"type": self.type_name, "message": self.message, "details": self.details}}


# 400 ---------------------------------------------------------------------------------------
class ValidationError(ApplicationError):
    status_code = 400


class InvalidCsrError(ValidationError):
    """A CSR failed one of the checks made before any signing."""


# 401 / 403 / 404 ---------------------------------------------------------------------------
class NotAuthenticated(ApplicationError):
    status_code = 401


class PermissionDenied(ApplicationError):
    status_code = 403


class NotFound(ApplicationError):
    status_code = 404


# 409: the request is well formed but the platform's state refuses it ------------------------
class ConflictError(ApplicationError):
    status_code = 409


class MissingSdwanPeerError(ConflictError):
    pass


class ModuleNotLiveError(ConflictError):
    pass


class HostNotConnectedError(ConflictError):
    pass


class AlreadyAttachedError(ConflictError):
    pass


class RuntimeNotAssignedError(ConflictError):
    pass


class HandshakePhaseError(ConflictError):
    pass


class HostDecommissionedError(ConflictError):
    pass


class PeerKeyConflictError(ConflictError):
    """An agent reported a WireGuard key its peer is not pinned to, or one another peer or a hub holds."""


class HubNotReadyError(ConflictError):
    """The network's hub has not reported its WireGuard key yet (no ``powernode-agent hub`` synced)."""


class PeerInUseError(ConflictError):
    """A peer cannot be detached while something (a live docker host) binds to its overlay /128."""


# 413 ---------------------------------------------------------------------------------------
class PayloadTooLarge(ApplicationError):
    status_code = 413


# 429 ---------------------------------------------------------------------------------------
class Throttled(ApplicationError):
    """Too many failed attempts from one client; ``details.retry_after_s`` says when to try again."""

    status_code = 429


class RateLimitedError(ApplicationError):
    """Too many requests of one kind in a window; ``details.retry_after_s`` says when to try again."""

    status_code = 429


# 502: a system we drive failed ---------------------------------------------------------------
class UpstreamError(ApplicationError):
    status_code = 502


class DockerDaemonError(UpstreamError):
    pass


class CaUnavailableError(UpstreamError):
    pass


class VaultUnavailableError(UpstreamError):
    pass
