"""The kernel's middleware, async-capable so async views stay async (every middleware in the stack must be,
or Django runs the whole request, a held watch request included, in a thread): static files, and the
probe endpoints answered before everything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from powernode import health, metrics
from powernode.async_views import error_response
from powernode.errors import NotAuthenticated


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise (static files under uvicorn), async-capable: a static file is served from a worker
    thread, every other request goes on in the event loop. WhiteNoise 6 is sync-only."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(get_response, *args, **kwargs)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: Any) -> Any:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)


class ProbeEndpointsMiddleware:
    """``/healthz`` and ``/readyz`` (and ``/metrics``), answered before any other middleware.

    First in MIDDLEWARE, so a load balancer's health check needs no session, no CSRF token, no HTTPS
    redirect and no particular Host header: HAProxy and Prometheus may address a process by its IP.
    The answers build no URL from the Host header, so skipping ALLOWED_HOSTS for them exposes nothing.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        endpoint = _probe_endpoint(request.path_info)
        return endpoint(request) if endpoint else self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        endpoint = _probe_endpoint(request.path_info)
        if endpoint is None:
            return await self.get_response(request)
        if endpoint is healthz:
            return healthz(request)  # touches nothing: answered in the event loop
        # the database and the CA are blocking clients; thread_sensitive, like Django's sync views, so the
        # connection this opens is the one request_finished closes
        return await sync_to_async(endpoint)(request)


def healthz(request: HttpRequest) -> HttpResponse:
    return _json(200, health.liveness())


def readyz(request: HttpRequest) -> HttpResponse:
    ready, body = health.readiness()
    return _json(200 if ready else 503, body)


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not metrics.token_accepted(request.META.get("HTTP_AUTHORIZATION", "")):
        return error_response(NotAuthenticated("Send 'Authorization: Bearer <POWERNODE_METRICS_TOKEN>'."))
    body, content_type = metrics.render()
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


_PROBE_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": prometheus_metrics,
}


def _probe_endpoint(path: str) -> Callable[[HttpRequest], HttpResponse] | None:
    return _PROBE_ENDPOINTS.get(path.rstrip("/") or path)
