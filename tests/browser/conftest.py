"""Browser test fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Run on their own (``pytest -m browser tests/browser``): Playwright's sync API runs an event loop in
this thread, so Django's async-safety check must be off for the whole run, database setup included.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents import AgentClient
from tests.needs import need

CHROMIUM = os.environ.get("POWERNODE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("POWERNODE_ARTIFACTS", "var/artifacts")) / "screenshots"


@pytest.fixture(scope="session", autouse=True)
def _allow_async_unsafe() -> Iterator[None]:
    """Set before the test database is made and only for the browser tests (not at import: the main
    run collects this file too and must keep Django's check)."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SQLite: a file test database, so the live server's request threads each get their own connection
    (the in-memory default shares one connection between threads, and the agent, the page's polling and
    the test would interleave inside each other's transactions)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("browser-db") / "test.sqlite3")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need(
        Path(CHROMIUM).exists() or shutil.which("chromium") is not None,
        f"Chromium not found at {CHROMIUM} (apt-get install chromium; scripts/test.sh does)",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed (.venv/bin/pip install playwright)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=["--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def shoot(page: Any) -> Callable[[str], Path]:
    """shoot("host-pending") saves a full-page PNG under $POWERNODE_ARTIFACTS/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, target: Any = None) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return path

    return take


def login(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "/admin/login/" not in page.url, page.content()[:2000]


class BackgroundAgent(threading.Thread):
    """Plays the handshake in steps: each ``go()`` lets the next batch of phases run."""

    def __init__(self, agent: AgentClient, steps: list[Callable[[AgentClient], Any]]) -> None:
        super().__init__(daemon=True)
        self.agent = agent
        self.steps = steps
        self.gates = [threading.Event() for _ in steps]
        self.done = [threading.Event() for _ in steps]
        self.results: list[Any] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for gate, done, step in zip(self.gates, self.done, self.steps, strict=True):
                if not gate.wait(timeout=120):
                    return
                self.results.append(step(self.agent))
                done.set()
        except BaseException as exc:  # surfaced by the test through wait_step
            self.error = exc
            for done in self.done:
                done.set()

    def step(self, index: int) -> Any:
        """Let step ``index`` run and wait for it to finish; returns its result."""
        self.gates[index].set()
        assert self.done[index].wait(timeout=60), f"agent step {index} did not finish"
        if self.error:
            raise self.error
        return self.results[index]

    def release(self, index: int) -> None:
        """Let step ``index`` run without waiting (the page is watched meanwhile)."""
        self.gates[index].set()

    def finish(self, index: int) -> Any:
        assert self.done[index].wait(timeout=60), f"agent step {index} did not finish"
        if self.error:
            raise self.error
        return self.results[index]


class _OffLoopActionClient:
    """The suite's ActionClient, each call made from a thread of its own: Playwright's sync API keeps an event
    loop running in the test's thread, and the action endpoint is an async view, which the test client (WSGI)
    cannot run from a thread with a running loop. Same HTTP requests, same answers."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def call(self, name: str, payload: Any = None, **kwargs: Any) -> tuple[int, dict]:
        from concurrent.futures import ThreadPoolExecutor

        from django.db import connections

        def run() -> tuple[int, dict]:
            try:
                return self.inner.call(name, payload, **kwargs)
            finally:
                connections.close_all()  # this thread's connections end with it

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(run).result()

    def ok(self, name: str, payload: Any = None) -> dict:
        status, body = self.call(name, payload)
        assert status == 200, (name, status, body)
        return body


@pytest.fixture
def api(admin_user) -> _OffLoopActionClient:  # noqa: ANN001 - pytest-django's admin_user
    from apps.system.services import operator_token_create
    from tests.conftest import ActionClient

    return _OffLoopActionClient(ActionClient(operator_token_create(username=admin_user.username)))

