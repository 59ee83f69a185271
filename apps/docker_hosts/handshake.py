"""The runtime handshake: a stateless phase machine over ``{runtime, phase, ...}`` posted by an agent.

The answer depends only on the posted phase and the database, so an agent may restart at any phase.
Input is checked completely first (400, nothing written); then one service call applies the phase
(409 when the platform's state refuses it, also with nothing written).
"""

from __future__ import annotations

from typing import Any

from apps.docker_hosts import phases, services
from apps.modules.models import Module
from apps.nodes.models import NodeInstance
from apps.pki.adapters.base import canonical_serial
from apps.pki.adapters.csr import validate_csr
from powernode import logs, metrics
from powernode.actors import Actor
from powernode.errors import ValidationError

RUNTIMES = (Module.Runtime.DOCKER.value,)
PHASES = phases.HANDSHAKE_PHASES
MAX_VERSION_CHARS = 40
MAX_ERROR_INPUT_CHARS = 16 * 1024
MAX_HOST_ID_CHARS = 64
MAX_SERIAL_CHARS = 100


def _invalid(field: str, problem: str, **extra: Any) -> ValidationError:
    return ValidationError(
        f"Invalid input: {field}: {problem}", details={"fields": {field: problem}, **extra}
    )


def _string(payload: dict[str, Any], field: str, *, max_chars: int, phase: str) -> str:
    value = payload.get(field)
    if value is None:
        raise _invalid(field, f"this field is required for the phase {phase!r}", phase=phase)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(field, "must be a non-empty string", phase=phase)
    if len(value) > max_chars:
        raise _invalid(field, f"must be at most {max_chars} characters", phase=phase)
    return value.strip()


def _serial(payload: dict[str, Any], *, phase: str) -> str:
    """``cert_serial`` of ``ready``: the serial of the certificate dockerd was started with, hex (colons allowed)."""
    value = _string(payload, "cert_serial", max_chars=MAX_SERIAL_CHARS, phase=phase)
    try:
        return canonical_serial(value)
    except ValueError:
        raise _invalid("cert_serial", "must be a certificate serial in hex (colons allowed)", phase=phase) from None


def parse_handshake(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Validate a handshake body; return (phase, the phase's arguments). Raises 400s only."""
    runtime = payload.get("runtime")
    if runtime is None:
        raise _invalid("runtime", 'this field is required ("docker")')
    if runtime not in RUNTIMES:
        raise _invalid("runtime", f"unknown runtime {runtime!r}; the handshake knows {', '.join(RUNTIMES)}")
    phase = payload.get("phase")
    if phase is None:
        raise _invalid("phase", f"this field is required (one of {', '.join(PHASES)})")
    if phase not in PHASES:
        raise _invalid("phase", f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
    if phase == phases.WANTS_CERT:
        csr_pem = payload.get("csr_pem")
        if csr_pem is not None and not isinstance(csr_pem, str):
            raise _invalid("csr_pem", "must be a PEM string")
        renew = payload.get("renew", False)
        if not isinstance(renew, bool):
            raise _invalid("renew", "must be true or false", phase=phase)
        validate_csr(csr_pem)  # InvalidCsrError (400) names the failed check
        return phase, {"csr_pem": csr_pem, "renew": renew}
    if phase == phases.READY:
        args: dict[str, Any] = {"version": _string(payload, "version", max_chars=MAX_VERSION_CHARS, phase=phase)}
        if payload.get("cert_serial") is not None:
            args["cert_serial"] = _serial(payload, phase=phase)
        return phase, args
    if phase == phases.FAILED:
        return phase, {"error": _string(payload, "error", max_chars=MAX_ERROR_INPUT_CHARS, phase=phase)}
    if phase == phases.DECOMMISSIONED:
        return phase, {"host_id": _string(payload, "host_id", max_chars=MAX_HOST_ID_CHARS, phase=phase)}
    return phase, {}


def runtime_handshake(*, instance: NodeInstance, payload: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Apply one posted phase for the agent's own instance; return the answer of docs/AGENT_PROTOCOL.md."""
    phase, args = parse_handshake(payload)  # a phase refused here is not counted: no label from a caller's typo
    with metrics.counted(metrics.HANDSHAKES, runtime="docker", phase=phase):
        answer = _apply_phase(instance=instance, phase=phase, args=args, actor=actor)
    logs.bind(host_id=answer.get("host_id"))
    return answer


def _apply_phase(*, instance: NodeInstance, phase: str, args: dict[str, Any], actor: Actor) -> dict[str, Any]:
    if phase == phases.INSTALLING:
        services.docker_runtime_installing(instance=instance, actor=actor)
        return {"next_phase": phases.WANTS_CERT}
    if phase == phases.WANTS_CERT:
        issued = services.docker_host_issue_certificate(
            instance=instance, csr_pem=args["csr_pem"], actor=actor, renew=args["renew"]
        )
        return {
            "host_id": issued.host.id,
            "cert_pem": issued.cert_pem,
            "chain_pem": issued.chain_pem,
            "client_ca_pem": issued.client_ca_pem,
            "next_phase": phases.WANTS_CONFIG,
        }
    if phase == phases.WANTS_CONFIG:
        host = services.docker_host_config_sent(instance=instance, actor=actor)
        return {"host_id": host.id, "daemon_config": services.daemon_config(host=host), "next_phase": phases.READY}
    if phase == phases.READY:
        host = services.docker_runtime_ready(instance=instance, actor=actor, **args)
        answer: dict[str, Any] = {"host_id": host.id, "status": host.status, "next_phase": None}
        if host.status != "connected":  # the platform's probe did not reach the daemon: post ready again later
            answer["error"] = host.last_error
        return answer
    if phase == phases.FAILED:
        host = services.docker_runtime_failed(instance=instance, error=args["error"], actor=actor)
        return {"host_id": host.id if host else None, "recorded": True}
    host = services.docker_runtime_decommissioned(instance=instance, host_id=args["host_id"], actor=actor)
    return {"host_id": host.id, "status": host.status}
