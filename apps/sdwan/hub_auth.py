"""Bearer authentication for hubs: a ``pnh_`` token (``system_sdwan_create_hub_token``) and nothing else.

The token's prefix finds the row (one indexed lookup), the sha256 proves the secret; a revoked token is
refused at once. Operator (``pno_``) and agent (``pna_``) tokens and sessions are 401 here, and a hub
token is 401 everywhere else (agent and operator authentication only take their own kinds).
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.sdwan.models import HubToken
from apps.sdwan.services import hub_token_touch
from powernode import tokens
from powernode.actors import Actor
from powernode.async_views import bearer_value
from powernode.errors import NotAuthenticated


@dataclass(frozen=True)
class HubPrincipal:
    """``request.user`` on hub endpoints: the token the hub authenticated with."""

    token: HubToken

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def actor(self) -> Actor:
        return Actor.for_hub(self.token.name)

    def get_username(self) -> str:
        return f"hub:{self.token.name}"

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False  # a hub holds no operator permission


def hub_for_token(token: str) -> HubToken:
    """The live hub token row ``token`` is, or ``NotAuthenticated``."""
    prefix = tokens.parse_token(token, tokens.HUB)
    if prefix is None:
        raise NotAuthenticated(
            "Hub endpoints need a hub token (pnh_...) from system_sdwan_create_hub_token.",
            details={"hint": "operator (pno_...) and agent (pna_...) tokens are not accepted here"},
        )
    row = HubToken.objects.filter(prefix=prefix).first()
    if row is None or row.revoked_at is not None or not tokens.token_matches(token, row.token_hash):
        raise NotAuthenticated(
            "The hub token is not valid (unknown or revoked).",
            details={"hint": "make a new one with system_sdwan_create_hub_token"},
        )
    hub_token_touch(row=row)
    return row


class HubTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer pnh_...``; anything else on a hub endpoint is a 401."""

    def authenticate(self, request: Request) -> tuple[HubPrincipal, str]:
        token = bearer_value(
            request.META,
            token_name="hub token",
            hint="the hub token comes from system_sdwan_create_hub_token",
        )
        return HubPrincipal(hub_for_token(token)), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="powernode-hub"'


class IsHub(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, HubPrincipal)
