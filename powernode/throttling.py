"""A throttle on failed authentications per client IP (DRF's rate syntax and cache): after too many
failures in a window, every attempt from that address is refused with a 429 until the window passes,
valid credentials included, so guessing cannot go on at full speed. Part of the kernel: imports no app.
"""

from __future__ import annotations

import math

from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from powernode.errors import Throttled

DEFAULT_RATE = "20/min"


class FailedAuthThrottle(SimpleRateThrottle):
    """Counts failures only (``record_failure``); ``refuse_if_throttled`` runs before each attempt.

    The rate is ``settings.POWERNODE_AUTH_FAILURE_RATE`` (e.g. ``"20/min"``; ``None`` turns it off),
    read per request so ``override_settings`` applies. The client address is DRF's ``get_ident``
    (``REMOTE_ADDR``, or ``X-Forwarded-For`` behind ``NUM_PROXIES`` proxies).
    """

    scope = "auth_failures"

    def get_rate(self) -> str | None:
        return getattr(settings, "POWERNODE_AUTH_FAILURE_RATE", DEFAULT_RATE)

    def get_ident(self, request) -> str:  # noqa: ANN001
        # DRF believes X-Forwarded-For when NUM_PROXIES is unset: a client could then pick a fresh
        # address per attempt. Only trust the header when the deployment says how many proxies add it.
        if api_settings.NUM_PROXIES:
            return super().get_ident(request)
        return request.META.get("REMOTE_ADDR", "")

    def get_cache_key(self, request, view=None) -> str:  # noqa: ANN001 - DRF's signature
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _recent(self, request) -> list[float]:  # noqa: ANN001
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        return [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def refuse_if_throttled(self, request) -> None:  # noqa: ANN001
        if self.rate is None:
            return
        history = self._recent(request)
        if len(history) >= self.num_requests:
            retry_after = max(1, math.ceil(self.duration - (self.now - history[-1])))
            raise Throttled(
                f"Too many failed authentications from this address; try again in {retry_after} s.",
                details={"retry_after_s": retry_after},
            )

    def record_failure(self, request) -> None:  # noqa: ANN001
        if self.rate is None:
            return
        history = self._recent(request)
        history.insert(0, self.now)
        self.cache.set(self.key, history, self.duration)
