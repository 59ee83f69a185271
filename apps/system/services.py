"""Operator accounts and tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.system.models import OperatorToken
from powernode import tokens
from powernode.errors import NotFound


@transaction.atomic
def operator_token_create(*, username: str, name: str = "") -> str:
    """A new Bearer token for an existing user; returns the token (only its hash is kept)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user named {username!r}. Create one with 'manage.py createsuperuser' first.")
    new = tokens.make_token(tokens.OPERATOR)
    OperatorToken.objects.create(user=user, prefix=new.prefix, token_hash=new.token_hash, name=name)
    return new.token


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
