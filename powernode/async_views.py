"""Pieces shared by the async endpoints that hold watch requests (the agent heartbeat, the hub sync).

Those endpoints are plain Django async views, not DRF views (a DRF view is sync and would pin a thread for
as long as a request is held), so they answer DRF's refusals in the API's error shape themselves.
"""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework import exceptions as drf

from powernode.errors import ApplicationError, ValidationError


def error_response(err: ApplicationError) -> JsonResponse:
    response = JsonResponse(err.as_dict(), status=err.status_code)
    if err.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="powernode"'
    return response


def application_error(exc: Exception) -> ApplicationError:
    """DRF's parse refusals as the API's error shape (apps.system.errors maps them the same way)."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, drf.UnsupportedMediaType):
        err = ValidationError(f"{exc.detail} Send 'Content-Type: application/json'.")
        err.status_code = 415
        return err
    if isinstance(exc, drf.ParseError):
        return ValidationError(f"The body is not valid JSON: {exc.detail}")
    raise exc


class MethodNotAllowed(ApplicationError):
    status_code = 405


def method_not_allowed(method: str) -> ApplicationError:
    return MethodNotAllowed(f'Method "{method}" not allowed.')
