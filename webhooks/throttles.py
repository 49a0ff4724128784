"""Rate limit of the public endpoints (Hull notifications, Intercom webhooks), per source.

The rate is `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["public_endpoint"]` (env `PUBLIC_ENDPOINT_RATE`,
default 600/minute). A source is the client address (DRF's `get_ident`: `REMOTE_ADDR`, or
`X-Forwarded-For` when `NUM_PROXIES` is set) *and* the connector slug of the URL, so one noisy
connector, or one misbehaving caller, cannot starve the others. Counts live in the default cache
(Redis in the scale-out setup), so every web process shares them. Past the rate DRF answers 429
with `Retry-After`; Hull and Intercom both retry those.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class PublicEndpointThrottle(SimpleRateThrottle):
    scope = "public_endpoint"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.method == "HEAD":
            return None  # Intercom's URL validation, cheap and rare
        slug = (getattr(view, "kwargs", None) or {}).get("slug", "")
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}:{slug}"}
