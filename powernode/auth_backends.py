"""Django's model permissions backend with a user's permissions read in one query instead of two.

Every operator call checks one ``system.*`` permission (``run_action``, the resources' permission classes);
Django's ModelBackend reads the user's own permissions and their groups' permissions in two queries. Here it
is one UNION, computed per request as before (cached on the user object, which lives for one request), so a
revoked grant, group membership or token takes effect on the next request. Part of the kernel: imports no app.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission


class ModelPermissionsBackend(ModelBackend):
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
