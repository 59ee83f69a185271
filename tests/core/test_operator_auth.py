"""Operator credentials end: deactivated users lose their tokens, tokens expire, failed Bearer attempts
are throttled per client address, and the admin login locks out after repeated failures (django-axes)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.events.models import Event
from apps.system.models import OperatorToken
from apps.system.services import operator_token_create, operator_tokens_revoke_for_user
from powernode.actors import Actor

MODULES = "/api/v1/actions/system_list_modules"


def bearer(token: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def user_change_form(user, **changes) -> dict:  # noqa: ANN001
    """What the admin's user change form posts for ``user`` (a checkbox left out is off)."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [str(g.pk) for g in user.groups.all()],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


# -- deactivation ---------------------------------------------------------------------------------


def test_deactivating_a_user_in_the_admin_revokes_their_tokens(db, django_user_model, admin_user):
    token = operator_token_create(username=admin_user.username)
    assert bearer(token).post(MODULES).status_code == 200
    root = django_user_model.objects.create_superuser("root-op", password="pw-root-op")
    client = Client()
    client.force_login(root)

    response = client.post(
        f"/admin/auth/user/{admin_user.pk}/change/", user_change_form(admin_user, is_active="")
    )
    assert response.status_code == 302, response.content[:2000]
    admin_user.refresh_from_db()
    assert admin_user.is_active is False
    assert OperatorToken.objects.get(user=admin_user).revoked_at is not None
    assert Event.objects.filter(kind="system.operator.tokens_revoked").count() == 1

    # reactivating the user does not bring the old token back
    admin_user.is_active = True
    admin_user.save()
    response = bearer(token).post(MODULES)
    assert response.status_code == 401 and response.json()["error"]["type"] == "NotAuthenticated"


def test_saving_an_active_user_revokes_nothing(db, django_user_model, admin_user):
    operator_token_create(username=admin_user.username)
    root = django_user_model.objects.create_superuser("root-op", password="pw-root-op")
    client = Client()
    client.force_login(root)
    response = client.post(f"/admin/auth/user/{admin_user.pk}/change/", user_change_form(admin_user))
    assert response.status_code == 302
    assert OperatorToken.objects.get(user=admin_user).revoked_at is None


def test_revoke_service_revokes_every_live_token_once(db, admin_user):
    for _ in range(2):
        operator_token_create(username=admin_user.username)
    actor = Actor.system()
    assert operator_tokens_revoke_for_user(user=admin_user, actor=actor) == 2
    assert operator_tokens_revoke_for_user(user=admin_user, actor=actor) == 0
    assert not OperatorToken.objects.filter(user=admin_user, revoked_at__isnull=True).exists()
    assert Event.objects.filter(kind="system.operator.tokens_revoked").count() == 1


# (a token of an inactive user is refused at authentication: tests/core/test_api_surface.py)


# -- expiry ---------------------------------------------------------------------------------------


def test_expired_token_is_401_in_the_error_shape(db, admin_user):
    token = operator_token_create(username=admin_user.username, expires_in_days=1)
    assert bearer(token).post(MODULES).status_code == 200
    OperatorToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = bearer(token).post(MODULES)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "NotAuthenticated" and "expired" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_create_operator_token_expires_in_days(db, admin_user, capsys):
    call_command("create_operator_token", admin_user.username, "--expires-in-days", "7")
    token = capsys.readouterr().out.strip()
    row = OperatorToken.objects.get(user=admin_user)
    assert abs(row.expires_at - (timezone.now() + dt.timedelta(days=7))) < dt.timedelta(minutes=1)
    assert bearer(token).post(MODULES).status_code == 200
    with pytest.raises(CommandError, match="expires_in_days"):
        call_command("create_operator_token", admin_user.username, "--expires-in-days", "0")
    assert OperatorToken.objects.count() == 1


def test_token_without_expiry_keeps_working(db, admin_user):
    token = operator_token_create(username=admin_user.username)
    assert OperatorToken.objects.get().expires_at is None
    assert bearer(token).post(MODULES).status_code == 200


# -- throttling failed Bearer authentications -------------------------------------------------------


@override_settings(POWERNODE_AUTH_FAILURE_RATE="3/min")
def test_failed_bearer_attempts_are_throttled_per_address(db, admin_user):
    good = operator_token_create(username=admin_user.username)
    bad = "pno_" + "x" * 40
    for _ in range(3):
        assert bearer(bad).post(MODULES).status_code == 401
    response = bearer(bad).post(MODULES)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "Throttled" and error["details"]["retry_after_s"] >= 1
    assert int(response["Retry-After"]) >= 1
    # the address is throttled, whatever token it sends next; another address is not
    assert bearer(good).post(MODULES).status_code == 429
    assert bearer(good, address="192.0.2.7").post(MODULES).status_code == 200
    # a forged X-Forwarded-For does not give the throttled client a fresh address
    forged = bearer(bad)
    assert forged.post(MODULES, HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 429


@override_settings(POWERNODE_AUTH_FAILURE_RATE="3/min")
def test_successful_bearer_attempts_are_not_counted(db, admin_user):
    good = operator_token_create(username=admin_user.username)
    for _ in range(5):
        assert bearer(good).post(MODULES).status_code == 200


# -- admin login lockout (django-axes) ----------------------------------------------------------------


@override_settings(AXES_FAILURE_LIMIT=3)
def test_admin_login_locks_out_after_repeated_failures(db, django_user_model):
    django_user_model.objects.create_superuser("root-op", password="pw-root-op")
    client = Client()
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "root-op", "password": "wrong"})
        assert "_auth_user_id" not in client.session
    # locked out: even the right password is refused now
    response = client.post("/admin/login/", {"username": "root-op", "password": "pw-root-op", "next": "/admin/"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_admin_login_works_with_the_lockout_in_place(db, django_user_model):
    django_user_model.objects.create_superuser("root-op", password="pw-root-op")
    client = Client()
    client.post("/admin/login/", {"username": "root-op", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "root-op", "password": "pw-root-op", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
