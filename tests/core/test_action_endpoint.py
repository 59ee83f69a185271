"""POST /api/v1/actions/<name> with a Bearer token runs in the async endpoint (apps.system.views): the same
checks, answers and headers as ActionView, and a revoked grant, group membership or token takes effect on
the very next request (permissions are read per request, in one query)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.system import views
from apps.system.models import OperatorToken
from apps.system.services import operator_token_create

HEADERS = ("Content-Type", "Allow", "Vary", "WWW-Authenticate", "Retry-After")


def post(name: str, body: bytes | str, token: str, *, address: str = "127.0.0.1", **extra: str):  # noqa: ANN201
    return RequestFactory().post(
        f"/api/v1/actions/{name}", data=body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address, **extra,
    )  # fmt: skip


def both(name: str, body: bytes | str, token: str, *, address: str = "127.0.0.1", **extra: str) -> tuple:
    """(the async endpoint's answer, ActionView's answer) to the same request, each as (status, body, headers)."""
    fast_request = post(name, body, token, address=address, **extra)
    assert views._bearer_json_post(fast_request) == token  # the endpoint runs it itself, not through ActionView
    fast = async_to_sync(views.action_endpoint)(fast_request, name=name)
    slow = views._action_view(post(name, body, token, address=address, **extra), name=name)
    slow.render()
    return tuple((r.status_code, r.content, {h: r.get(h) for h in HEADERS}) for r in (fast, slow))


@pytest.fixture
def viewer(make_operator):  # noqa: ANN201
    user = make_operator("viewer", perms=["instance_view"])
    return user, operator_token_create(username=user.username)


@pytest.mark.parametrize(
    "name, body",
    [
        ("system_list_modules", "{}"),
        ("system_list_modules", ""),  # empty body: {}
        ("system_list_modules", "   "),
        ("system_list_modules", '{"unknown": 1}'),  # schema: 400
        ("system_list_modules", "null"),  # 400
        ("system_list_modules", "[1, 2]"),  # not an object: 400
        ("system_list_modules", '{"a": '),  # not JSON: 400
        ("system_list_modules", '{"a": NaN}'),  # not strict JSON: 400
        ("system_list_modules", "[" * 100_000),  # 413 before it is parsed
        ("no_such_action", "{}"),  # 404
        ("system_create_node_template", '{"name": "t1"}'),  # lacks instance_manage: 403
    ],
)
def test_same_answer_as_the_drf_view(catalog, viewer, name, body):
    fast, slow = both(name, body, viewer[1])
    assert fast == slow
    assert fast[2]["Content-Type"] == "application/json"


def test_same_refusal_of_a_bad_token(db):
    fast, slow = both("system_list_modules", "{}", "pno_000000000000_nope", address="127.0.0.9")
    assert fast == slow and fast[0] == 401 and fast[2]["WWW-Authenticate"] == 'Bearer realm="powernode"'


def test_a_mutating_action_runs_once_and_answers_the_same_shape(make_operator):
    user = make_operator("maker", perms=["instance_manage"])
    token = operator_token_create(username=user.username)
    request = post("system_create_node_template", '{"name": "fast"}', token)
    response = async_to_sync(views.action_endpoint)(request, name="system_create_node_template")
    assert response.status_code == 200
    assert json.loads(response.content)["template"]["name"] == "fast"


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_ACCEPT": "text/html"},  # the browsable page
        {"HTTP_ACCEPT": "application/json; indent=4"},
        {"QUERY_STRING": "format=api"},
        {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
        {"HTTP_AUTHORIZATION": "Bearer pna_000000000000_agent"},  # not an operator token: DRF's chain decides
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="},
    ],
)
def test_anything_else_is_left_to_the_drf_view(viewer, extra):
    request = post("system_list_modules", "{}", viewer[1])
    request.META.update(extra)
    assert views._bearer_json_post(request) is None


def test_a_revoked_grant_takes_effect_on_the_next_request(catalog, viewer):
    user, token = viewer
    assert both("system_list_modules", "{}", token)[0][0] == 200
    user.user_permissions.remove(Permission.objects.get(content_type__app_label="system", codename="instance_view"))
    fast, slow = both("system_list_modules", "{}", token)
    assert fast == slow and fast[0] == 403


def test_group_membership_gives_and_takes_permissions(catalog, make_operator):
    user = make_operator("member")
    token = operator_token_create(username=user.username)
    assert both("system_list_modules", "{}", token)[0][0] == 403
    group = Group.objects.create(name="viewers")
    group.permissions.add(Permission.objects.get(content_type__app_label="system", codename="instance_view"))
    user.groups.add(group)
    assert both("system_list_modules", "{}", token)[0][0] == 200
    group.permissions.clear()
    assert both("system_list_modules", "{}", token)[0][0] == 403


def test_a_revoked_token_takes_effect_on_the_next_request(catalog, viewer):
    _, token = viewer
    assert both("system_list_modules", "{}", token)[0][0] == 200
    OperatorToken.objects.filter(prefix=token.split("_")[1]).update(revoked_at=timezone.now())
    fast, slow = both("system_list_modules", "{}", token, address="127.0.0.8")
    assert fast == slow and fast[0] == 401


def test_token_user_and_permissions_cost_one_query(catalog, viewer):
    """The token with its user and their permissions (own and groups', one UNION) in one query, then the
    modules: two queries."""
    request = post("system_list_modules", "{}", viewer[1])
    OperatorToken.objects.update(last_used_at=timezone.now())  # no last_used_at write in this request
    with CaptureQueriesContext(connection) as queries:
        response = async_to_sync(views.action_endpoint)(request, name="system_list_modules")
    assert response.status_code == 200
    assert len(queries) == 2, [q["sql"] for q in queries]
