"""Bearer authentication for operators (tokens from ``create_operator_token``).

A token authenticates while it is neither revoked nor expired and its user is active. Failed attempts
are counted per client address (``powernode.throttling``): past the rate, attempts get a 429.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication
from rest_framework.request import Request

from apps.system.models import OperatorToken
from powernode import tokens
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
    """The active user a valid operator token belongs to, or NotAuthenticated."""
    prefix = tokens.parse_token(token, tokens.OPERATOR)
    row = None
    if prefix:
        row = OperatorToken.objects.select_related("user").filter(prefix=prefix, revoked_at=None).first()
    if row is None or not tokens.token_matches(token, row.token_hash) or not row.user.is_active:
        raise NotAuthenticated("The operator token is not valid (unknown, revoked, or its user is inactive).")
    now = timezone.now()
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticated(
            f"The operator token expired at {row.expires_at.isoformat()}; make a new one with create_operator_token."
        )
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        OperatorToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


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
