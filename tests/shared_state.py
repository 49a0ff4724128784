"""State that outlives a test's database transaction in the scale-out setup (REDIS_URL): the Intercom
rate budget and the throttle counters live in Redis. Tests on the sandboxes' virtual clock must not
inherit a window from another test, so the keys are removed around each test.

Registered for every test in tests/conftest.py (`pytest_plugins`); autouse.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

PATTERNS = ("intercom:budget:*", "*throttle_public_endpoint_*", "*metrics:*")


def _clear() -> None:
    if not settings.REDIS_URL:
        return  # database-backed: rolled back with the test
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in PATTERNS:
        keys = list(client.scan_iter(pattern))
        if keys:
            client.delete(*keys)
    from sync.intercom import budget

    budget._default_budget = None


@pytest.fixture(autouse=True)
def fresh_shared_state() -> Iterator[None]:
    _clear()
    yield
    _clear()
