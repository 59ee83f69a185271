"""Bearer authentication for agents: a ``pna_`` token acts for its own NodeInstance only.

The token's prefix finds the instance (one indexed lookup), the sha256 proves the secret. A deleted
instance's token stops working at once (its hash is cleared, and its status is checked here too).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.db import connection
from django.http import HttpRequest
from rest_framework import authentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.nodes.models import NodeInstance
from powernode import logs, tokens
from powernode.actors import Actor
from powernode.async_views import bearer_value
from powernode.db import aware, columns, fetch, text_datetime, uuid_text
from powernode.errors import NotAuthenticated

# Only the columns the agent endpoints need. The lookup is written as SQL: it runs on every agent
# request, and building it through the ORM cost several times its execution (bench/bench_handshake.py).
_AGENT_FIELDS = (
    "id",
    "name",
    "node_template_id",
    "status",
    "agent_token_hash",
    "agent_version",
    "wireguard_public_key",
    "last_heartbeat_at",
    "runtime_report",
)


def _lookup_sql() -> str:
    col = columns(NodeInstance)
    names = ", ".join(col.get(f, f) for f in _AGENT_FIELDS)
    return f"SELECT {names} FROM {NodeInstance._meta.db_table} WHERE {col['agent_token_prefix']} = %s"


def _instance_by_prefix(prefix: str) -> NodeInstance | None:
    rows = fetch(_lookup_sql(), [prefix])
    if not rows:
        return None
    values = list(rows[0])
    values[0], values[2] = uuid.UUID(uuid_text(values[0])), uuid.UUID(uuid_text(values[2]))
    # raw columns: SQLite gives text for both, PostgreSQL a datetime and (as Django sets psycopg up) JSON text
    if isinstance(values[7], str):
        values[7] = text_datetime(values[7])
    elif values[7] is not None:
        values[7] = aware(values[7])
    if isinstance(values[8], str):
        values[8] = json.loads(values[8])
    # from_db: a model instance as if the ORM had loaded it, the other fields deferred
    return NodeInstance.from_db(connection.alias, list(_AGENT_FIELDS), values)


@dataclass(frozen=True)
class AgentPrincipal:
    """``request.user`` on agent endpoints: the instance the token belongs to."""

    instance: NodeInstance

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def actor(self) -> Actor:
        return Actor.for_agent(self.instance)

    def get_username(self) -> str:
        return f"agent:{self.instance.name}"

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False  # agents hold no operator permission


def _bad_token() -> NotAuthenticated:
    return NotAuthenticated(
        "The agent token is not valid (unknown, rotated, or its instance was deleted).",
        details={"hint": "use the agent_token from system_provision_instance or rotate_agent_token"},
    )


def instance_for_agent_token(token: str) -> NodeInstance:
    """The live instance a valid agent token belongs to, or ``NotAuthenticated``."""
    prefix = tokens.parse_token(token, tokens.AGENT)
    if prefix is None:
        raise NotAuthenticated(
            "Agent endpoints need an agent token (pna_...) from system_provision_instance.",
            details={"hint": "operator tokens (pno_...) are not accepted here"},
        )
    instance = _instance_by_prefix(prefix)
    if (
        instance is None
        or instance.status == NodeInstance.Status.DELETED
        or not instance.agent_token_hash
        or not tokens.token_matches(token, instance.agent_token_hash)
    ):
        raise _bad_token()
    return instance


class AgentTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer pna_...``; anything else on an agent endpoint is a 401."""

    def authenticate(self, request: Request | HttpRequest) -> tuple[AgentPrincipal, str]:
        token = bearer_value(
            request.META,
            token_name="agent token",
            hint="the agent token comes from system_provision_instance",
        )
        instance = instance_for_agent_token(token)
        logs.bind(actor=f"agent:{instance.name}", instance_id=instance.id)
        return AgentPrincipal(instance), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="powernode-agent"'


class IsAgent(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, AgentPrincipal)
