"""Django's model permissions backend with a user's permissions read in one query instead of two.

Every operator call checks one ``system.*`` permission (``run_action``, the resources' permission classes);
Django's ModelBackend reads the user's own permissions and their groups' permissions in two queries. Here it
is one UNION (``permission_names_sql``), computed per request as before (cached on the user object, which
lives for one request), so a revoked grant, group membership or token takes effect on the next request. The
operator token's query (apps/system/authentication.py) reads the same subquery with the token and hands its
answer to ``remember_permissions``. Part of the kernel: imports no app.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from powernode.db import fetch


def permission_names_sql(user_id: str) -> str:
    """A scalar SQL subquery: the permissions of the user whose id is the SQL expression ``user_id`` (their
    own and their groups'), as one text of ``app_label.codename`` names separated by spaces (codenames
    have none), NULL when there are none. For a hand-written query that reads them with other rows."""
    q = connection.ops.quote_name
    user_model = get_user_model()
    user_perms = user_model._meta.get_field("user_permissions").remote_field.through._meta
    user_groups = user_model._meta.get_field("groups").remote_field.through._meta
    group_perms = Group._meta.get_field("permissions").remote_field.through._meta

    def col(meta: Any, name: str) -> str:
        return q(meta.get_field(name).column)

    name = f"ct.{q('app_label')} || '.' || p.{q('codename')}"
    joins = (
        f"JOIN {q(Permission._meta.db_table)} p ON p.{q('id')} = {{link}} "
        f"JOIN {q(ContentType._meta.db_table)} ct ON ct.{q('id')} = p.{col(Permission._meta, 'content_type')}"
    )
    own = (
        f"SELECT {name} AS name FROM {q(user_perms.db_table)} up "
        + joins.format(link=f"up.{col(user_perms, 'permission')}")
        + f" WHERE up.{col(user_perms, 'user')} = {user_id}"
    )
    grouped = (
        f"SELECT {name} AS name FROM {q(user_groups.db_table)} ug "
        f"JOIN {q(group_perms.db_table)} gp ON gp.{col(group_perms, 'group')} = ug.{col(user_groups, 'group')} "
        + joins.format(link=f"gp.{col(group_perms, 'permission')}")
        + f" WHERE ug.{col(user_groups, 'user')} = {user_id}"
    )
    aggregate = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"(SELECT {aggregate}(perm.name, ' ') FROM ({own} UNION {grouped}) perm)"


def remember_permissions(user_obj: Any, names: str | None) -> None:
    """Keep the text ``permission_names_sql`` read on ``user_obj`` (for this request only, like the
    backend's own read). A superuser's is left unread: ``User.has_perm`` answers them first."""
    if not user_obj.is_superuser:
        user_obj._perm_cache = set((names or "").split())


class ModelPermissionsBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                fields = ("content_type__app_label", "codename")
                rows = Permission.objects.order_by().values_list(*fields)
                user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
            else:  # the same read the operator token's query makes (two placeholders: own, groups')
                (names,) = fetch(f"SELECT {permission_names_sql('%s')}", [user_obj.pk, user_obj.pk])[0]
                remember_permissions(user_obj, names)
        return user_obj._perm_cache
