"""The user's permissions as the platform reads them (one UNION, in the backend and inside the operator token's
query) are exactly Django's stock ModelBackend's answer, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission

from apps.system.authentication import operator_for_token
from apps.system.services import operator_token_create
from powernode.auth_backends import ModelPermissionsBackend


def _stock(user_id: int) -> set[str]:
    return ModelBackend().get_all_permissions(get_user_model().objects.get(pk=user_id))


def test_own_and_group_permissions_match_django(db, make_operator):
    user = make_operator("mixed", perms=["instance_view", "instance_manage"])
    group = Group.objects.create(name="hosts")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="system", codename__startswith="docker_"))
    group.permissions.add(Permission.objects.get(content_type__app_label="system", codename="instance_view"))  # twice
    user.groups.add(group)
    stock = _stock(user.pk)
    assert len(stock) > 3 and "system.instance_manage" in stock

    fresh = get_user_model().objects.get(pk=user.pk)
    assert ModelPermissionsBackend().get_all_permissions(fresh) == stock
    assert operator_for_token(operator_token_create(username=user.username)).get_all_permissions() == stock


def test_no_permissions_read_as_none(db, make_operator):
    user = make_operator("empty")
    assert _stock(user.pk) == set()
    assert ModelPermissionsBackend().get_all_permissions(get_user_model().objects.get(pk=user.pk)) == set()
    token_user = operator_for_token(operator_token_create(username=user.username))
    assert token_user.get_all_permissions() == set() and not token_user.has_perm("system.instance_view")


def test_a_superuser_has_every_permission(db, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss")
    token_user = operator_for_token(operator_token_create(username=boss.username))
    assert token_user.has_perm("system.instance_manage")
    assert token_user.get_all_permissions() == _stock(boss.pk) == {
        f"{ct}.{code}" for ct, code in Permission.objects.values_list("content_type__app_label", "codename")
    }
