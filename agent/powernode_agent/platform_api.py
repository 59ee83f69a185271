"""HTTP client for the platform's agent endpoints (heartbeat, runtime handshake), standard library only."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from . import __version__
from .config import check_platform_url

HEARTBEAT_PATH = "/api/v1/agent/heartbeat"
HANDSHAKE_PATH = "/api/v1/runtime/handshake"
#: a held heartbeat's read timeout is its wait_s plus this (the platform answers at wait_s at the latest)
WATCH_TIMEOUT_MARGIN_S = 15.0


class AgentApiError(Exception):
    """The platform refused a request (its error shape) or could not be reached (status None)."""

    def __init__(
        self,
        type_name: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{type_name}: {message}" + (f" (HTTP {status})" if status else ""))
        self.type = type_name
        self.message = message
        self.status = status
        self.details = details or {}

    @property
    def is_conflict(self) -> bool:
        return self.status == 409

    @property
    def is_key_conflict(self) -> bool:
        """The platform refused this instance's WireGuard key (pinned to another key, or taken)."""
        return self.status == 409 and self.type == "PeerKeyConflictError"


class PlatformClient:
    """Posts JSON to the platform with the agent's Bearer token and returns the decoded answer."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        ca_file: str | None = None,
        insecure_http: bool = False,
    ) -> None:
        """``ca_file``: the CA bundle trusted for https (the system store when None). A plain-http URL
        that is not loopback raises ``ConfigError`` unless ``insecure_http``: the token must not leak."""
        check_platform_url(base_url, insecure_http=insecure_http)
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        handlers: list[urllib.request.BaseHandler] = [
            # Proxy variables in the environment must never route agent traffic elsewhere.
            urllib.request.ProxyHandler({}),
        ]
        if self.base_url.startswith("https://"):
            context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def for_settings(cls, settings: Any, token: str) -> PlatformClient:
        """A client from an AgentConfig or HubConfig (URL, timeout, CA bundle, insecure_http)."""
        return cls(
            settings.platform_url,
            token,
            timeout_s=settings.http_timeout_s,
            ca_file=settings.platform_ca_file,
            insecure_http=settings.insecure_http,
        )

    def post(self, path: str, body: dict[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"powernode-agent/{__version__}",
            },
        )
        try:
            with self._opener.open(request, timeout=timeout_s or self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_from_response(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AgentApiError("PlatformUnreachable", f"{self.base_url}{path}: {reason}") from None
        try:
            answer = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            raise AgentApiError(
                "BadPlatformAnswer", f"{path} answered with non-JSON: {raw[:200]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise AgentApiError("BadPlatformAnswer", f"{path} answered with a non-object JSON value")
        return answer

    def heartbeat(
        self,
        *,
        runtimes: dict[str, Any],
        wireguard_public_key: str | None = None,
        desired_version: str | None = None,
        wait_s: int = 0,
    ) -> dict[str, Any]:
        """One heartbeat; with ``desired_version`` and ``wait_s`` a watch: the platform holds the answer
        until the desired state changes or ``wait_s`` passes, so the read timeout grows to outlast it."""
        body: dict[str, Any] = {"agent_version": __version__, "runtimes": runtimes}
        if wireguard_public_key:
            body["wireguard_public_key"] = wireguard_public_key
        timeout_s = None
        if desired_version is not None and wait_s > 0:
            body["desired_version"], body["wait_s"] = desired_version, wait_s
            timeout_s = max(self.timeout_s, wait_s + WATCH_TIMEOUT_MARGIN_S)
        return self.post(HEARTBEAT_PATH, body, timeout_s=timeout_s)

    def handshake(self, phase: str, **fields: Any) -> dict[str, Any]:
        return self.post(HANDSHAKE_PATH, {"runtime": "docker", "phase": phase, **fields})


def _error_from_response(exc: urllib.error.HTTPError) -> AgentApiError:
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    try:
        error = json.loads(raw).get("error")
    except (json.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        return AgentApiError(
            str(error.get("type") or "HttpError"),
            str(error.get("message") or exc.reason),
            status=exc.code,
            details=error.get("details") if isinstance(error.get("details"), dict) else {},
        )
    text = raw.decode(errors="replace").strip()[:200]
    return AgentApiError("HttpError", text or str(exc.reason), status=exc.code)
