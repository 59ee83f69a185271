"""The ASGI handler the server runs: Django's, with Django's own middleware hooks run in the event loop.

Django's stock middleware (security, sessions, common, CSRF, authentication, messages, clickjacking) are
``MiddlewareMixin`` classes: under ASGI each of their ``process_request`` and ``process_response`` is
handed to the request's worker thread and awaited (``MiddlewareMixin.__acall__``), a dozen hand-offs per
request before the view runs. Their hooks only read headers and set attributes, save for the two that may
write a session; so here each runs as an *in-loop twin* (a subclass whose hooks run in the event loop, and
in the worker thread when they may touch the database — ``response_may_block``).

``settings.MIDDLEWARE`` keeps Django's dotted paths: Django's deploy checks find the security, CSRF and
clickjacking middleware by those names (security.W001–W003, and the HSTS, SSL-redirect and referrer checks
that only run when SecurityMiddleware is listed). Only the ASGI handler swaps them for their twins, while
it builds its middleware chain; the WSGI handler and the test client run Django's own classes.
``tests/core/test_asgi_handler.py`` sends the same requests through this handler and Django's stock one
and compares the answers.

Each request's synchronous code still runs in one thread of its own, but a thread kept from an earlier
request rather than a new one (``ASGIHandler``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware

#: what needs no protection under RFC 9110 (Django's CsrfViewMiddleware lets these through unchecked)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class _HooksInLoop:
    """Mixed into a Django ``MiddlewareMixin`` middleware: when awaited, its ``process_request`` and
    ``process_response`` run in the event loop, the latter in the worker thread when
    ``response_may_block``. Called synchronously it is Django's class, unchanged."""

    def hooks_in_loop(self) -> bool:
        """False: this configuration makes the hooks do I/O, Django's own ``__acall__`` runs them."""
        return True

    def response_may_block(self, request: HttpRequest, response: HttpResponse) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if not self.hooks_in_loop():
            return await super().__acall__(request)  # type: ignore[misc]
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)  # type: ignore[attr-defined]
        if hasattr(self, "process_response"):
            if self.response_may_block(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(_HooksInLoop, DjangoSecurityMiddleware):
    """Headers and the HTTPS redirect: reads settings and the request."""


class CommonMiddleware(_HooksInLoop, DjangoCommonMiddleware):
    """Disallowed user agents, ``APPEND_SLASH`` and ``PREPEND_WWW`` redirects (resolving a URL is in memory)."""


class XFrameOptionsMiddleware(_HooksInLoop, DjangoXFrameOptionsMiddleware):
    """One header."""


class AuthenticationMiddleware(_HooksInLoop, DjangoAuthenticationMiddleware):
    """Sets a lazy ``request.user``: the session and the user are read when a view first touches them
    (in its thread)."""


class SessionMiddleware(_HooksInLoop, DjangoSessionMiddleware):
    """Making the (lazy) session store reads nothing; the response saves it only when it was modified
    (or SESSION_SAVE_EVERY_REQUEST): that save goes to the worker thread."""

    def response_may_block(self, request: HttpRequest, response: HttpResponse) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(_HooksInLoop, DjangoMessageMiddleware):
    """Making the message storage reads nothing; storing messages may read and write the session, so a
    response after messages were read or added goes to the worker thread."""

    def response_may_block(self, request: HttpRequest, response: HttpResponse) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(_HooksInLoop, DjangoCsrfViewMiddleware):
    """Reading the CSRF cookie and setting it are header work; with CSRF_USE_SESSIONS they read and write
    the session, and Django's own hooks run. Checking an unsafe request reads its form body: that check
    goes to the worker thread; an exempt view or a safe method is answered in the loop."""

    def hooks_in_loop(self) -> bool:
        return not settings.CSRF_USE_SESSIONS

    async def process_view(self, request: HttpRequest, callback: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        check = super().process_view
        if self.hooks_in_loop() and (getattr(callback, "csrf_exempt", False) or request.method in _SAFE_METHODS):
            return check(request, callback, args, kwargs)
        return await sync_to_async(check, thread_sensitive=True)(request, callback, args, kwargs)


#: Django's middleware (as named in settings.MIDDLEWARE) -> the twin the ASGI handler runs instead
IN_LOOP_TWINS: dict[str, type] = {
    "django.middleware.security.SecurityMiddleware": SecurityMiddleware,
    "django.contrib.sessions.middleware.SessionMiddleware": SessionMiddleware,
    "django.middleware.common.CommonMiddleware": CommonMiddleware,
    "django.middleware.csrf.CsrfViewMiddleware": CsrfViewMiddleware,
    "django.contrib.auth.middleware.AuthenticationMiddleware": AuthenticationMiddleware,
    "django.contrib.messages.middleware.MessageMiddleware": MessageMiddleware,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": XFrameOptionsMiddleware,
}


class ASGIHandler(DjangoASGIHandler):
    """Django's ASGI handler whose middleware chain runs the in-loop twins of Django's own middleware, and
    whose requests' threads are kept for the next requests.

    Django gives each request a thread of its own for its synchronous code (``ThreadSensitiveContext``):
    the request_started and request_finished signals' receivers, sync views, the twins' session saves.
    Stock, that is a new thread per request, started and then joined by yet another thread. Here a
    finished request's one-thread executor goes back to a pool (at most ``max_idle_threads``) and the
    next request runs its sync code there: still one thread per request at a time, as a threaded WSGI
    server reuses its threads. A request that ended in an exception does not give its thread back."""

    max_idle_threads = 64

    def __init__(self) -> None:
        super().__init__()
        self._idle_executors: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # as Django's own
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self._idle_executors:
            executor = self._idle_executors.pop()
        else:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")
        # handle() waits for every task it starts, and a cancelled sync call for its thread: once it
        # returns, nothing of this request runs in the executor any more
        async with ThreadSensitiveContext(executor=executor):
            try:
                await self.handle(scope, receive, send)
            except BaseException:
                executor.shutdown(wait=False)
                raise
        if len(self._idle_executors) < self.max_idle_threads:
            self._idle_executors.append(executor)
        else:
            executor.shutdown(wait=False)

    def load_middleware(self, is_async: bool = False) -> None:
        with _twins_imported():
            super().load_middleware(is_async)


@contextlib.contextmanager
def _twins_imported() -> Iterator[None]:
    """While the chain is built (once, at start-up, before any request), ``load_middleware``'s import of a
    MIDDLEWARE entry gives the entry's twin when it has one."""
    import_string = base.import_string

    def twin_or_entry(path: str) -> Any:
        return IN_LOOP_TWINS.get(path) or import_string(path)

    base.import_string = twin_or_entry
    try:
        yield
    finally:
        base.import_string = import_string
