"""The HTTP surface around the actions: auth, the action list, resources, schema and docs, limits."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from powernode.registry import MAX_INPUT_BYTES, all_actions

pytestmark = pytest.mark.contract


def test_action_list_matches_the_registry(api):
    response = api.client.get("/api/v1/actions/")
    assert response.status_code == 200
    listed = response.json()["actions"]
    assert [a["name"] for a in listed] == [a.name for a in all_actions()]
    for item, action in zip(listed, all_actions(), strict=True):
        assert item["input_schema"] == action.input_schema
        assert item["permission"] == action.permission
        assert item["description"]


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer pno_000000000000_nope", "Basic dXNlcjpwdw==", "Bearer pna_x_y"]
)
def test_missing_or_wrong_token_is_401(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post("/api/v1/actions/system_list_modules", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "NotAuthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_and_inactive_user_are_401(admin_user):
    from django.utils import timezone

    from apps.system.models import OperatorToken
    from apps.system.services import operator_token_create

    token = operator_token_create(username=admin_user.username)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post("/api/v1/actions/system_list_modules").status_code == 200
    admin_user.is_active = False
    admin_user.save()
    assert client.post("/api/v1/actions/system_list_modules").status_code == 401
    admin_user.is_active = True
    admin_user.save()
    OperatorToken.objects.update(revoked_at=timezone.now())
    assert client.post("/api/v1/actions/system_list_modules").status_code == 401


def test_session_auth_works_for_the_browsable_api(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/api/v1/instances/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"Instance" in response.content


def test_unknown_action_is_404(api):
    status, body = api.call("no_such_action", {})
    assert status == 404 and body["error"]["type"] == "NotFound"


def test_empty_body_means_empty_object(api):
    response = api.client.post("/api/v1/actions/system_list_modules")
    assert response.status_code == 200 and "modules" in response.json()


def test_oversize_body_is_413(api):
    status, body = api.call("system_create_node_template", {"name": "x", "description": "y" * (MAX_INPUT_BYTES + 10)})
    assert status == 413 and body["error"]["type"] == "PayloadTooLarge"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_wrong_method_is_405_in_error_shape(api, method):
    response = getattr(api.client, method)("/api/v1/actions/system_list_modules")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "MethodNotAllowed"


@pytest.mark.parametrize(
    "path, perm",
    [
        ("/api/v1/instances/", "instance_view"),
        ("/api/v1/templates/", "instance_view"),
        ("/api/v1/modules/", "instance_view"),
        ("/api/v1/sdwan/networks/", "sdwan_view"),
        ("/api/v1/sdwan/peers/", "sdwan_view"),
        ("/api/v1/events/", "events_view"),
    ],
)
def test_resources_need_their_view_permission(api_as, fleet, path, perm):
    outsider = api_as("outsider")
    denied = outsider.client.get(path)
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "PermissionDenied"
    viewer = api_as(f"viewer-{perm}", perms=[perm])
    response = viewer.client.get(path)
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 1  # the event log is cursor-paged: no count


def test_resource_filters(api, fleet):
    instances = api.client.get("/api/v1/instances/", {"network_id": fleet["network"]["id"]}).json()["results"]
    assert [i["name"] for i in instances] == ["node-1"]
    peers = api.client.get("/api/v1/sdwan/peers/", {"kind": "instance"}).json()["results"]
    assert [p["overlay_address"] for p in peers] == ["fd00:abcd:1::2"]
    live = api.client.get("/api/v1/modules/", {"lifecycle_state": "live"}).json()["results"]
    assert [m["name"] for m in live] == ["docker-engine"]
    bad = api.client.get("/api/v1/instances/", {"node_template_id": "not-a-uuid"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "ValidationError"
    missing = api.client.get("/api/v1/instances/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_openapi_schema_and_docs_are_served_offline(api):
    schema = api.client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/actions/{name}" in paths and "/api/v1/instances/" in paths
    docs = api.client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger" in html.lower()
    # assets come from the sidecar package, not a CDN, and the platform serves them itself (WhiteNoise)
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    import re

    scripts = re.findall(r'src="(/static/[^"]+)"', html)
    assert scripts
    for url in [*scripts, "/static/admin/css/base.css"]:
        response = api.client.get(url)
        assert response.status_code == 200, url


def test_create_operator_token_prints_only_the_token(admin_user, capsys):
    call_command("create_operator_token", admin_user.username)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("pno_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.strip()}")
    assert client.post("/api/v1/actions/system_list_modules").status_code == 200


def test_platform_admins_group_holds_every_system_permission(db):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.get(name="Platform admins")
    system_perms = set(Permission.objects.filter(content_type__app_label="system").values_list("codename", flat=True))
    assert {p.codename for p in group.permissions.all()} == system_perms
    assert {"docker_provision", "docker_operate", "sdwan_manage", "events_view"} <= system_perms


def test_powernode_setup_is_idempotent_and_gives_a_working_login(db, settings, tmp_path, capsys):
    from django.contrib.auth import get_user_model

    settings.VAR_DIR = tmp_path
    settings.PKI_LOCAL_CA_DIR = tmp_path / "pki"
    call_command("powernode_setup")
    password = (tmp_path / "admin_password").read_text().strip()
    token = (tmp_path / "operator_token").read_text().strip()
    call_command("powernode_setup")  # a second run changes nothing
    assert (tmp_path / "admin_password").read_text().strip() == password
    assert (tmp_path / "operator_token").read_text().strip() == token
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(password) and admin.groups.filter(name="Platform admins").exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    modules = client.post("/api/v1/actions/system_list_modules").json()["modules"]
    assert {m["name"] for m in modules} >= {"docker-engine", "k3s-server", "k3s-agent"}
    assert (tmp_path / "pki").is_dir()
