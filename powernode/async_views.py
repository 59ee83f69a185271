"""Pieces shared by the machine endpoints (the agent heartbeat and handshake, the hub sync): bearer tokens,
body limits, and the error answers of the async views that hold watch requests.

Those endpoints are plain Django async views, not DRF views (a DRF view is sync and would pin a thread for
as long as a request is held), so they answer DRF's refusals in the API's error shape themselves.
"""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework import exceptions as drf

from powernode.errors import ApplicationError, NotAuthenticated, PayloadTooLarge, ValidationError


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


def check_content_length(meta: dict, *, limit: int, what: str) -> None:
    """A declared body over ``limit`` bytes is a 413 before anything reads it (``what``: "agent requests")."""
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLarge(f"The body is {length} bytes; {what} are limited to {limit}.", details={"limit": limit})


def bearer_value(meta: dict, *, token_name: str, hint: str) -> str:
    """The token of ``Authorization: Bearer <token>``, or NotAuthenticated (401) naming the token wanted."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated(
            f"Authentication required: send 'Authorization: Bearer <{token_name}>'.", details={"hint": hint}
        )
    return value.strip()
