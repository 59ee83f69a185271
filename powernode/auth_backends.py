"""Django's model permissions backend, with fewer queries per request.

Every operator call checks one ``system.*`` permission (``run_action``, the resources' permission classes);
Django's ModelBackend reads the user's own permissions and their groups' permissions in two queries. Here it
is one UNION; and a caller that already knows which permission the request needs (the action endpoint) reads
it in the query that finds the token (:func:`holds_permission`) and keeps the answer on the user object
(:func:`remember_permission`). Either way the answer lives on that user object, which lives for one request:
a revoked grant, group membership or token takes effect on the next request. Part of the kernel: imports no
app.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import Exists, OuterRef

_KNOWN = "_powernode_known_perms"


def holds_permission(permission: str, *, user_field: str = "user_id") -> dict[str, Exists]:
    """Annotations for a query whose rows name a user in ``user_field``: ``own_permission`` and
    ``group_permission``, whether that user holds ``permission`` (``app_label.codename``) directly or
    through a group."""
    app_label, codename = permission.split(".", 1)
    named = {"permission__content_type__app_label": app_label, "permission__codename": codename}
    user_permissions = Permission.user_set.through.objects.filter(user_id=OuterRef(user_field), **named)
    group_permissions = Group.permissions.through.objects.filter(group__user=OuterRef(user_field), **named)
    return {"own_permission": Exists(user_permissions), "group_permission": Exists(group_permissions)}


def remember_permission(user: Any, permission: str, held: bool) -> None:
    """Keep, on this user object (one request), whether it holds ``permission`` (read by the caller)."""
    known = getattr(user, _KNOWN, None)
    if known is None:
        known = {}
        setattr(user, _KNOWN, known)
    known[permission] = bool(held)


class ModelPermissionsBackend(ModelBackend):
    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        known = getattr(user_obj, _KNOWN, None)
        if known is not None and obj is None and perm in known:
            return user_obj.is_active and known[perm]
        return super().has_perm(user_obj, perm, obj)

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            fields = ("content_type__app_label", "codename")
            if user_obj.is_superuser:
                rows = Permission.objects.order_by().values_list(*fields)
            else:  # no ORDER BY (Permission's Meta has one): SQLite refuses it inside a UNION
                own = Permission.objects.filter(user=user_obj).order_by().values_list(*fields)
                rows = own.union(Permission.objects.filter(group__user=user_obj).order_by().values_list(*fields))
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache
