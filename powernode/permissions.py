"""The operator permissions (one table) and the DRF permission classes made from it.

Every ``system.*`` permission is declared here once: ``apps.system`` anchors them on its model (so they
are grantable to groups in the admin), the action registry checks them, and each app's viewsets use the
class named after one, e.g. ``DockerView`` for ``system.docker_view``. Part of the kernel: imports no app.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

APP_LABEL = "system"

PERMISSIONS = [
    ("instance_view", "View node templates, instances and modules"),
    ("instance_manage", "Create templates and provision instances"),
    ("sdwan_view", "View SDWAN networks and peers"),
    ("sdwan_manage", "Create SDWAN networks, attach peers, grant device access"),
    ("docker_view", "View managed Docker hosts and their containers"),
    ("docker_operate", "Pull images, run and delete containers"),
    ("docker_provision", "Assign runtime modules and decommission Docker runtimes"),
    ("docker_cli", "Export Docker CLI client certificates (root on every host of a network)"),
    ("events_view", "Read the event log"),
]

CODENAMES = frozenset(codename for codename, _ in PERMISSIONS)


def qualified(codename: str) -> str:
    """``docker_view`` → ``system.docker_view``."""
    return f"{APP_LABEL}.{codename}"


class SystemPermission(BasePermission):
    """Allows an authenticated user who holds ``permission`` (a ``system.*`` name)."""

    permission = ""
    message = "You lack the permission needed for this resource."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if self.permission and not user.has_perm(self.permission):
            self.message = f"{user.get_username()} lacks the permission {self.permission}."
            return False
        return True


def permission_class(name: str) -> type[SystemPermission]:
    """The DRF permission class for ``system.<codename>`` (or the bare codename)."""
    codename = name.split(".", 1)[1] if "." in name else name
    try:
        return _CLASSES[codename]
    except KeyError:
        raise ValueError(f"{name!r} is not one of the system permissions: {', '.join(sorted(CODENAMES))}")


def _class_name(codename: str) -> str:
    return "".join(part.capitalize() for part in codename.split("_"))  # docker_view → DockerView


_CLASSES: dict[str, type[SystemPermission]] = {
    codename: type(
        _class_name(codename),
        (SystemPermission,),
        {"permission": qualified(codename), "__doc__": f"DRF permission: the user holds {qualified(codename)}."},
    )
    for codename, _ in PERMISSIONS
}

InstanceView = _CLASSES["instance_view"]
InstanceManage = _CLASSES["instance_manage"]
SdwanView = _CLASSES["sdwan_view"]
SdwanManage = _CLASSES["sdwan_manage"]
DockerView = _CLASSES["docker_view"]
DockerOperate = _CLASSES["docker_operate"]
DockerProvision = _CLASSES["docker_provision"]
DockerCli = _CLASSES["docker_cli"]
EventsView = _CLASSES["events_view"]
