"""Operator accounts and tokens."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.events.services import event_record
from apps.system import kinds
from apps.system.models import OperatorToken
from powernode import tokens
from powernode.actors import Actor
from powernode.errors import NotFound, ValidationError

MAX_TOKEN_DAYS = 3650


@transaction.atomic
def operator_token_create(*, username: str, name: str = "", expires_in_days: int | None = None) -> str:
    """A new Bearer token for an existing user; returns the token (only its hash is kept).

    With ``expires_in_days`` the token stops authenticating that many days from now; without, it lasts
    until revoked.
    """
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user named {username!r}. Create one with 'manage.py createsuperuser' first.")
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise ValidationError(
                f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}.",
                details={"expires_in_days": expires_in_days},
            )
        expires_at = timezone.now() + dt.timedelta(days=expires_in_days)
    new = tokens.make_token(tokens.OPERATOR)
    OperatorToken.objects.create(
        user=user, prefix=new.prefix, token_hash=new.token_hash, name=name, expires_at=expires_at
    )
    return new.token


@transaction.atomic
def operator_tokens_revoke_for_user(*, user, actor: Actor) -> int:  # noqa: ANN001 - the user model
    """Revoke every live operator token of ``user`` (called when the user is deactivated); returns how many."""
    revoked = OperatorToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        event_record(
            kind=kinds.OPERATOR_TOKENS_REVOKED,
            actor=actor,
            data={"user": user.get_username(), "tokens": revoked, "reason": "user deactivated"},
        )
    return revoked


PLATFORM_ADMINS = "Platform admins"


def platform_admins_group_ensure() -> None:
    """The 'Platform admins' group exists and holds every ``system.*`` permission (also after a flush)."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=PLATFORM_ADMINS)
    group.permissions.add(*Permission.objects.filter(content_type__app_label="system"))


def platform_admin_ensure(*, username: str) -> str | None:
    """A superuser in 'Platform admins' named ``username``; returns its new password, or None if it existed."""
    import secrets

    from django.contrib.auth.models import Group

    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return None
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User.objects.create_superuser(username, f"{username}@localhost", password)
        platform_admins_group_ensure()
        user.groups.add(Group.objects.get(name=PLATFORM_ADMINS))
    return password


@transaction.atomic
def instance_delete_everywhere(*, instance_id: str, actor: Actor) -> dict:
    """``system_delete_instance``: the instance is deleted (token revoked), every runtime on it ended at once
    (its Docker host decommissioned, every certificate revoked: no agent is left to confirm), then it
    is detached from every SDWAN network. One transaction: it happens entirely or not at all.
    """
    from apps.nodes.services import instance_delete
    from apps.sdwan.models import SdwanPeer
    from apps.sdwan.services import peer_detach

    instance = instance_delete(instance_id=instance_id, actor=actor)
    detached = []
    for network_id in SdwanPeer.objects.filter(node_instance_id=instance.id).values_list("network_id", flat=True):
        peer = peer_detach(network_id=str(network_id), node_instance_id=str(instance.id), actor=actor)
        detached.append({"network_id": str(network_id), "overlay_address": peer.overlay_address})
    return {"id": str(instance.id), "name": instance.name, "status": instance.status, "peers_detached": detached}
