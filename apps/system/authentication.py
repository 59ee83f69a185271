"""Bearer authentication for operators (tokens from ``create_operator_token``).

A token authenticates while it is neither revoked nor expired and its user is active. Failed attempts
are counted per client address (``powernode.throttling``): past the rate, attempts get a 429.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone
from rest_framework import authentication
from rest_framework.request import Request

from apps.system.models import OperatorToken
from powernode import tokens
from powernode.db import any_datetime, columns, fetch
from powernode.errors import NotAuthenticated
from powernode.throttling import FailedAuthThrottle


def bearer_token(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("Use 'Authorization: Bearer <token>'.")
    return value.strip()


def operator_for_token(token: str):  # noqa: ANN201 - returns the user model
    """The active user a valid operator token belongs to, or NotAuthenticated.

    One query reads the token, its user and the user's permissions (their own and their groups'); the
    permissions are kept on the user object for this request only (``powernode.auth_backends``), so a
    revoked grant, group membership or token takes effect on the next request."""
    prefix = tokens.parse_token(token, tokens.OPERATOR)
    found = _token_user_permissions(prefix) if prefix else None
    if found is None or not tokens.token_matches(token, found.token_hash) or not found.user.is_active:
        raise NotAuthenticated("The operator token is not valid (unknown, revoked, or its user is inactive).")
    now = timezone.now()
    if found.expires_at is not None and found.expires_at <= now:
        raise NotAuthenticated(
            f"The operator token expired at {found.expires_at.isoformat()}; make a new one with create_operator_token."
        )
    if found.last_used_at is None or (now - found.last_used_at).total_seconds() > 60:
        OperatorToken.objects.filter(pk=found.pk).update(last_used_at=now)
    return found.user


@dataclass(frozen=True)
class _Found:
    pk: Any
    token_hash: str
    expires_at: datetime | None
    last_used_at: datetime | None
    user: Any


@functools.cache
def _token_sql(vendor: str) -> tuple[str, list[str]]:
    """The token's row, its user's columns and the user's permissions as one space-separated text (NULL
    when none; codenames have no spaces), for the database ``vendor``; column names follow the models."""
    user_model = get_user_model()
    q = connection.ops.quote_name
    token_t, user_t = q(OperatorToken._meta.db_table), q(user_model._meta.db_table)
    tok = columns(OperatorToken)
    user_fields = [f for f in user_model._meta.concrete_fields]
    user_perms = user_model._meta.get_field("user_permissions").remote_field.through._meta
    user_groups = user_model._meta.get_field("groups").remote_field.through._meta
    group_perms = Group._meta.get_field("permissions").remote_field.through._meta
    perm_t, ct_t = q(Permission._meta.db_table), q(ContentType._meta.db_table)

    def col(meta: Any, name: str) -> str:
        return q(meta.get_field(name).column)

    perm_name = f"ct.{q('app_label')} || '.' || p.{q('codename')}"
    perm_join = (
        f"JOIN {perm_t} p ON p.{q('id')} = {{link}} "
        f"JOIN {ct_t} ct ON ct.{q('id')} = p.{q(Permission._meta.get_field('content_type').column)}"
    )
    own = (
        f"SELECT {perm_name} AS name FROM {q(user_perms.db_table)} up "
        + perm_join.format(link=f"up.{col(user_perms, 'permission')}")
        + f" WHERE up.{col(user_perms, 'user')} = u.{q('id')}"
    )
    grouped = (
        f"SELECT {perm_name} AS name FROM {q(user_groups.db_table)} ug "
        f"JOIN {q(group_perms.db_table)} gp ON gp.{col(group_perms, 'group')} = ug.{col(user_groups, 'group')} "
        + perm_join.format(link=f"gp.{col(group_perms, 'permission')}")
        + f" WHERE ug.{col(user_groups, 'user')} = u.{q('id')}"
    )
    aggregate = "string_agg(perm.name, ' ')" if vendor == "postgresql" else "group_concat(perm.name, ' ')"
    selected = ", ".join(
        [f"t.{q(tok[name])}" for name in ("id", "token_hash", "expires_at", "last_used_at")]
        + [f"u.{q(f.column)}" for f in user_fields]
        + [f"(SELECT {aggregate} FROM ({own} UNION {grouped}) perm)"]
    )
    sql = (
        f"SELECT {selected} FROM {token_t} t JOIN {user_t} u ON u.{q('id')} = t.{q(tok['user'])} "
        f"WHERE t.{q(tok['prefix'])} = %s AND t.{q(tok['revoked_at'])} IS NULL"
    )
    return sql, [f.attname for f in user_fields]


def _token_user_permissions(prefix: str) -> _Found | None:
    sql, user_attnames = _token_sql(connection.vendor)
    rows = fetch(sql, [prefix])
    if not rows:
        return None
    first = rows[0]  # the prefix is unique
    user_model = get_user_model()
    values = []  # as the ORM would read them (SQLite: booleans and datetimes need its converters)
    for field, value in zip(user_model._meta.concrete_fields, first[4 : 4 + len(user_attnames)], strict=True):
        expression = field.get_col(user_model._meta.db_table)
        for convert in connection.ops.get_db_converters(expression) + field.get_db_converters(connection):
            value = convert(value, expression, connection)
        values.append(value)
    user = user_model.from_db(connection.alias, user_attnames, values)
    if not user.is_superuser:  # a superuser's checks never read them (User.has_perm answers first)
        user._perm_cache = set((first[-1] or "").split())
    token_pk = OperatorToken._meta.pk.to_python(first[0])
    return _Found(token_pk, first[1], any_datetime(first[2]), any_datetime(first[3]), user)


def operator_for_request(request, token: str):  # noqa: ANN001, ANN201 - a DRF or Django request; the user model
    """The operator of ``token`` sent by ``request``'s client: refused at once (429) while that address is
    throttled, and a failure (401) counts against it."""
    throttle = FailedAuthThrottle()
    throttle.refuse_if_throttled(request)
    try:
        return operator_for_token(token)
    except NotAuthenticated:
        throttle.record_failure(request)
        raise


class OperatorTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):  # noqa: ANN201 - DRF signature
        token = bearer_token(request)
        if token is None or token.startswith(f"{tokens.AGENT}_"):
            return None
        return operator_for_request(request, token), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="powernode"'
