"""Rate limits of the public endpoints (Hull notifications, Intercom webhooks), per source.

Two limits, both counted in the `throttle` cache (Redis in the scale-out setup, shared by every web
process; process memory otherwise), never in the database:

- `PublicEndpointThrottle`, for authenticated traffic: `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
  ["public_endpoint"]` (env `PUBLIC_ENDPOINT_RATE`, default 600/minute) per client address *and*
  connector slug, so one noisy connector, or one misbehaving caller, cannot starve the others.
- `FailedAttemptThrottle`, for everyone else: failed attempts (401, 404, 400, 413) per client
  address (env `PUBLIC_ENDPOINT_FAILURE_RATE`, default 30/minute). It is checked before the body
  is read, so a source past its failures costs one cache read, whatever it sends.

The client address is DRF's `get_ident`: `REMOTE_ADDR`, or `X-Forwarded-For` only when
`NUM_PROXIES` is set (settings: env `NUM_PROXIES`, default 0 = never trust the header). Past a rate
DRF answers 429 with `Retry-After`; Hull and Intercom both retry those.
"""

from __future__ import annotations

import time

from django.core.cache import caches
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle
from rest_framework.views import APIView

THROTTLE_CACHE = "throttle"


class PublicEndpointThrottle(SimpleRateThrottle):
    scope = "public_endpoint"

    @property
    def cache(self):
        return caches[THROTTLE_CACHE]

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.method == "HEAD":
            return None  # Intercom's URL validation, cheap and rare
        slug = (getattr(view, "kwargs", None) or {}).get("slug", "")
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}:{slug}"}


class FailedAttemptThrottle(BaseThrottle):
    """Fixed-window count of a source's failed attempts; `check` before any work, `record` on failure."""

    scope = "public_endpoint_failures"

    def __init__(self) -> None:
        # Read at each request (not import time), so settings overrides in tests apply.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or "30/minute"
        num_requests, duration = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
        assert num_requests is not None and duration is not None  # only a None rate parses to None
        self.num_requests: int = num_requests
        self.duration: int = duration

    def _key(self, request: Request, now: float) -> str:
        window = int(now // self.duration)
        return f"throttle_{self.scope}_{self.get_ident(request)}_{window}"

    def check(self, request: Request) -> None:
        """Raise Throttled (429) when this source already failed too often in this window."""
        now = time.time()
        failures = caches[THROTTLE_CACHE].get(self._key(request, now)) or 0
        if failures >= self.num_requests:
            raise exceptions.Throttled(wait=max(1, int(self.duration - now % self.duration)))

    def record(self, request: Request) -> None:
        now = time.time()
        cache, key = caches[THROTTLE_CACHE], self._key(request, now)
        if not cache.add(key, 1, timeout=self.duration + 1):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=self.duration + 1)


class FailedAttemptThrottleMixin:
    """For APIViews whose authentication reads the body: refuse a failing source before that."""

    failure_throttle_class = FailedAttemptThrottle

    def initial(self, request: Request, *args, **kwargs) -> None:
        self._failure_throttle = self.failure_throttle_class()
        self._failure_throttle.check(request)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    def handle_exception(self, exc: Exception):
        request = getattr(self, "request", None)
        throttle = getattr(self, "_failure_throttle", None)
        failed = isinstance(exc, exceptions.APIException) and 400 <= exc.status_code < 500 and not isinstance(exc, exceptions.Throttled)
        if failed and throttle is not None and request is not None and getattr(request, "_authenticator", None) is None:
            # Only unauthenticated failures count: a signed caller's 400 is Hull's bug, not an attack.
            throttle.record(request)
        return super().handle_exception(exc)  # type: ignore[misc]
