"""The receive path of Hull notifications is cheap for whoever has no credentials (issue 13, item 2).

Each test is an attack that worked on the old code: failed attempts were never throttled (DRF
throttles run after authentication), a body was read and fully JSON-decoded before any credential
check, and `X-Forwarded-For` picked the throttle bucket with no proxy configured.
"""

from __future__ import annotations

import json
import os
import random
import time
import tracemalloc
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from sync.models import HullNotification
from tests.plugins.hull_sandbox import make_user_update
from webhooks import authentication
from webhooks.throttles import PublicEndpointThrottle

URL = "/hull/acme/smart-notifier"


@pytest.fixture(autouse=True)
def no_task(monkeypatch):
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: None)


@pytest.fixture
def source() -> str:
    """A client address of its own per test: throttle counters live in a cache that outlives tests."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def rates(**rates: str):
    current: dict[str, Any] = settings.REST_FRAMEWORK
    return override_settings(REST_FRAMEWORK={**current, "DEFAULT_THROTTLE_RATES": {**current["DEFAULT_THROTTLE_RATES"], **rates}})


def post(client, body, source: str, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(URL, data=data, content_type="application/json", REMOTE_ADDR=source, **headers)


def wrong_secret(connector) -> dict:
    payload = make_user_update(connector, [{"email": "a@example.com"}])
    payload["configuration"]["secret"] = "guessed"
    return payload


@pytest.fixture
def body_reads(monkeypatch) -> list[int]:
    """How many request bodies the notification authentication read."""
    reads: list[int] = []
    real = authentication.read_limited_body

    def counting(request, limit):
        reads.append(1)
        return real(request, limit)

    monkeypatch.setattr(authentication, "read_limited_body", counting)
    return reads


def test_failed_attempts_are_throttled_before_the_body_is_read(client, connector, source, body_reads):
    with rates(public_endpoint_failures="3/minute"):
        answers = [post(client, wrong_secret(connector), source).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    assert len(body_reads) == 3  # the refused ones were not read
    assert HullNotification.objects.count() == 0


def test_a_throttled_source_gets_retry_after_and_other_sources_are_untouched(client, connector, source):
    with rates(public_endpoint_failures="2/minute"):
        for _ in range(2):
            post(client, wrong_secret(connector), source)
        refused = post(client, make_user_update(connector, [{"email": "a@example.com"}]), source)
        other = post(client, make_user_update(connector, [{"email": "b@example.com"}]), source + "1")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert other.status_code == 200


def test_authenticated_traffic_does_not_use_up_the_failure_allowance(client, connector, source):
    with rates(public_endpoint_failures="2/minute"):
        answers = [post(client, make_user_update(connector, [{"email": f"u{i}@example.com"}]), source).status_code for i in range(6)]
    assert answers == [200] * 6


def test_unknown_connectors_and_malformed_bodies_count_as_failures(client, connector, source):
    with rates(public_endpoint_failures="2/minute"):
        first = client.post("/hull/nobody/smart-notifier", data=b"{}", content_type="application/json", REMOTE_ADDR=source)
        second = post(client, b"{not json", source)
        third = post(client, wrong_secret(connector), source)
    assert (first.status_code, second.status_code, third.status_code) == (404, 400, 429)


def test_x_forwarded_for_does_not_pick_the_bucket_without_num_proxies(client, connector, source, monkeypatch):
    monkeypatch.setattr(PublicEndpointThrottle, "THROTTLE_RATES", {"public_endpoint": "2/minute"})
    answers = [
        post(client, make_user_update(connector, [{"email": f"u{i}@example.com"}]), source, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(3)
    ]
    assert answers == [200, 200, 429]


def test_x_forwarded_for_is_the_source_behind_num_proxies(client, connector, source, monkeypatch):
    monkeypatch.setattr(PublicEndpointThrottle, "THROTTLE_RATES", {"public_endpoint": "2/minute"})
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}):
        answers = [
            post(client, make_user_update(connector, [{"email": f"u{i}@example.com"}]), source, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
            for i in range(3)
        ]
    assert answers == [200, 200, 200]


def test_signature_headers_are_refused_before_the_body_is_read(client, connector, source, body_reads):
    headers = {
        "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE": "not-a-jwt",
        "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_VERSION": "v2",
        "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_PUBLIC_KEY_URL": "https://keys.hullapp.io/k",
    }
    response = post(client, b"[" * 50_000, source, **headers)  # would be a 400 if parsed first
    assert response.status_code == 401
    assert body_reads == []


def _flood(size: int, prefix: bytes, suffix: bytes) -> bytes:
    item = b"{},"
    return prefix + item * ((size - len(prefix) - len(suffix)) // len(item)) + b"{}" + suffix


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("no credentials at all", 400),
        ("wrong secret", 401),
    ],
)
def test_a_large_unauthenticated_body_is_refused_in_bounded_memory_and_time(client, connector, source, shape, expected):
    size = int(os.environ.get("FLOOD_MB", "20")) * 1024 * 1024
    if shape == "no credentials at all":
        body = _flood(size, b"[", b"]")  # the body of the issue: [{},{},...]
    else:
        body = _flood(size, b'{"notification_id":"x","channel":"user:update","configuration":{"id":"%s","secret":"guessed"},"messages":[' % connector.hull_id.encode(), b"]}")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = post(client, body, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert response.status_code == expected
    # The body itself is held twice (the test client's copy and the request's read): no more.
    assert peak < 2 * size + 10 * 1024 * 1024, f"{peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB body"
    assert elapsed < 3.0, f"{elapsed:.1f} s"


def test_the_cached_connector_lookup_sees_a_new_secret_at_once(client, connector, source, django_assert_max_num_queries):
    from webhooks import connector_lookup

    connector_lookup.clear()
    with override_settings(CONNECTOR_LOOKUP_TTL=60):
        assert post(client, make_user_update(connector, [{"email": "a@example.com"}]), source).status_code == 200
        old_secret = connector.hull_secret
        connector.hull_secret = "rotated-secret-0123456789"
        connector.save()
        payload = make_user_update(connector, [{"email": "b@example.com"}])
        payload["configuration"]["secret"] = old_secret
        assert post(client, payload, source).status_code == 401  # the old secret no longer works
        payload["configuration"]["secret"] = "rotated-secret-0123456789"
        assert post(client, payload, source).status_code == 200
    connector_lookup.clear()
