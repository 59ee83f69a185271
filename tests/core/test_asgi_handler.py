"""The served ASGI handler (powernode.handlers) runs Django's own middleware as in-loop twins: the same
requests through it and through Django's stock ASGI handler get the same answers — headers, redirects,
CSRF refusals, a login that saves a session, messages kept in it across requests, an API call — while
``settings.MIDDLEWARE`` (what Django's deploy checks read) still names Django's classes."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.signals import request_finished, request_started
from django.views.decorators.csrf import csrf_exempt

from apps.system.services import operator_token_create
from powernode import handlers
from tests.asgi import asgi_request
from tests.factories import HubTokenFactory

pytestmark = pytest.mark.django_db(transaction=True)

#: cookies whose values differ per answer (random; messages name the new row's id): compared by presence and
#: attributes, not value
RANDOM_COOKIES = {"csrftoken", "sessionid", "messages"}
#: headers that differ per answer whoever answers (compared by presence)
PER_ANSWER_HEADERS = {"x-request-id", "expires", "date"}


class Browser:
    """Requests to one ASGI application in process, keeping cookies as a browser does."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, *, form: dict[str, str] | None = None, body: bytes = b"", headers: Any = ()
    ) -> tuple[int, dict[str, list[str]], bytes]:
        if form is not None:
            body = urlencode(form).encode()
            headers = [*headers, ("content-type", "application/x-www-form-urlencoded")]
        sent_headers = [("host", "127.0.0.1"), ("content-length", str(len(body))), *headers]
        if self.cookies:
            sent_headers.append(("cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        status, answer, content = asyncio.run(asgi_request(self.app, method, path, body, sent_headers))
        for header in answer.get("set-cookie", []):
            for name, morsel in SimpleCookie(header).items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return status, answer, content


def comparable(status: int, headers: dict[str, list[str]], body: bytes) -> tuple:
    """An answer with what differs per answer left out: random cookie values, CSRF tokens in the page, the
    request id, dates."""
    kept = {}
    for name, values in headers.items():
        if name == "set-cookie":
            values = sorted(_cookie_shape(v) for v in values)
        elif name in PER_ANSWER_HEADERS:
            values = ["<per answer>"]
        kept[name] = values
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b'name="csrfmiddlewaretoken" value=""', body)
    return status, kept, body


def _cookie_shape(header: str) -> str:
    name = header.split("=", 1)[0]
    if name in RANDOM_COOKIES:
        header = re.sub(r"^([^=]+)=[^;]*", r"\1=<value>", header)
        header = re.sub(r"expires=[^;]+", "expires=<date>", header)  # a second apart between the two runs
    return header


def csrf_token(page: bytes) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1).decode()


@pytest.fixture
def both() -> list[Browser]:
    return [Browser(DjangoASGIHandler()), Browser(handlers.ASGIHandler())]


def test_settings_name_djangos_middleware_and_the_served_handler_runs_their_twins() -> None:
    for path in handlers.IN_LOOP_TWINS:
        assert path in settings.MIDDLEWARE  # Django's deploy checks (security.W001-W003 and the rest) see them
    chain = _chain_classes(handlers.ASGIHandler())
    for twin in handlers.IN_LOOP_TWINS.values():
        assert twin in chain


def test_pages_redirects_and_refusals_are_answered_the_same(both: list[Browser]) -> None:
    cases = [
        ("GET", "/admin/login/", {}),  # security and clickjacking headers, a CSRF cookie set, Vary: Cookie
        ("GET", "/admin", {}),  # APPEND_SLASH's redirect (CommonMiddleware)
        ("GET", "/admin/", {}),  # not logged in: the redirect to the login page
        ("POST", "/admin/login/", {"form": {"username": "x", "password": "y"}}),  # no CSRF token: 403
        ("GET", "/api/v1/actions/", {}),  # an API page without credentials: 401/403 in the error shape
        ("HEAD", "/admin/login/", {}),
    ]
    answers = [[comparable(*browser.request(method, path, **kw)) for method, path, kw in cases] for browser in both]
    assert answers[0] == answers[1]
    statuses = [status for status, _, _ in answers[1]]
    assert statuses[0] == 200 and statuses[1] == 301 and statuses[2] == 302 and statuses[3] == 403
    assert answers[1][0][1]["x-frame-options"] == ["DENY"]
    assert any(c.startswith("csrftoken=") for c in answers[1][0][1]["set-cookie"])


def test_a_login_saves_its_session_and_messages_survive_the_redirect(both: list[Browser], django_user_model) -> None:  # noqa: ANN001
    django_user_model.objects.create_superuser("boss", password="a-long-password-1")
    flows = []
    for browser in both:
        _, _, page = browser.request("GET", "/admin/login/")
        token = csrf_token(page)
        form = {"username": "boss", "password": "a-long-password-1", "next": "/admin/", "csrfmiddlewaretoken": token}
        login = browser.request("POST", "/admin/login/", form=form)
        assert login[0] == 302, login[2][:500]
        session_key = browser.cookies["sessionid"]
        assert Session.objects.filter(session_key=session_key).exists()  # saved (in the worker thread)
        # a form that adds a message (stored in the session or a cookie) and redirects; the next page shows it
        _, _, page = browser.request("GET", "/admin/auth/group/add/")
        added = browser.request(
            "POST", "/admin/auth/group/add/", form={"name": "ops", "csrfmiddlewaretoken": csrf_token(page)}
        )
        assert added[0] == 302, added[2][:500]
        listing = browser.request("GET", "/admin/auth/group/")
        assert b"was added successfully" in listing[2]
        again = browser.request("GET", "/admin/auth/group/")  # shown once: the message was used up
        assert b"was added successfully" not in again[2]
        Group.objects.filter(name="ops").delete()  # the same form again for the other handler: the same message
        flows.append(
            [
                comparable(*login)[:2],
                comparable(*added)[:2],
                (listing[0], sorted(listing[1])),
                (again[0], sorted(again[1])),
            ]
        )
    assert flows[0] == flows[1]


def test_an_api_call_is_answered_the_same(both: list[Browser], admin_user) -> None:  # noqa: ANN001
    token = operator_token_create(username=admin_user.username)
    headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
    answers = [
        comparable(*browser.request("POST", "/api/v1/actions/system_list_modules", body=b"{}", headers=headers))
        for browser in both
    ]
    assert answers[0] == answers[1]
    assert answers[1][0] == 200


def test_a_finished_requests_thread_serves_the_next_request_and_concurrent_requests_get_their_own() -> None:
    app = handlers.ASGIHandler()
    threads: list[threading.Thread] = []  # the objects: an ended thread's ident may be given to a new one
    barrier: threading.Barrier | None = None

    def started(**kwargs: Any) -> None:  # request_started's receivers run in the request's own thread
        threads.append(threading.current_thread())
        if barrier is not None:
            barrier.wait(timeout=10)  # only two threads at once get past it

    request_started.connect(started)
    try:
        for _ in range(3):
            assert asyncio.run(asgi_request(app, "GET", "/admin/login/", b"", [("host", "127.0.0.1")]))[0] == 200
        assert len(threads) == 3 and len(set(threads)) == 1, threads  # one kept thread, reused
        threads.clear()
        barrier = threading.Barrier(2)

        async def two_at_once() -> list:
            login = [asgi_request(app, "GET", "/admin/login/", b"", [("host", "127.0.0.1")]) for _ in range(2)]
            return await asyncio.gather(*login)

        answers = asyncio.run(two_at_once())
        assert [status for status, _, _ in answers] == [200, 200]
        assert len(set(threads)) == 2  # each in a thread of its own (else the barrier would have timed out)
    finally:
        request_started.disconnect(started)


def _in_a_fresh_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a new thread, as the server's event loop runs: a thread without a database connection."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """What the served handler sends where: the threads request_started and request_finished were sent in
    (Django's own receivers stay connected as they are), and the calls given to request threads."""
    record: dict[str, list] = {"started": [], "finished": [], "submitted": []}
    for name, signal in (("started", request_started), ("finished", request_finished)):

        def send(sender: Any, _name: str = name, _send: Any = signal.send, **named: Any) -> Any:
            record[_name].append(threading.current_thread())
            return _send(sender, **named)

        monkeypatch.setattr(signal, "send", send)
    submit = handlers.RequestThread.submit

    def counted(self: handlers.RequestThread, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        record["submitted"].append(fn)
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(handlers.RequestThread, "submit", counted)
    return record


def test_a_request_that_never_needs_its_thread_is_not_sent_there(admin_user, sent: dict[str, list]) -> None:  # noqa: ANN001
    """The action endpoint (an async view; its database work goes to the loop's pool through db_call):
    Django's own request_started receivers are not run, request_finished's run in the loop, and the answer
    is the stock handler's."""
    token = operator_token_create(username=admin_user.username)
    headers = [
        ("host", "127.0.0.1"), ("content-length", "2"), ("authorization", f"Bearer {token}"),
        ("content-type", "application/json"),
    ]  # fmt: skip
    call = ("POST", "/api/v1/actions/system_list_modules", b"{}", headers)
    ours = _in_a_fresh_thread(lambda: asyncio.run(asgi_request(handlers.ASGIHandler(), *call)))
    assert sent["submitted"] == [] and sent["started"] == []
    assert len(sent["finished"]) == 1 and sent["finished"][0].name != "django-request"
    stock = _in_a_fresh_thread(lambda: asyncio.run(asgi_request(DjangoASGIHandler(), *call)))
    assert ours[0] == 200 and comparable(*ours) == comparable(*stock)


def test_a_sync_view_gets_request_started_first_in_its_own_thread(sent: dict[str, list]) -> None:
    app = handlers.ASGIHandler()
    status, _, _ = _in_a_fresh_thread(
        lambda: asyncio.run(asgi_request(app, "GET", "/admin/login/", b"", [("host", "127.0.0.1")]))
    )
    assert status == 200
    assert len(sent["started"]) == 1 and sent["started"][0].name.startswith("django-request")
    assert sent["finished"] == [sent["started"][0]]  # the response is closed in that thread too
    assert sent["submitted"]  # the view (and the response's close) went there


def test_any_other_receiver_gets_djangos_order(sent: dict[str, list], admin_user) -> None:  # noqa: ANN001
    """A receiver the handler does not know (a project's, a library's) is run as Django runs it: before the
    request, whether or not the request would have used its thread."""
    token = operator_token_create(username=admin_user.username)
    headers = [
        ("host", "127.0.0.1"), ("content-length", "2"), ("authorization", f"Bearer {token}"),
        ("content-type", "application/json"),
    ]  # fmt: skip
    seen: list[str] = []

    def started(**kwargs: Any) -> None:
        seen.append("started")

    def finished(**kwargs: Any) -> None:
        seen.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        call = ("POST", "/api/v1/actions/system_list_modules", b"{}", headers)
        status, _, _ = _in_a_fresh_thread(lambda: asyncio.run(asgi_request(handlers.ASGIHandler(), *call)))
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == 200 and seen == ["started", "finished"]
    assert len(sent["submitted"]) == 2  # both sent to the request's thread, as Django does


def test_the_message_storage_is_made_only_for_a_request_that_uses_it(
    admin_user, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    made: list[str] = []
    build = handlers.default_storage

    def counted(request: Any) -> Any:
        made.append(request.path)
        return build(request)

    monkeypatch.setattr(handlers, "default_storage", counted)
    token = operator_token_create(username=admin_user.username)
    headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
    browser = Browser(handlers.ASGIHandler())
    assert browser.request("POST", "/api/v1/actions/system_list_modules", body=b"{}", headers=headers)[0] == 200
    assert made == []  # an API call reads and adds no message
    assert browser.request("GET", "/admin/login/")[0] == 200  # the admin's page lists the messages it has
    assert made == ["/admin/login/"]


# -- sessionless requests: the chain without the session's middleware ---------------------------------------


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the served handler sent through its sessionless chain (the real chain, counted)."""
    taken: list[str] = []
    respond = handlers.SessionlessChain.get_response_async

    async def counted(self: handlers.SessionlessChain, request: Any) -> Any:
        taken.append(request.path)
        return await respond(self, request)

    monkeypatch.setattr(handlers.SessionlessChain, "get_response_async", counted)
    return taken


def _chain_classes(handler: Any) -> list[type]:
    """The classes of ``handler``'s middleware chain, outermost first."""
    chain = []
    middleware = handler._middleware_chain
    while middleware is not None:  # each layer: convert_exception_to_response's wrapper around an instance
        instance = getattr(middleware, "__wrapped__", middleware)
        chain.append(type(instance))
        middleware = getattr(instance, "get_response", None)
    return chain[:-1]  # the last: the handler's own _get_response_async


def test_the_sessionless_chain_is_the_whole_chain_without_the_sessions_middleware() -> None:
    served = handlers.ASGIHandler()
    whole, lean = _chain_classes(served), _chain_classes(served._sessionless)
    left_out = [cls for cls in whole if cls not in lean]
    assert lean == [cls for cls in whole if cls not in left_out]  # the rest, in the same order
    session_twins = {handlers.IN_LOOP_TWINS.get(path) for path in handlers.SESSION_MIDDLEWARE}
    assert {f"{cls.__module__}.{cls.__name__}" for cls in left_out if cls not in session_twins} == {
        "axes.middleware.AxesMiddleware"
    }
    assert len(left_out) == len(handlers.SESSION_MIDDLEWARE)
    assert handlers.SecurityMiddleware in lean and handlers.XFrameOptionsMiddleware in lean  # headers kept


def test_bearer_calls_are_answered_the_same_without_the_sessions_middleware(
    both: list[Browser], fleet: dict[str, Any], admin_user, django_user_model, lean: list[str]  # noqa: ANN001
) -> None:
    """Operator actions, agent heartbeats and hub syncs — accepted and refused — through the sessionless
    chain and through Django's stock handler (whole chain): the same answers."""
    token = operator_token_create(username=admin_user.username)
    django_user_model.objects.create_user("nobody", password="a-long-password-2")
    weak = operator_token_create(username="nobody")
    hub = HubTokenFactory()
    heartbeat = json.dumps({"agent_version": "0.1.0", "runtimes": {"docker": {"phase": "none"}}}).encode()

    def bearer(value: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {value}"), ("content-type", "application/json")]

    cases = [
        ("/api/v1/actions/system_list_modules", b"{}", bearer(token)),  # 200
        ("/api/v1/actions/system_list_modules", b"{}", bearer("pno_not-a-token")),  # 401
        ("/api/v1/actions/system_list_modules", b"{}", bearer(weak)),  # 403: no permission
        ("/api/v1/actions/system_list_modules", b"{", bearer(token)),  # 400: not JSON
        ("/api/v1/actions/no_such_action", b"{}", bearer(token)),  # 404
        ("/api/v1/actions/" + "y" * 300, b"{}", bearer(token)),  # 404, a path too long to keep its resolution
        ("/api/v1/actions/a\x00b", b"{}", bearer(token)),  # 404: a NUL in the path
        ("/api/v1/actions/system_get_instance", b'{"id": 5}', bearer(token)),  # 400: the schema
        ("/api/v1/agent/heartbeat", heartbeat, bearer(fleet["agent_token"])),  # 200
        ("/api/v1/agent/heartbeat", heartbeat, bearer("pna_not-a-token")),  # 401
        ("/api/v1/agent/heartbeat", b"{}", bearer(fleet["agent_token"])),  # 400
        ("/api/v1/hub/sync", b'{"hub_version": "0.1.0", "networks": []}', bearer(hub.hub_token)),  # 200
        ("/api/v1/hub/sync", b"{}", bearer("pnh_not-a-token")),  # 401
    ]
    answers = [[comparable(*browser.request("POST", path, body=body, headers=h)) for path, body, h in cases]
               for browser in both]  # fmt: skip
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[1]] == [200, 401, 403, 400, 404, 404, 404, 400, 200, 401, 400, 200, 401]
    assert lean == [path for path, _, _ in cases]  # every one of them through the sessionless chain
    assert all(a[1]["x-frame-options"] == ["DENY"] for a in answers[1])  # the kept middleware's headers


def test_a_browsers_requests_to_the_same_endpoint_get_the_whole_chain(
    django_user_model, lean: list[str]  # noqa: ANN001
) -> None:
    """A logged-in session posting the action form: its CSRF token is checked (refused without it) and its
    session user runs the action — the session's middleware ran."""
    django_user_model.objects.create_superuser("boss", password="a-long-password-1")
    browser = Browser(handlers.ASGIHandler())
    _, _, page = browser.request("GET", "/admin/login/")
    form = {"username": "boss", "password": "a-long-password-1", "csrfmiddlewaretoken": csrf_token(page)}
    assert browser.request("POST", "/admin/login/", form=form)[0] == 302
    json_body = [("content-type", "application/json")]
    refused = browser.request("POST", "/api/v1/actions/system_list_modules", body=b"{}", headers=json_body)
    assert refused[0] == 403 and b"CSRF" in refused[2], refused
    with_token = [*json_body, ("x-csrftoken", browser.cookies["csrftoken"])]
    ran = browser.request("POST", "/api/v1/actions/system_list_modules", body=b"{}", headers=with_token)
    assert ran[0] == 200 and "modules" in json.loads(ran[2]), ran
    listed = browser.request("GET", "/api/v1/actions/system_list_modules", headers=[("accept", "application/json")])
    assert listed[0] == 200, listed
    assert lean == []


def test_only_a_csrf_exempt_view_can_be_sessionless() -> None:
    def view(request: Any) -> None:
        return None

    with pytest.raises(ImproperlyConfigured, match="not CSRF-exempt"):
        handlers.sessionless()(view)
    assert handlers.sessionless()(csrf_exempt(view)).sessionless_when(None) is True


def test_the_sessionless_chain_serves_no_other_view(rf) -> None:  # noqa: ANN001
    """Should a request reach it that leads elsewhere (a middleware changed its URLconf), it is refused, not
    served without the checks that view may need."""
    chain = handlers.ASGIHandler()._sessionless
    with pytest.raises(ImproperlyConfigured, match="not sessionless"):
        chain.resolve_request(rf.get("/admin/login/"))
    assert chain.resolve_request(rf.post("/api/v1/agent/heartbeat")).url_name == "agent-heartbeat"


def test_the_kept_resolutions_are_bounded_long_paths_are_resolved_each_time(admin_user, lean: list[str]) -> None:  # noqa: ANN001
    token = operator_token_create(username=admin_user.username)
    headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
    browser = Browser(handlers.ASGIHandler())
    handlers._kept_when.cache_clear()
    long_path = "/api/v1/actions/" + "x" * 300
    assert browser.request("POST", long_path, body=b"{}", headers=headers)[0] == 404
    assert lean == [long_path]  # still the lean chain: its answer is the whole chain's (above)
    assert handlers._kept_when.cache_info().currsize == 0
    assert browser.request("POST", "/api/v1/actions/system_list_modules", body=b"{}", headers=headers)[0] == 200
    assert handlers._kept_when.cache_info().currsize == 1
    assert handlers._kept_when.cache_info().maxsize == 1024
