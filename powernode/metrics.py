"""The platform's Prometheus metrics, defined once, and ``GET /metrics`` (docs/OBSERVABILITY.md).

Two kinds: events counted where they happen (heartbeats, handshake phases, CA signatures, actions) and
gauges of the fleet read from the database at scrape time (hosts by status, instances by heartbeat age,
pending outbox rows) through scrapers the apps register; the kernel names no app.

Several worker processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (before this module is imported: the
service's environment) counters and histograms live in files there and every process's ``/metrics`` sums
all of them; the service empties the directory when it starts. Gauges from the database need no summing.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

import powernode
from powernode.errors import ApplicationError

log = logging.getLogger(__name__)

HEARTBEATS = Counter(
    "powernode_heartbeats", "Agent heartbeats received, by result (ok, refused: 4xx, failed: 5xx).", ["result"]
)
HANDSHAKES = Counter(
    "powernode_handshakes",
    "Runtime handshake phases posted by agents, by runtime, phase and result.",
    ["runtime", "phase", "result"],
)
CA_SIGN_SECONDS = Histogram(
    "powernode_ca_sign_seconds",
    "Time the CA took to sign a certificate (CSR signed or keypair issued), by adapter and usage.",
    ["adapter", "usage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ACTION_SECONDS = Histogram(
    "powernode_action_seconds",
    "Time run_action took (permission, validation and the handler), by action name and result.",
    ["action", "result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def result_of(exc: BaseException | None) -> str:
    """ok, refused (an ApplicationError under 500: the caller's fault) or failed (ours, or a crash)."""
    if exc is None:
        return "ok"
    if isinstance(exc, ApplicationError) and exc.status_code < 500:
        return "refused"
    return "failed"


@contextmanager
def timed(histogram: Histogram, *, with_result: bool = False, **labels: str) -> Iterator[None]:
    """Observe the block's duration; ``with_result``: its ``result`` label says how the block ended."""
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        if with_result:
            labels["result"] = result_of(error)
        histogram.labels(**labels).observe(time.perf_counter() - start)


@contextmanager
def counted(counter: Counter, **labels: str) -> Iterator[None]:
    """Count the block once, its ``result`` label saying how it ended."""
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        counter.labels(result=result_of(error), **labels).inc()


# -- gauges read at scrape time -------------------------------------------------------------------------
@dataclass(frozen=True)
class Scraper:
    """One gauge family computed when /metrics is read: ``read()`` gives label values → value."""

    name: str
    documentation: str
    labelnames: tuple[str, ...]
    read: Callable[[], dict[tuple[str, ...], float]]


_scrapers: dict[str, Scraper] = {}
_scrapers_lock = threading.Lock()


def register_gauge(
    name: str, documentation: str, read: Callable[[], dict[tuple[str, ...], float]], *, labelnames: tuple = ()
) -> None:
    """Add a gauge computed from the database at each scrape (apps call this in ``AppConfig.ready()``)."""
    with _scrapers_lock:
        _scrapers[name] = Scraper(name, documentation, tuple(labelnames), read)


class _ScrapeCollector:
    def describe(self) -> list:
        return []  # registering must not scrape (no query at import)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily("powernode_build_info", "The platform's version.", labels=["version"])
        info.add_metric([powernode.__version__], 1)
        yield info
        with _scrapers_lock:
            scrapers = list(_scrapers.values())
        for scraper in scrapers:
            try:
                values = scraper.read()
            except Exception:  # a database that does not answer: that family is left out, /readyz says why
                log.warning("metrics: %s could not be read", scraper.name, exc_info=True)
                continue
            family = GaugeMetricFamily(scraper.name, scraper.documentation, labels=list(scraper.labelnames))
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            yield family


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


_SCRAPE = _ScrapeCollector()
REGISTRY.register(_SCRAPE)


def registry() -> CollectorRegistry:
    """What /metrics shows: every process's counters (multiprocess mode) or this one's, plus the gauges."""
    if not multiprocess_dir():
        return REGISTRY
    scraped = CollectorRegistry()
    MultiProcessCollector(scraped)
    scraped.register(_SCRAPE)
    return scraped


def render() -> tuple[bytes, str]:
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def token_accepted(authorization: str) -> bool:
    """True when no POWERNODE_METRICS_TOKEN is set, or the header is ``Bearer <that token>``."""
    wanted = getattr(settings, "POWERNODE_METRICS_TOKEN", "")
    if not wanted:
        return True
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), wanted.encode())
