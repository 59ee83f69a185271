"""The runtime seam: a managed container runtime (Docker today, k3s next) plugs into the platform here.

A runtime app subclasses :class:`RuntimeProvider` and calls :func:`register` from its ``AppConfig.ready()``.
``nodes`` (heartbeat, instance deletion, instance output), ``modules`` (assignment preconditions) and
``system`` (status, fleet overview) ask this registry and never import a runtime app, so a second
runtime is a new app, not edits across the house. Part of the kernel: imports no app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from powernode.actors import Actor


class RuntimeProvider:
    """What the platform needs to know of one runtime. Every hook has a harmless default."""

    #: the ``Module.runtime`` value of the catalog modules that produce this runtime, e.g. ``"docker"``
    name: str = ""
    #: the human name, e.g. ``"Docker Engine"``
    label: str = ""
    #: event kinds of this runtime start with this prefix, e.g. ``"system.docker"``
    event_prefix: str = ""
    #: the phases an agent may report for this runtime in a heartbeat (``runtimes.<name>.phase``)
    phases: tuple[str, ...] = ()
    #: event-kind prefixes operators filter by most (the event log's quick filters in the admin)
    quick_prefixes: tuple[str, ...] = ()

    # -- heartbeat ---------------------------------------------------------------------------------------
    def heartbeat_sql(self) -> str | None:
        """A ``UNION ALL`` part for the heartbeat's single read, or None when the runtime needs no rows.

        It takes exactly one ``%s`` parameter (the instance id as :func:`powernode.db.db_uuid` gives it)
        and selects nine text columns: the literal :attr:`name`, a sort key, then seven values (NULL where
        unused). The rows come back to :meth:`heartbeat_orders`. Called once per set of registered runtimes
        (the heartbeat caches the combined statement), so it must not depend on the request.
        """
        return None

    def heartbeat_orders(self, *, rows: list[tuple[Any, ...]], assigned_at: datetime | None) -> list[dict[str, Any]]:
        """The runtime orders of a heartbeat answer (``[{runtime, action, host_id?}]``).

        ``rows`` are this runtime's rows from :meth:`heartbeat_sql` (the seven value columns);
        ``assigned_at`` is when a module of this runtime was (most recently) assigned to the instance's
        template, None when none is.
        """
        return []

    # -- assignment and instance lifecycle -----------------------------------------------------------------
    def check_assignment(self, *, template_id: Any, template_name: str) -> None:
        """Raise an ApplicationError when a module of this runtime may not be assigned to the template yet."""

    def end_for_instance(self, *, instance: Any, actor: Actor) -> None:
        """The instance was deleted (inside that transaction): end this runtime on it at once."""

    def peer_in_use(self, *, instance_id: Any, overlay_address: str) -> list[dict[str, Any]]:
        """What of this runtime on the instance binds to ``overlay_address`` (its SDWAN /128) and is not
        gone yet, e.g. ``[{"runtime": "docker", "host_id": ..., "status": ...}]``; non-empty refuses the
        peer's detach (409)."""
        return []

    # -- what other surfaces show ---------------------------------------------------------------------------
    #: the keys :meth:`instance_fields` returns (declared up front so the API schema lists them)
    instance_field_names: tuple[str, ...] = ()

    def instance_fields(self, instance: Any) -> dict[str, Any]:
        """Fields this runtime adds to an instance's output (``system_get_instance``, the API)."""
        return {}

    def status(self) -> dict[str, Any]:
        """This runtime's part of ``platform_provisioning_status`` (e.g. ``{"docker_hosts": {...}}``)."""
        return {}

    def fleet(self, *, instance_ids: list[Any]) -> dict[str, Any]:
        """This runtime's part of the fleet overview (the admin index); bounded queries only.

        Keys (all optional): ``hosts_by_status`` ``[(status, label, count)]``, ``hosts_by_instance``
        ``{instance id: newest host}`` for ``instance_ids`` (the instances the overview lists),
        ``failed_hosts`` and ``failed_events`` (the latest failures, newest first).
        """
        return {}

    def admin_instance_panel(self, instance: Any) -> dict[str, Any]:
        """What the instance's admin page shows of this runtime: ``hosts`` (newest first, a few) and
        ``hint`` (what to check while the runtime is wanted but not there yet), both optional."""
        return {}


_PROVIDERS: dict[str, RuntimeProvider] = {}


def register(provider: RuntimeProvider) -> RuntimeProvider:
    """Add a runtime (from its app's ``ready()``); registering the same name twice replaces it (reloads)."""
    if not provider.name:
        raise ValueError(f"{type(provider).__name__} has no name")
    _PROVIDERS[provider.name] = provider
    return provider


def unregister(name: str) -> None:
    """Remove a runtime (tests that register a stand-in runtime clean up with this)."""
    _PROVIDERS.pop(name, None)


def get(name: str) -> RuntimeProvider | None:
    return _PROVIDERS.get(name)


def providers() -> tuple[RuntimeProvider, ...]:
    """Every registered runtime, in registration order (a tuple: callers may cache on it)."""
    return tuple(_PROVIDERS.values())


def peer_users(*, instance_id: Any, overlay_address: str) -> list[dict[str, Any]]:
    """Everything any runtime binds to the instance's ``overlay_address`` (see ``peer_in_use``)."""
    return [u for p in providers() for u in p.peer_in_use(instance_id=instance_id, overlay_address=overlay_address)]


def names() -> list[str]:
    return list(_PROVIDERS)
