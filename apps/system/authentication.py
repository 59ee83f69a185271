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
from django.db import connection
from django.utils import timezone
from rest_framework import authentication
from rest_framework.request import Request

from apps.system.models import OperatorToken
from powernode import tokens
from powernode.auth_backends import permission_names_sql, remember_permissions
from powernode.db import as_read, columns, fetch
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


_TOKEN_COLUMNS = ("id", "token_hash", "expires_at", "last_used_at")


@functools.cache
def _token_sql(vendor: str) -> tuple[str, list[str]]:
    """The token's row, its user's columns and the user's permissions (``permission_names_sql``), for the
    database ``vendor``; column names follow the models."""
    user_model = get_user_model()
    q = connection.ops.quote_name
    tok = columns(OperatorToken)
    user_fields = list(user_model._meta.concrete_fields)
    selected = ", ".join(
        [f"t.{q(tok[name])}" for name in _TOKEN_COLUMNS]
        + [f"u.{q(f.column)}" for f in user_fields]
        + [permission_names_sql(f"u.{q(user_model._meta.pk.column)}")]
    )
    sql = (
        f"SELECT {selected} FROM {q(OperatorToken._meta.db_table)} t "
        f"JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = t.{q(tok['user'])} "
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
    values = as_read(user_model, user_model._meta.concrete_fields, first[4 : 4 + len(user_attnames)])
    user = user_model.from_db(connection.alias, user_attnames, values)
    remember_permissions(user, first[-1])
    token_fields = [OperatorToken._meta.get_field(name) for name in _TOKEN_COLUMNS]
    pk, token_hash, expires_at, last_used_at = as_read(OperatorToken, token_fields, first[:4])
    return _Found(pk, token_hash, expires_at, last_used_at, user)


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
