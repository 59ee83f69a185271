"""One place that turns every refusal into DESIGN §2's error shape, for DRF and plain Django views."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework import exceptions as drf
from rest_framework.response import Response

from powernode import errors

log = logging.getLogger(__name__)


def error_body(type_name: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"type": type_name, "message": message, "details": details or {}}}


def as_application_error(exc: Exception) -> errors.ApplicationError | None:
    """Map DRF/Django exceptions onto ours; None for anything unexpected."""
    if isinstance(exc, errors.ApplicationError):
        return exc
    if isinstance(exc, drf.ParseError):
        return errors.ValidationError(f"The body is not valid JSON: {exc.detail}")
    if isinstance(exc, drf.UnsupportedMediaType):
        err = errors.ValidationError(f"{exc.detail} Send 'Content-Type: application/json'.")
        err.status_code = 415
        return err
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return errors.NotAuthenticated(str(exc.detail))
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        return errors.PermissionDenied(str(getattr(exc, "detail", exc)) or "Permission denied.")
    if isinstance(exc, drf.NotFound | Http404):
        return errors.NotFound(str(getattr(exc, "detail", "")) or "Not found.")
    if isinstance(exc, drf.ValidationError):
        return errors.ValidationError("Invalid input.", details={"fields": exc.detail})
    if isinstance(exc, drf.APIException):
        err = errors.ApplicationError(str(exc.detail))
        err.status_code = exc.status_code
        return err
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    err = as_application_error(exc)
    if err is None:
        return None  # a real bug: let Django's 500 handling (and its logging) see it
    headers = {}
    if isinstance(err, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="powernode"'
    if isinstance(err, errors.Throttled | errors.RateLimitedError) and "retry_after_s" in err.details:
        headers["Retry-After"] = str(err.details["retry_after_s"])
    name = err.type_name
    if type(err) is errors.ApplicationError and isinstance(exc, drf.APIException):
        name = type(exc).__name__
    return Response(error_body(name, err.message, err.details), status=err.status_code, headers=headers)


def json_404(request, exception=None):  # noqa: ANN001 - Django handler signature
    if not request.path.startswith("/api/"):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return JsonResponse(error_body("NotFound", f"No such endpoint: {request.path}"), status=404)


def json_500(request):  # noqa: ANN001 - Django handler signature
    return JsonResponse(
        error_body("InternalError", "The platform failed unexpectedly; the error is logged."), status=500
    )


class ApiErrorsMiddleware(MiddlewareMixin):
    """Under /api/ an unexpected exception is the JSON error shape, DEBUG or not.

    Django's debug 500 page (frame locals: tokens, keys) is for browsers in development, never for an
    API client. The traceback is logged and ``got_request_exception`` sent, as Django does for an
    uncaught exception (so error reporters and the test client still see it). Sync and async capable
    (MiddlewareMixin): one sync-only middleware would run every request, held watches too, in a thread.
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        log.error("Internal Server Error: %s", request.path, exc_info=exception)
        got_request_exception.send(sender=type(self), request=request)
        response = json_500(request)
        response._has_been_logged = True  # logged above, with the traceback: Django need not log it again
        return response
