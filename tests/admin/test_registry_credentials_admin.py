"""Registry credentials in the admin: listed and shown read-only with registry and username; the password
appears on no page, neither in clear nor encrypted (issue 14: "the password appears in no ... admin page")."""

from __future__ import annotations

from apps.docker_hosts.models import RegistryCredential
from powernode.actors import Actor
from powernode.registry import run_action

PASSWORD = "s3cret-Registry-pass"  # noqa: S105 - a test value


def _set(django_user_model) -> RegistryCredential:  # noqa: ANN001
    run_action(
        name="docker_set_registry_credentials",
        actor=Actor.for_user(django_user_model.objects.get(username="root-op")),
        payload={"registry": "registry.lab:5001", "username": "puller", "password": PASSWORD},
    )
    return RegistryCredential.objects.get()


def test_list_and_page_show_registry_and_username_never_the_password(root_client, django_user_model):
    row = _set(django_user_model)
    pages = {
        "list": root_client.get("/admin/docker_hosts/registrycredential/"),
        "page": root_client.get(f"/admin/docker_hosts/registrycredential/{row.pk}/change/"),
        "events": root_client.get("/admin/events/event/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        assert PASSWORD not in html and row.password_encrypted not in html, name
    assert "registry.lab:5001" in pages["page"].content.decode() and "puller" in pages["page"].content.decode()
    assert "password_encrypted" not in pages["page"].content.decode()  # not even the field


def test_no_add_edit_or_delete_from_the_admin(root_client, django_user_model):
    row = _set(django_user_model)
    assert root_client.get("/admin/docker_hosts/registrycredential/add/").status_code == 403
    response = root_client.post(
        f"/admin/docker_hosts/registrycredential/{row.pk}/change/", {"registry": "x", "username": "y"}
    )
    assert response.status_code == 403
    assert root_client.post(f"/admin/docker_hosts/registrycredential/{row.pk}/delete/").status_code == 403
    assert RegistryCredential.objects.get().registry == "registry.lab:5001"
