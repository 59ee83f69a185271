"""Under /api/ an unexpected exception is the JSON error shape (InternalError, 500), DEBUG or not: never
Django's debug page, whose frame locals would show tokens and keys."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from powernode.urls import handler404, handler500  # noqa: F401 - this test URLconf's handlers are the platform's

SECRET_IN_A_LOCAL = "pno_not-for-your-eyes"


@api_view(["GET"])
@permission_classes([AllowAny])
def drf_boom(request):  # noqa: ANN001, ANN201
    token = SECRET_IN_A_LOCAL  # noqa: F841 - a frame local the debug page would print
    raise RuntimeError("a bug in a DRF view")


def django_boom(request):  # noqa: ANN001, ANN201
    token = SECRET_IN_A_LOCAL  # noqa: F841
    raise RuntimeError("a bug in a plain view")


def page_boom(request):  # noqa: ANN001, ANN201
    raise RuntimeError("a bug in a page")


urlpatterns = [
    path("api/v1/test-boom/drf", drf_boom),
    path("api/v1/test-boom/django", django_boom),
    path("test-boom/page", page_boom),
    path("", include("powernode.urls")),
]


@pytest.fixture
def boom_client(settings):  # noqa: ANN001, ANN201 - pytest-django settings
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("url", ["/api/v1/test-boom/drf", "/api/v1/test-boom/django"])
def test_an_unexpected_exception_under_api_is_the_json_error_shape(boom_client, settings, url, debug, caplog):
    settings.DEBUG = debug
    response = boom_client.get(url)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["type"] == "InternalError"
    assert set(body["error"]) == {"type", "message", "details"}
    assert SECRET_IN_A_LOCAL.encode() not in response.content and b"Traceback" not in response.content
    assert "a bug in" in caplog.text  # the traceback is in the log instead


def test_the_test_client_still_sees_the_exception(settings):
    settings.ROOT_URLCONF = __name__
    with pytest.raises(RuntimeError, match="a bug in a DRF view"):
        Client().get("/api/v1/test-boom/drf")


def test_pages_outside_api_keep_djangos_handling(boom_client, settings):
    settings.DEBUG = True
    response = boom_client.get("/test-boom/page")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")
    assert b"RuntimeError" in response.content  # the debug page, for a developer's browser
