"""Watch: long-poll requests wait here until a change to what they watch is committed (DESIGN §4, "Watch").

Writers call :func:`notify` with topics (``instance:<id>``, ``template:<id>``, ``network:<id>``, ``hub``)
inside the transaction of their change. On PostgreSQL that queues ``NOTIFY powernode_watch`` in the same
transaction (delivered at commit, dropped on rollback); every platform process keeps one ``LISTEN``
connection (psycopg async, started by the first waiter) that wakes only the waiters of the named topics.
The writer's own process is woken on commit (``transaction.on_commit``) without the round trip; on SQLite
that is the only path. A lost ``LISTEN`` connection is opened again with backoff, and every waiter it
served is answered at once (it may have missed a change). Part of the kernel: imports no app.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.db import connections, transaction

log = logging.getLogger(__name__)

CHANNEL = "powernode_watch"
#: wakes every waiter (a payload too large to name its topics, or a change no narrower topic describes)
ALL = "*"
#: the SDWAN hub's desired state (networks, peers, grants)
HUB = "hub"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; topics are packed into chunks below this
MAX_PAYLOAD_BYTES = 7900
#: more chunks than this for one notify and it becomes one ALL instead
MAX_CHUNKS = 8
#: how many recent deliveries a waiter can look back on when it adds topics (see Waiter.add_topics)
HISTORY = 4096
#: LISTEN reconnect backoff (seconds): full jitter, doubling from the base up to the cap
RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 30.0
#: how long the LISTEN connection may sit silent before it is checked with a query
LISTEN_PING_S = 30.0


def instance_topic(instance_id: Any) -> str:
    return f"instance:{instance_id}"


def template_topic(template_id: Any) -> str:
    return f"template:{template_id}"


def network_topic(network_id: Any) -> str:
    return f"network:{network_id}"


class Outcome(enum.Enum):
    CHANGED = "changed"  # a topic of the waiter was notified: look again
    TIMEOUT = "timeout"  # wait_s passed
    RESET = "reset"  # the LISTEN connection was lost or (re)opened: answer now, the caller comes back


# -- the registry of this process's waiters ------------------------------------------------------------
_lock = threading.Lock()
_by_topic: dict[str, set[Waiter]] = {}
_waiters: set[Waiter] = set()
_history: collections.deque[tuple[int, frozenset[str]]] = collections.deque(maxlen=HISTORY)
_seq = 0


class Waiter:
    """One held request: the topics it watches and an event its loop awaits. Made by :func:`subscribe`
    (from any thread), awaited in its event loop, removed by :meth:`close`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.topics: set[str] = set()
        self._event = asyncio.Event()
        self._changed = False
        self._reset = False
        self.seq = 0  # the last delivery before this waiter listened

    def add_topics(self, topics: Iterable[str]) -> None:
        """Watch more topics; a delivery for one of them since :func:`subscribe` counts as a change, so a
        topic learned from a read made after subscribing (a network of the instance) misses nothing."""
        new = set(topics) - self.topics
        if not new:
            return
        with _lock:
            self.topics |= new
            for topic in new:
                _by_topic.setdefault(topic, set()).add(self)
            oldest = _history[0][0] if _history else _seq + 1
            missed = oldest > self.seq + 1 and _seq > self.seq  # the history no longer reaches back
            missed = missed or any(seq > self.seq and (ALL in names or names & new) for seq, names in _history)
        if missed:
            self.fire()

    def fire(self, *, reset: bool = False) -> None:
        """Wake this waiter (thread-safe)."""
        try:
            self.loop.call_soon_threadsafe(self._on_fire, reset)
        except RuntimeError:  # its loop is closed: nobody waits any more
            pass

    def _on_fire(self, reset: bool) -> None:
        self._reset = self._reset or reset
        self._changed = True
        self._event.set()

    async def wait(self, timeout: float) -> Outcome:
        """Until a notification (CHANGED), a LISTEN reset (RESET) or ``timeout`` seconds (TIMEOUT)."""
        if not self._changed:
            try:
                await asyncio.wait_for(self._event.wait(), timeout)
            except TimeoutError:
                return Outcome.TIMEOUT
        reset, self._reset, self._changed = self._reset, False, False
        self._event.clear()
        return Outcome.RESET if reset else Outcome.CHANGED

    def close(self) -> None:
        with _lock:
            _waiters.discard(self)
            for topic in self.topics:
                holders = _by_topic.get(topic)
                if holders is not None:
                    holders.discard(self)
                    if not holders:
                        del _by_topic[topic]


def subscribe(topics: Iterable[str], *, loop: asyncio.AbstractEventLoop) -> Waiter:
    """A waiter on ``topics`` woken in ``loop``; callable from any thread. Subscribe *before* reading the
    state you compare against, and :meth:`Waiter.close` it when done."""
    waiter = Waiter(loop)
    with _lock:
        waiter.seq = _seq
        _waiters.add(waiter)
    waiter.add_topics(topics)
    return waiter


def waiter_count() -> int:
    with _lock:
        return len(_waiters)


def deliver(topics: Iterable[str]) -> int:
    """Wake this process's waiters of ``topics`` (ALL wakes everyone); returns how many were woken."""
    names = frozenset(topics)
    global _seq
    with _lock:
        _seq += 1
        _history.append((_seq, names))
        if ALL in names:
            targets = set(_waiters)
        else:
            targets = set()
            for topic in names:
                targets |= _by_topic.get(topic, set())
    for waiter in targets:
        waiter.fire()
    return len(targets)


def _reset_all() -> None:
    with _lock:
        targets = set(_waiters)
    for waiter in targets:
        waiter.fire(reset=True)


# -- writers ------------------------------------------------------------------------------------------------
def payloads(topics: Iterable[str]) -> list[str]:
    """NOTIFY payloads naming ``topics`` (space-separated, each under PostgreSQL's 8000-byte limit); a set
    too large for MAX_CHUNKS payloads becomes one ALL."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for topic in sorted(set(topics)):
        length = len(topic.encode()) + 1
        if current and size + length > MAX_PAYLOAD_BYTES:
            chunks.append(" ".join(current))
            current, size = [], 0
        current.append(topic)
        size += length
    if current:
        chunks.append(" ".join(current))
    return [ALL] if len(chunks) > MAX_CHUNKS else chunks


def notify(topics: Iterable[str], *, using: str = "default") -> None:
    """Wake whoever watches ``topics`` once the current transaction commits (at once outside one); a
    rollback wakes nobody. Call it in the transaction that changes the watched state."""
    names = frozenset(t for t in topics if t)
    if not names:
        return
    connection = connections[using]
    if connection.vendor == "postgresql":
        # Queued in the writer's transaction: PostgreSQL delivers it at commit and drops it on rollback
        # (also of a savepoint), so no commit goes unannounced even if this process dies right after.
        with connection.cursor() as cursor:
            for payload in payloads(names):
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
    transaction.on_commit(lambda: deliver(names), using=using)


# -- the LISTEN connection (PostgreSQL) -------------------------------------------------------------------
class _Listener:
    """One task per process (per event loop): LISTEN, deliver each payload, reconnect when lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conninfo: dict[str, Any]) -> None:
        self.loop = loop
        self.conninfo = conninfo
        self.connected = asyncio.Event()
        self.connections = 0  # how many times LISTEN was (re)established (tests and benchmarks read it)
        self.backend_pid: int | None = None
        self.task = loop.create_task(self.run(), name="powernode-watch-listen")

    async def run(self) -> None:
        import psycopg  # only where PostgreSQL is configured

        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(autocommit=True, **self.conninfo)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self.connections += 1
                    failures = 0
                    _reset_all()  # waiters made while nobody listened may have missed a change
                    self.connected.set()
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_PING_S):
                            deliver(note.payload.split())
                        await conn.execute("SELECT 1")  # silent for a while: is the connection alive?
                finally:
                    self.connected.clear()
                    self.backend_pid = None
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - psycopg's and the network's: reconnect on any
                failures += 1
                log.warning("watch: LISTEN connection lost (%s); reconnecting", exc)
            _reset_all()  # the waiters it served are answered: they come back, nobody sleeps through a change
            await asyncio.sleep(random.uniform(0, min(RECONNECT_CAP_S, RECONNECT_BASE_S * 2 ** min(failures, 16))))

    def stop(self) -> None:
        self.task.cancel()


_listeners: dict[asyncio.AbstractEventLoop, _Listener] = {}


def _conninfo(using: str) -> dict[str, Any]:
    params = connections[using].get_connection_params()
    return {k: v for k, v in params.items() if isinstance(v, str | int) and not isinstance(v, bool)}


def start_listening(*, using: str = "default") -> _Listener | None:
    """Start this loop's LISTEN connection if the database is PostgreSQL (idempotent; call in the loop).
    None on other databases: wake-ups then come from this process's own commits only."""
    if connections[using].vendor != "postgresql":
        return None
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None or listener.task.done():
        for old in [lp for lp in _listeners if lp.is_closed()]:
            del _listeners[old]
        listener = _listeners[loop] = _Listener(loop, _conninfo(using))
    return listener


async def ready(*, timeout: float = 5.0, using: str = "default") -> bool:
    """Start this process's LISTEN connection and wait (up to ``timeout``) until it listens; call before
    subscribing, so a waiter is not answered at once by the connection's first reset. True when
    listening (or nothing to listen to: SQLite)."""
    listener = start_listening(using=using)
    if listener is None or listener.connected.is_set():
        return True
    try:
        await asyncio.wait_for(listener.connected.wait(), timeout)
    except TimeoutError:
        return False  # PostgreSQL unreachable: waiters made now are answered when it is reached again
    return True


def listener(loop: asyncio.AbstractEventLoop | None = None) -> _Listener | None:
    return _listeners.get(loop or asyncio.get_running_loop())


async def stop_listening() -> None:
    """Stop this loop's LISTEN connection (tests, shutdown) and answer its waiters."""
    listener = _listeners.pop(asyncio.get_running_loop(), None)
    if listener is not None:
        listener.stop()
        try:
            await listener.task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
    _reset_all()


# -- holding a request -----------------------------------------------------------------------------------
async def hold(
    waiter: Waiter,
    *,
    answer: dict[str, Any],
    known_version: str,
    wait_s: float,
    recompute: Callable[[], Awaitable[dict[str, Any]]],
    version_key: str = "desired_version",
) -> dict[str, Any]:
    """Hold until ``answer[version_key]`` differs from ``known_version`` (recomputed at each wake-up of
    ``waiter``), ``wait_s`` passes or the LISTEN connection resets; returns the answer to send.

    The waiter must have been subscribed before ``answer`` was computed. It is closed here.
    """
    try:
        start_listening()
        deadline = asyncio.get_running_loop().time() + wait_s
        while answer.get(version_key) == known_version:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            outcome = await waiter.wait(remaining)
            if outcome is not Outcome.CHANGED:
                break
            answer = await recompute()
        return answer
    finally:
        waiter.close()
