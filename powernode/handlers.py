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
request rather than a new one (``ASGIHandler``); and a request that never needs that thread (an async view
that does its database work through ``powernode.db.db_call``) is not sent there just to run Django's
request_started and request_finished receivers, which only tidy that thread's own state.

A view marked ``sessionless`` (CSRF-exempt, authenticated by its own Bearer header: the action endpoint's
JSON calls, the agent's heartbeat, the hub's sync) has the requests it accepts served by the same chain
without the middleware that serve a browser's session (``SESSION_MIDDLEWARE``): the session, the CSRF
check, the logged-in user, messages, the login lockout. Every other layer — probes, request id and logs,
security headers, static files, common, clickjacking, JSON errors — still runs. The choice is made per
URL (resolved once per path) and per request (the view's own test of the headers), and the chain refuses
a request that leads anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import ImproperlyConfigured, RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.asgi import get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connections, reset_queries
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.urls.resolvers import ResolverMatch
from django.utils.functional import SimpleLazyObject, empty

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
    """The message storage is made when something first reads or adds a message (Django's builds its
    cookie and session storages, and a cookie signer, for every request: an API call never uses them). A
    storage nobody touched has nothing to store; storing messages may read and write the session, so a
    response after messages were read or added goes to the worker thread."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if _untouched(getattr(request, "_messages", None)):
            return response  # nothing read, nothing added: Django's update() would store nothing
        return super().process_response(request, response)

    def response_may_block(self, request: HttpRequest, response: HttpResponse) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and not _untouched(storage) and (storage.used or storage.added_new)


def _untouched(storage: Any) -> bool:
    return isinstance(storage, SimpleLazyObject) and storage._wrapped is empty


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


#: the middleware that serve a browser's session: its cookie and the session itself, the CSRF check, the
#: logged-in user, the messages kept for it, the lockout of its failed logins. A sessionless request (below)
#: is served by the chain without them; every other middleware listed in settings.MIDDLEWARE stays.
SESSION_MIDDLEWARE = frozenset({
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
})  # fmt: skip


def sessionless(when: Callable[[HttpRequest], bool] | None = None) -> Callable[[Any], Any]:
    """Marks a CSRF-exempt view that, for the requests ``when`` accepts (all of them without it), reads no
    session, CSRF cookie, ``request.user`` or message: it authenticates the request by its own header (a
    Bearer token). The served handler sends those requests through the chain without
    ``SESSION_MIDDLEWARE``; their answers are what the whole chain gives (``tests/core/test_asgi_handler.py``).
    ``when`` reads only the request's method, path and headers: it runs before any middleware."""

    def mark(view: Any) -> Any:
        if not getattr(view, "csrf_exempt", False):  # else skipping CsrfViewMiddleware would skip a check
            raise ImproperlyConfigured(f"{view.__qualname__} is not CSRF-exempt: it cannot be sessionless")
        view.sessionless_when = when or _every_request
        return view

    return mark


def _every_request(request: HttpRequest) -> bool:
    return True


#: paths up to this long have their answer kept (at most 1,024 of them: a bounded cache whatever clients send)
_KEPT_PATH_CHARS = 256


def _sessionless_when(urlconf: str, path_info: str) -> Callable[[HttpRequest], bool] | None:
    """The ``when`` of the sessionless view ``path_info`` leads to in ``urlconf``, or None. Resolving the
    action route costs ~40 µs, so the answer is kept per path (short ones)."""
    if len(path_info) > _KEPT_PATH_CHARS:
        return _resolved_when(urlconf, path_info)
    return _kept_when(urlconf, path_info)


def _resolved_when(urlconf: str, path_info: str) -> Callable[[HttpRequest], bool] | None:
    try:
        match = get_resolver(urlconf).resolve(path_info)
    except Resolver404:
        return None
    return getattr(match.func, "sessionless_when", None)


_kept_when = functools.lru_cache(maxsize=1024)(_resolved_when)


class SessionlessChain(base.BaseHandler):
    """The served chain without ``SESSION_MIDDLEWARE`` (its in-loop twins as in the whole chain), for the
    requests a sessionless view accepts. It answers only those: a request it resolves to any other view
    (a middleware changed ``request.urlconf``) is refused as a server error, never served without the
    checks that view may need."""

    def __init__(self) -> None:
        super().__init__()
        with _twins_imported(), _middleware_listed_without(SESSION_MIDDLEWARE):
            self.load_middleware(is_async=True)

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = super().resolve_request(request)
        if getattr(match.func, "sessionless_when", None) is None:
            raise ImproperlyConfigured(f"{request.path_info} led to {match.view_name}, which is not sessionless")
        return match


#: Django's own receivers of request_started and request_finished. Each tidies the state of the thread it runs
#: in — that thread's database connections and query log, its caches, its URLconf — so it has nothing to do
#: in a request thread the request never used.
THREAD_STATE_RECEIVERS = frozenset({reset_queries, close_old_connections, close_caches, reset_urlconf})


def _thread_state_only(signal: Signal, sender: type) -> bool:
    """Every live receiver of ``signal`` is one of Django's thread-tidying ones (none added by a project or
    library, none async): only then may the handler run them later, or in the loop."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    return not async_receivers and all(receiver in THREAD_STATE_RECEIVERS for receiver in sync_receivers)


def _no_open_connection_here() -> bool:
    """This thread holds no open database connection: the server's event loop thread never does (Django
    refuses database work there); a loop run by a caller that has one (a test) closes its answers as Django
    does."""
    return all(conn.connection is None for conn in connections.all(initialized_only=True))


class RequestThread(ThreadPoolExecutor):
    """The one thread a request's synchronous code runs in (``ThreadSensitiveContext``'s executor). It runs
    the request_started receivers it was given before the first call the request sends it, and records
    whether the request sent it anything."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="django-request")
        self.used = False
        self.started: dict[str, Any] | None = None  # request_started's arguments, not yet sent

    def begin(self, started: dict[str, Any] | None) -> None:
        self.used, self.started = False, started

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        self.used = True
        started, self.started = self.started, None
        if started is None:
            return super().submit(fn, *args, **kwargs)

        def started_then_fn(*args: Any, **kwargs: Any) -> Any:
            signals.request_started.send(**started)  # where and before what Django's handler runs them
            return fn(*args, **kwargs)

        return super().submit(started_then_fn, *args, **kwargs)


class ASGIHandler(DjangoASGIHandler):
    """Django's ASGI handler whose middleware chain runs the in-loop twins of Django's own middleware, and
    whose requests' threads are kept for the next requests.

    Django gives each request a thread of its own for its synchronous code (``ThreadSensitiveContext``):
    the request_started and request_finished signals' receivers, sync views, the twins' session saves.
    Stock, that is a new thread per request, started and then joined by yet another thread. Here a
    finished request's one-thread executor goes back to a pool (at most ``max_idle_threads``) and the
    next request runs its sync code there: still one thread per request at a time, as a threaded WSGI
    server reuses its threads. A request that ended in an exception does not give its thread back.

    Stock, the request_started and request_finished receivers are two more trips to that thread, even for
    a request that never uses it otherwise. When the receivers are only Django's own thread-tidying ones
    (``THREAD_STATE_RECEIVERS``), request_started's run in the thread just before the request's first
    synchronous call there, and not at all when there is none; and when the request never used its thread
    and its response holds nothing to close but the request itself, the response is closed (and
    request_finished's receivers run) in the loop, whose thread holds no database connection. With any
    other receiver connected, the handler does what Django's does."""

    max_idle_threads = 64

    def __init__(self) -> None:
        super().__init__()
        self._idle_executors: list[RequestThread] = []
        self._sessionless = SessionlessChain()

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        """Django's, through the chain without the session's middleware for a request a sessionless view
        accepts (``sessionless``)."""
        when = _sessionless_when(settings.ROOT_URLCONF, request.path_info)
        if when is not None and when(request):
            return await self._sessionless.get_response_async(request)
        return await super().get_response_async(request)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # as Django's own
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle_executors.pop() if self._idle_executors else RequestThread()
        # handle() waits for every task it starts, and a cancelled sync call for its thread: once it
        # returns, nothing of this request runs in the executor any more
        async with ThreadSensitiveContext(executor=executor):
            try:
                await self.handle(scope, receive, send, executor)
            except BaseException:
                executor.shutdown(wait=False)
                raise
        if len(self._idle_executors) < self.max_idle_threads:
            self._idle_executors.append(executor)
        else:
            executor.shutdown(wait=False)

    async def handle(  # type: ignore[override]
        self, scope: dict[str, Any], receive: Any, send: Any, executor: RequestThread | None = None
    ) -> None:
        """Django 5.2's ``ASGIHandler.handle``, with request_started and the response's close as the class
        says (``executor``: this request's thread; without one, Django's behaviour)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        started = {"sender": self.__class__, "scope": scope}
        if executor is not None and _thread_state_only(signals.request_started, self.__class__):
            executor.begin(started)
        else:
            if executor is not None:
                executor.begin(None)
            await signals.request_started.asend(**started)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request: HttpRequest, send: Any) -> HttpResponse:
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the answer was sent
            return response

        # the disconnect listener first: it raises nothing unexpected that would keep process_request running
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # views may handle their cancellation
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if (
                executor is not None
                and not executor.used
                and all(closer == request.close for closer in response._resource_closers)
                and _thread_state_only(signals.request_finished, self.__class__)
                and _no_open_connection_here()
            ):
                # nothing of this request ran in its thread: nothing there to tidy. The request's own close
                # (its body stream, uploads) is the kind of closing Django does in the loop (body_file)
                response.close()
            else:
                await sync_to_async(response.close)()
        body_file.close()

    def load_middleware(self, is_async: bool = False) -> None:
        with _twins_imported():
            super().load_middleware(is_async)


@contextlib.contextmanager
def _middleware_listed_without(left_out: frozenset[str]) -> Iterator[None]:
    """While a chain is built (once, at start-up), ``settings.MIDDLEWARE`` lists all but ``left_out``: what
    Django's ``load_middleware`` reads."""
    listed = settings.MIDDLEWARE
    settings.MIDDLEWARE = [path for path in listed if path not in left_out]
    try:
        yield
    finally:
        settings.MIDDLEWARE = listed


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
