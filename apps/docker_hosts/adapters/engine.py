"""The one adapter over the Docker engine API (docker-py): mutual TLS to a host's dockerd over the
SDWAN overlay, one pooled client per host, and vendor errors translated into powernode.errors here.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import functools
import hashlib
import ipaddress
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import docker
import docker.auth
import docker.constants
import docker.errors
import docker.types
import docker.utils
import requests
import urllib3.exceptions
from docker.tls import TLSConfig
from docker.utils import parse_repository_tag
from docker.utils.proxy import ProxyConfig

from powernode.errors import DockerDaemonError, NotFound, ValidationError

# No pinned API version: the first call on an engine reads the daemon's unversioned ``GET /version``
# (ApiVersion, MinAPIVersion) once and uses the highest version both sides speak. Debian's dockerd
# 20.10 answers 1.41; Docker Engine 29 refuses anything below 1.44. docker-py's own ``version="auto"``
# would probe inside the constructor, before the CA fix below applies and without our timeouts.
CLIENT_MAX_API_VERSION = docker.constants.DEFAULT_DOCKER_API_VERSION
PROTOCOLS = ("tcp", "udp", "sctp")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
LOG_CAP_BYTES = 1024 * 1024  # docker_container_logs answers at most this much text
_T = TypeVar("_T")


class ApiVersionRefused(DockerDaemonError):
    """The daemon refused the API version we used ("client version 1.41 is too old"): negotiate again."""


def _is_version_refusal(status: int | None, message: str) -> bool:
    text = message.lower()
    return status == 400 and "client version" in text and ("too old" in text or "too new" in text)


class ConnectionRefused(DockerDaemonError):
    """Nothing listens on the daemon's address: the request was never sent (dockerd stopped or restarting)."""


def _refused(exc: BaseException) -> bool:
    """Whether a connection error comes from a refused TCP connect (no byte of the request was sent)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return True
        reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError carries the connect error here
        if isinstance(reason, BaseException) and reason is not cause:
            if _refused(reason):
                return True
        cause = cause.__cause__ or cause.__context__
    return False


def _negotiated(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run ``method`` with a negotiated API version; when the daemon refuses that version (it was
    upgraded under a cached engine), negotiate once more and retry once. A refused request changed
    nothing on the daemon (the version check comes before any handler), so the retry is safe.

    A refused connection (dockerd restarting: a certificate renewal, ``live-restore``) is tried again
    for up to ``refused_retry_s``: the request never reached the daemon, so repeating it is safe for
    every operation. The probe's ``ping`` and ``version`` do not wait (a dead daemon must show at once).
    """

    @functools.wraps(method)
    def wrapper(self: DockerEngine, *args: Any, **kwargs: Any) -> _T:
        deadline = time.monotonic() + self.refused_retry_s
        pause = 0.1
        while True:
            try:
                self.negotiate()
                try:
                    return method(self, *args, **kwargs)
                except ApiVersionRefused:
                    self.negotiate(again=True)
                    return method(self, *args, **kwargs)
            except ConnectionRefused:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    return wrapper


class _HostCaApiClient(docker.APIClient):
    """docker-py's client, made to trust only the host's CA and to use separate connect/read timeouts.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the session's ``verify`` (the host CA)
    on every request (docker/docker-py#2433); those variables are set on our machines.
    """

    def __init__(self, *, timeouts: tuple[float, float], **kwargs: Any) -> None:
        self._timeouts = timeouts
        super().__init__(**kwargs)
        # No environment at all: no CA bundle override, no *_PROXY (the overlay is not proxied), no .netrc.
        self.trust_env = False
        # ~/.docker/config.json proxies of the platform's own user must not leak into managed containers.
        self._proxy_configs = ProxyConfig()

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify  # the host's CA file, whatever else tried to set it
        return settings

    def _set_request_timeout(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("timeout", self._timeouts)
        return kwargs


def _write_private(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def _daemon_message(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc).strip()


class DockerEngine:
    """A client for one host's dockerd over mutual TLS; every method raises only powernode errors."""

    def __init__(
        self,
        *,
        endpoint: str,
        ca_pem: str,
        cert_pem: str,
        key_pem: str,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        refused_retry_s: float = 0,
    ) -> None:
        if not endpoint.startswith(("tcp://", "https://")):
            raise ValidationError(f"Docker endpoint must be tcp:// or https:// (TLS), got {endpoint!r}")
        self.endpoint = endpoint
        self.read_timeout = read_timeout
        self.refused_retry_s = refused_retry_s
        # docker-py and requests take file paths only: the PEMs live in a private directory until close().
        self._tls_dir = tempfile.mkdtemp(prefix="powernode-docker-tls-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tls_dir, ignore_errors=True)
        try:
            ca = _write_private(self._tls_dir, "ca.pem", ca_pem)
            cert = _write_private(self._tls_dir, "cert.pem", cert_pem)
            key = _write_private(self._tls_dir, "key.pem", key_pem)
            with self._errors():
                self._api = _HostCaApiClient(
                    base_url=endpoint,
                    version=CLIENT_MAX_API_VERSION,  # replaced by the negotiated one before any versioned call
                    tls=TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True),
                    timeouts=(connect_timeout, read_timeout),
                )
        except BaseException:
            self._cleanup()
            raise
        self.closed = False
        self.api_version: str | None = None  # negotiated, see negotiate()
        self.server: dict[str, Any] = {}  # the daemon's /version answer, shaped by version()
        self._negotiate_lock = threading.Lock()

    # --- API version negotiation ---------------------------------------------------------------------
    def negotiate(self, *, again: bool = False) -> str:
        """The API version to speak: ``min(daemon's ApiVersion, docker-py's newest)``, read once from the
        unversioned ``/version`` (answered by every daemon, whatever versions it accepts)."""
        if self.api_version and not again:
            return self.api_version
        with self._negotiate_lock:
            if self.api_version and not again:
                return self.api_version
            with self._errors():
                info = self._api.version(api_version=False)
            server = str(info.get("ApiVersion") or "")
            minimum = str(info.get("MinAPIVersion") or "")
            if not server:
                raise DockerDaemonError(f"the Docker daemon at {self.endpoint} reported no API version",
                                        details={"endpoint": self.endpoint})
            chosen = server if docker.utils.version_lt(server, CLIENT_MAX_API_VERSION) else CLIENT_MAX_API_VERSION
            if minimum and docker.utils.version_lt(chosen, minimum):
                raise DockerDaemonError(
                    f"the Docker daemon at {self.endpoint} needs API {minimum} or newer; this platform speaks up "
                    f"to {CLIENT_MAX_API_VERSION}: upgrade the platform's docker package.",
                    details={"endpoint": self.endpoint, "min_api_version": minimum,
                             "client_max_api_version": CLIENT_MAX_API_VERSION},
                )
            self._api._version = chosen  # docker-py builds every URL as /v{_version}/...
            self.server = _shape_version(info)
            self.api_version = chosen
            return chosen

    # --- error translation -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        details = {"endpoint": self.endpoint}
        try:
            yield
        except docker.errors.NotFound as exc:  # ImageNotFound is a NotFound
            raise NotFound(_daemon_message(exc), details=details) from exc
        except docker.errors.APIError as exc:
            status = exc.status_code
            if _is_version_refusal(status, _daemon_message(exc)):
                raise ApiVersionRefused(
                    f"the Docker daemon at {self.endpoint} refused API {self.api_version}: {_daemon_message(exc)}",
                    details={**details, "daemon_status": status, "api_version": self.api_version},
                ) from exc
            raise DockerDaemonError(
                f"the Docker daemon at {self.endpoint} refused: {_daemon_message(exc)}",
                details={**details, "daemon_status": status},
            ) from exc
        except requests.exceptions.SSLError as exc:
            raise DockerDaemonError(
                f"TLS with the Docker daemon at {self.endpoint} failed (certificate or CA mismatch?): {exc}",
                details=details,
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise DockerDaemonError(f"the Docker daemon at {self.endpoint} timed out: {exc}",
                                    details=details) from exc
        except requests.exceptions.ConnectionError as exc:
            error = ConnectionRefused if _refused(exc) else DockerDaemonError
            raise error(f"cannot reach the Docker daemon at {self.endpoint}: {exc}", details=details) from exc
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, docker.errors.DockerException,
                OSError) as exc:
            raise DockerDaemonError(f"Docker daemon at {self.endpoint}: {exc}", details=details) from exc

    # --- operations --------------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        """The daemon's engine version (what the agent reports as ``version`` on ``ready``), with the
        API version this engine negotiated (``negotiated_api_version``)."""
        with self._errors():
            info = self._api.version(api_version=False)
        self.negotiate()
        return {**_shape_version(info), "negotiated_api_version": self.api_version}

    @_negotiated
    def ping(self) -> bool:
        with self._errors():
            return bool(self._api.ping())

    @_negotiated
    def pull_image(self, image: str, *, auth: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Pull ``image`` (``latest`` when untagged) and describe it: ``{id, repo_tags, size}``.

        ``auth`` (``{username, password}``) is sent to the daemon for this pull only (X-Registry-Auth).
        """
        if not image or not isinstance(image, str):
            raise ValidationError("image must be a non-empty string")
        repository, tag = parse_repository_tag(image)
        if not tag:
            tag = "latest"
        with self._errors():
            # The daemon reports failures met mid-pull inside a 200 stream, not as an HTTP status.
            auth_config = {"username": auth["username"], "password": auth["password"]} if auth else None
            for event in self._api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
                if isinstance(event, dict) and event.get("error"):
                    message = str(event["error"])
                    if "not found" in message or "manifest unknown" in message:
                        raise NotFound(message, details={"endpoint": self.endpoint, "image": image})
                    raise DockerDaemonError(f"pulling {image} failed: {message}",
                                            details={"endpoint": self.endpoint, "image": image})
            sep = "@" if tag.startswith("sha256:") else ":"
            info = self._api.inspect_image(f"{repository}{sep}{tag}")
        return {"id": info["Id"], "repo_tags": info.get("RepoTags") or [], "size": info.get("Size", 0)}

    @_negotiated
    def create_container(
        self,
        *,
        image: str,
        name: str | None = None,
        ports: Sequence[Mapping[str, Any]] = (),
        env: Mapping[str, str] | Sequence[str] | None = None,
        command: str | Sequence[str] | None = None,
        detach: bool = True,
        restart_policy: str | None = None,
        labels: Mapping[str, str] | None = None,
        volumes: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Create and start a container; ports are published on the address the daemon listens on (the
        host's overlay /128), never on all of the host's addresses.

        ``detach=False`` waits (up to the read timeout) for the container to exit. A container that
        was created but failed to start is removed again, so a failed call leaves nothing behind.
        """
        exposed, bindings = _port_bindings(ports, host_ip=_endpoint_address(self.endpoint))
        environment = _environment(env)
        if command is not None and not isinstance(command, str):
            command = [str(part) for part in command]
        if restart_policy is not None and restart_policy not in RESTART_POLICIES:
            raise ValidationError(f"restart_policy is one of {', '.join(RESTART_POLICIES)}",
                                  details={"restart_policy": restart_policy})
        mounts = _named_volumes(volumes)
        with self._errors():
            host_config = self._api.create_host_config(
                port_bindings=bindings or None,
                restart_policy={"Name": restart_policy, "MaximumRetryCount": 0} if restart_policy else None,
                mounts=mounts or None,
            )
            created = self._api.create_container(
                image=image, name=name or None, command=command, environment=environment,
                ports=exposed or None, host_config=host_config, detach=detach,
                labels=dict(labels) if labels else None,
            )
            container_id = created["Id"]
            try:
                self._api.start(container_id)
                exit_code = None
                if not detach:
                    exit_code = self._api.wait(container_id, timeout=self.read_timeout).get("StatusCode")
            except BaseException:
                with contextlib.suppress(Exception):
                    self._api.remove_container(container_id, force=True)
                raise
            info = self._api.inspect_container(container_id)
        result = {
            "id": info["Id"],
            "name": info["Name"].lstrip("/"),
            "status": info["State"]["Status"],
        }
        if exit_code is not None:
            result["exit_code"] = exit_code
        return result

    @_negotiated
    def list_containers(self, *, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002 - docker ps -a
        """Containers like ``docker ps`` shows them: status reads "Up 30 seconds", "Exited (0) ...".

        One API call: docker-py's high-level ``containers.list()`` inspects every container too.
        """
        with self._errors():
            rows = self._api.containers(all=all)
        return [
            {
                "id": row["Id"],
                "name": (row.get("Names") or ["/"])[0].lstrip("/"),
                "image": row.get("Image"),
                "status": row.get("Status"),
                "ports": _ports_of(row.get("Ports") or []),
            }
            for row in rows
        ]

    @_negotiated
    def delete_container(self, *, container_id: str, force: bool = False) -> None:
        """Remove a container; a running one needs ``force`` (else the daemon's 409 becomes a 502)."""
        if not container_id:
            raise ValidationError("container_id is required")
        with self._errors():
            self._api.remove_container(container_id, force=force)

    @_negotiated
    def delete_image(self, *, image_id: str) -> None:
        if not image_id:
            raise ValidationError("image_id is required")
        with self._errors():
            self._api.remove_image(image_id)

    @_negotiated
    def list_images(self) -> list[dict[str, Any]]:
        """Images like ``docker images`` (top-level only): ``[{id, repo_tags, size, created}]``."""
        with self._errors():
            rows = self._api.images()
        return [
            {
                "id": row["Id"],
                "repo_tags": [t for t in (row.get("RepoTags") or []) if t != "<none>:<none>"],
                "size": row.get("Size", 0),
                "created": _epoch_iso(row.get("Created")),
            }
            for row in rows
        ]

    @_negotiated
    def inspect_container(self, *, container_id: str) -> dict[str, Any]:
        """One container's settings and state. Environment values are never returned: only the keys."""
        if not container_id:
            raise ValidationError("container_id is required")
        with self._errors():
            info = self._api.inspect_container(container_id)
        state = info.get("State") or {}
        config = info.get("Config") or {}
        host_config = info.get("HostConfig") or {}
        policy = host_config.get("RestartPolicy") or {}
        return {
            "id": info["Id"],
            "name": info.get("Name", "").lstrip("/"),
            "image": config.get("Image"),
            "image_id": info.get("Image"),
            "status": state.get("Status"),
            "state": {
                "status": state.get("Status"),
                "running": bool(state.get("Running")),
                "exit_code": state.get("ExitCode"),
                "started_at": state.get("StartedAt"),
                "finished_at": state.get("FinishedAt"),
                "restart_count": info.get("RestartCount", 0),
                "error": state.get("Error") or "",
            },
            "ports": _inspect_ports((info.get("NetworkSettings") or {}).get("Ports") or {}),
            "restart_policy": {"name": policy.get("Name") or "no",
                               "maximum_retry_count": policy.get("MaximumRetryCount", 0)},
            "created": info.get("Created"),
            "labels": config.get("Labels") or {},
            "env_keys": sorted({item.split("=", 1)[0] for item in config.get("Env") or []}),
            "command": config.get("Cmd"),
            "volumes": [
                {"name": m.get("Name"), "container_path": m.get("Destination"), "read_only": not m.get("RW", True)}
                for m in info.get("Mounts") or [] if m.get("Type") == "volume"
            ],
        }

    @_negotiated
    def container_logs(
        self,
        *,
        container_id: str,
        tail: int = 200,
        since: int | dt.datetime | None = None,
        timestamps: bool = False,
        cap_bytes: int = LOG_CAP_BYTES,
    ) -> dict[str, Any]:
        """stdout and stderr of a container, oldest first: ``{logs, truncated}``.

        The daemon's stream is read chunk by chunk and closed at ``cap_bytes``: a container that printed
        10 MiB costs 1 MiB here, not 10. Text is UTF-8 (invalid bytes replaced, a character cut at the cap
        dropped).
        """
        if not container_id:
            raise ValidationError("container_id is required")
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts: list[str] = []
        size = 0
        truncated = False
        with self._errors():
            stream = self._api.logs(container_id, stdout=True, stderr=True, stream=True, follow=False,
                                    tail=tail, since=since or None, timestamps=timestamps)
            try:
                for chunk in stream:
                    if size + len(chunk) > cap_bytes:
                        parts.append(decoder.decode(chunk[: cap_bytes - size]))
                        truncated = True
                        break
                    size += len(chunk)
                    parts.append(decoder.decode(chunk))
            finally:
                stream.close()
        if not truncated:
            parts.append(decoder.decode(b"", final=True))
        return {"logs": "".join(parts), "truncated": truncated}

    @_negotiated
    def start_container(self, *, container_id: str) -> dict[str, Any]:
        with self._errors():
            self._api.start(container_id)
        return self._brief(container_id)

    @_negotiated
    def stop_container(self, *, container_id: str, timeout_s: int | None = None) -> dict[str, Any]:
        """Stop (SIGTERM, SIGKILL after ``timeout_s``, default the container's own, 10 s)."""
        with self._errors():
            self._api.stop(container_id, timeout=timeout_s)
        return self._brief(container_id)

    @_negotiated
    def restart_container(self, *, container_id: str, timeout_s: int | None = None) -> dict[str, Any]:
        with self._errors():
            self._api.restart(container_id, timeout=timeout_s if timeout_s is not None else 10)
        return self._brief(container_id)

    def _brief(self, container_id: str) -> dict[str, Any]:
        with self._errors():
            info = self._api.inspect_container(container_id)
        return {"id": info["Id"], "name": info["Name"].lstrip("/"), "status": info["State"]["Status"]}

    def close(self) -> None:
        """Close the connection pool and remove the PEM files."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._api.close()
        self._cleanup()

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _endpoint_address(endpoint: str) -> str | None:
    """The IP literal of ``tcp://[addr]:port`` (the overlay /128), or None for a name."""
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _port_bindings(
    ports: Sequence[Mapping[str, Any]], *, host_ip: str | None = None
) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    # Without a host IP dockerd publishes on 0.0.0.0 and ::, i.e. on every address of the node, public
    # ones included: the overlay /128 keeps published ports inside the SDWAN network, like the daemon.
    exposed: list[tuple[int, str]] = []
    bindings: dict[str, Any] = {}
    for port in ports or ():
        try:
            container = int(port["container"])
            host = int(port["host"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError("each port needs integer 'host' and 'container'", details={"port": port}) from exc
        protocol = str(port.get("protocol") or "tcp").lower()
        if protocol not in PROTOCOLS or not (0 < container < 65536 and 0 < host < 65536):
            raise ValidationError("ports are 1-65535 and protocol one of tcp, udp, sctp", details={"port": port})
        exposed.append((container, protocol))
        bindings[f"{container}/{protocol}"] = (host_ip, host) if host_ip else host
    return exposed, bindings


def _environment(env: Mapping[str, str] | Sequence[str] | None) -> list[str] | None:
    if not env:
        return None
    if isinstance(env, Mapping):
        return [f"{key}={value}" for key, value in env.items()]
    if isinstance(env, str):
        raise ValidationError("env is an object or a list of 'KEY=value' strings")
    return [str(item) for item in env]


def _shape_version(info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": info.get("Version"),
        "api_version": info.get("ApiVersion"),
        "min_api_version": info.get("MinAPIVersion"),
        "os": info.get("Os"),
        "arch": info.get("Arch"),
        "kernel_version": info.get("KernelVersion"),
    }


def _epoch_iso(value: Any) -> str | None:
    if not isinstance(value, int | float) or value <= 0:
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _named_volumes(volumes: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Named volumes only (``{name, container_path, read_only?}``): never a bind mount of a node path."""
    mounts = []
    for volume in volumes or ():
        name = str(volume.get("name") or "")
        target = str(volume.get("container_path") or "")
        if not name or "/" in name or name.startswith(".") or not target.startswith("/") or ".." in target.split("/"):
            raise ValidationError("a volume is {name, container_path}: a volume name (no '/') and an absolute path",
                                  details={"volume": dict(volume)})
        mounts.append(docker.types.Mount(target=target, source=name, type="volume",
                                         read_only=bool(volume.get("read_only", False))))
    return mounts


def registry_of(image: str) -> str:
    """The registry an image reference pulls from (``docker.io`` when it names none), lower-cased."""
    repository, _tag = parse_repository_tag(image)
    registry, _name = docker.auth.resolve_repository_name(repository)
    return "docker.io" if registry == docker.auth.INDEX_NAME else registry.lower()


def _inspect_ports(ports: Mapping[str, Any]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, int, str], dict[str, Any]] = {}
    for key, bindings in ports.items():
        number, _, protocol = key.partition("/")
        for binding in bindings or [{}]:
            host = binding.get("HostPort")
            row = (int(host) if host else None, int(number), protocol or "tcp")
            seen.setdefault(row, {"host": row[0], "container": row[1], "protocol": row[2]})
    return sorted(seen.values(), key=lambda p: (p["container"], p["protocol"], p["host"] or 0))


def _ports_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The daemon lists a published port once per address family (0.0.0.0 and ::): show it once.
    seen: dict[tuple[Any, int, str], dict[str, Any]] = {}
    for row in rows:
        key = (row.get("PublicPort"), row["PrivatePort"], row.get("Type", "tcp"))
        seen.setdefault(key, {"host": key[0], "container": key[1], "protocol": key[2]})
    return sorted(seen.values(), key=lambda p: (p["container"], p["protocol"], p["host"] or 0))


# --- one client per host -------------------------------------------------------------------------------
_engines: dict[str, tuple[str, DockerEngine]] = {}
_engines_lock = threading.Lock()


def engine_for(
    key: str,
    *,
    endpoint: str,
    ca_pem: str,
    cert_pem: str,
    key_pem: str,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    refused_retry_s: float = 0,
) -> DockerEngine:
    """The cached engine for ``key`` (a host id), so its TLS connection pool is reused across calls;
    a new one when the endpoint, key material or timeouts changed (the old one is closed)."""
    material = "\0".join(
        [endpoint, ca_pem, cert_pem, key_pem, str(connect_timeout), str(read_timeout), str(refused_retry_s)]
    )
    fingerprint = hashlib.sha256(material.encode()).hexdigest()
    with _engines_lock:
        cached = _engines.get(key)
        if cached and cached[0] == fingerprint and not cached[1].closed:
            return cached[1]
        engine = DockerEngine(endpoint=endpoint, ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem,
                              connect_timeout=connect_timeout, read_timeout=read_timeout,
                              refused_retry_s=refused_retry_s)
        _engines[key] = (fingerprint, engine)
    if cached:
        cached[1].close()
    return engine


def forget_engine(key: str) -> None:
    """Close and drop the cached engine of ``key`` (host decommissioned, certificates revoked)."""
    with _engines_lock:
        cached = _engines.pop(key, None)
    if cached:
        cached[1].close()


def close_all_engines() -> None:
    with _engines_lock:
        cached = list(_engines.values())
        _engines.clear()
    for _fingerprint, engine in cached:
        engine.close()
