"""GET /api/v1/actions/<name>: an action described (JSON) and runnable from the browsable API (session + CSRF).

The form POSTs the same JSON a Bearer client sends, so run_action's checks are the only ones: a user
without the action's permission gets 403 and nothing changes.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from jsonschema import Draft202012Validator

from apps.nodes.models import NodeTemplate
from powernode.registry import action, all_actions, get_action

pytestmark = pytest.mark.contract

URL = "/api/v1/actions/system_create_node_template"


def test_get_describes_the_action_with_an_example(api):
    response = api.client.get(URL)
    assert response.status_code == 200
    body = response.json()
    described = get_action("system_create_node_template")
    assert body["name"] == described.name and body["permission"] == "system.instance_manage"
    assert body["description"] == described.description != ""
    assert body["input_schema"] == described.input_schema
    assert body["example"] == {"name": "docker-nodes", "description": "Instances that run Docker Engine"}


def test_every_action_has_an_example_its_schema_accepts(api):
    listed = {a["name"]: a for a in api.client.get("/api/v1/actions/").json()["actions"]}
    for item in all_actions():
        example = listed[item.name]["example"]
        assert set(item.input_schema.get("required", [])) <= set(example), item.name
        Draft202012Validator(item.input_schema).validate(example)
        assert api.client.get(f"/api/v1/actions/{item.name}").json()["example"] == example


def test_registry_refuses_an_example_its_schema_rejects():
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        action(
            "test_never_registered",
            permission="system.instance_view",
            input_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
            example={"n": "not a number"},
        )
    assert "test_never_registered" not in {a.name for a in all_actions()}


def test_unknown_action_get_is_404_and_anonymous_is_401(api, db):
    missing = api.client.get("/api/v1/actions/no_such_action")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    anonymous = Client().get(URL)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "NotAuthenticated"


@pytest.fixture
def session(db, django_user_model):  # noqa: ANN201
    """An admin session (enforcing CSRF like a browser) for a staff user with the given system perms."""
    from django.contrib.auth.models import Permission

    def login(username: str, perms: list[str]) -> Client:
        user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
        for codename in perms:
            user.user_permissions.add(Permission.objects.get(content_type__app_label="system", codename=codename))
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        return client

    return login


def _page(client: Client, url: str = URL) -> str:
    response = client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def _csrf(page: str) -> str:
    data = re.search(r'<script type="application/json" id="drf_csrf">(.*?)</script>', page, re.S)
    assert data, "the browsable page carries its CSRF token"
    return json.loads(data.group(1))["csrfToken"]


def test_browsable_page_shows_description_permission_schema_and_a_prefilled_form(session):
    page = _page(session("templater", ["instance_manage"]))
    assert "system_create_node_template" in page
    assert "system.instance_manage" in page
    assert "input_schema" in page and "minLength" in page  # the JSON description, schema included
    assert "<p>Permission: <code>system.instance_manage</code></p>" in page
    form = re.search(r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', page, re.S)
    assert form, "a raw-data form to run the action"
    assert json.loads(html.unescape(form.group(1))) == {
        "name": "docker-nodes",
        "description": "Instances that run Docker Engine",
    }


def test_unknown_action_browsable_page_is_404(session):
    response = session("someone", ["instance_view"]).get("/api/v1/actions/no_such_action", HTTP_ACCEPT="text/html")
    assert response.status_code == 404


def test_running_from_the_browsable_page_with_a_session(session):
    client = session("templater", ["instance_manage"])
    token = _csrf(_page(client))
    body = json.dumps({"name": "from-the-form"})

    no_csrf = client.post(URL, data=body, content_type="application/json")
    assert no_csrf.status_code == 403 and not NodeTemplate.objects.exists()

    ran = client.post(URL, data=body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ran.status_code == 200, ran.content
    assert ran.json()["template"]["name"] == "from-the-form"
    assert NodeTemplate.objects.filter(name="from-the-form").exists()

    # the browsable API renders the answer as a page too
    again = client.post(
        URL, data=json.dumps({"name": "second"}), content_type="application/json", HTTP_X_CSRFTOKEN=token,
        HTTP_ACCEPT="text/html",
    )
    assert again.status_code == 200 and "second" in again.content.decode()


def test_without_the_permission_no_form_and_a_403_that_changes_nothing(session):
    client = session("looker", ["instance_view"])
    page = _page(client)
    assert "system.instance_manage" in page
    assert 'name="_content"' not in page  # no form for an action the user may not run
    token = _csrf(page)
    refused = client.post(
        URL, data=json.dumps({"name": "sneaky"}), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "PermissionDenied"
    assert error["details"] == {"permission": "system.instance_manage", "action": "system_create_node_template"}
    assert not NodeTemplate.objects.exists()


def test_bearer_clients_see_the_same_post_as_before(api_as):
    viewer = api_as("bearer-viewer", perms=["instance_view"])
    status, body = viewer.call("system_create_node_template", {"name": "nope"})
    assert status == 403 and body["error"]["details"]["permission"] == "system.instance_manage"
    status, body = viewer.call("system_create_node_template", {"bogus": 1})
    assert status == 403  # the permission is checked before the input, as always
    manager = api_as("bearer-manager", perms=["instance_manage"])
    status, body = manager.call("system_create_node_template", {"bogus": 1})
    assert status == 400 and body["error"]["type"] == "ValidationError"
    status, body = manager.call("system_create_node_template", raw="null")
    assert status == 400 and body["error"]["type"] == "ValidationError"
    assert not NodeTemplate.objects.exists()
