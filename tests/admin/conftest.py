"""Admin page fixtures: a superuser, a staff operator without system.docker_provision, a fleet."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

VIEW_MODELS = [
    ("nodes", "view_nodetemplate"),
    ("nodes", "view_nodeinstance"),
    ("docker_hosts", "view_dockerhost"),
    ("docker_hosts", "change_dockerhost"),
    ("events", "view_event"),
    ("modules", "view_module"),
]


@pytest.fixture
def root_client(db, django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root-op", password="pw-root-op")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db, django_user_model):  # noqa: ANN201
    """A staff operator who may look at everything but holds no system.docker_provision."""
    user = django_user_model.objects.create_user("viewer", password="pw-viewer", is_staff=True)
    for app_label, codename in VIEW_MODELS:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    for codename in ["instance_view", "docker_view", "events_view", "sdwan_view"]:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="system", codename=codename))
    return user


@pytest.fixture
def viewer_client(viewer) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


def messages_of(response) -> list[str]:  # noqa: ANN001
    return [str(m) for m in response.context["messages"]] if response.context else []
