"""DRF permission for read-only resource endpoints: the same ``system.*`` permissions as the actions."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class HasSystemPermission(BasePermission):
    """The view declares ``required_permission = "system.<codename>"``."""

    message = "You lack the permission needed for this resource."

    def has_permission(self, request: Request, view) -> bool:  # noqa: ANN001
        perm = getattr(view, "required_permission", None)
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if perm and not user.has_perm(perm):
            self.message = f"{user.get_username()} lacks the permission {perm}."
            return False
        return True
