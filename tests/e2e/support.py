"""The one set-up of the end-to-end tests: the real deployment shape on PostgreSQL + Redis.

A `Site` is a connector wired to the Intercom and Hull sandboxes of a stack that will serve on
`port` (gunicorn web workers and `manage.py qcluster` processes, sandbox/stack.py). The tests get
one from the `stack_site` fixture (tests/e2e/conftest.py), post real HTTP to it, and wait for the
workers with `wait_for`.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set (.ci/run's second pass): `STACK_MARKS`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.db import connection

from sandbox.stack import Stack, free_port, running_stack, stack_env
from sync.models import Connector, DeliveryStatus
from tests.payloads import hull_user_update

STACK_MARKS = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL=postgres://... and REDIS_URL",
    ),
]

OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING)


def database_url() -> str:
    """The test database, for the stack's processes."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def private_redis_url() -> str:
    """The same Redis server, the database after REDIS_URL's: nothing shared with other runs' queues or budgets
    (two runs side by side with REDIS_URL .../2 and .../4 stay apart)."""
    parts = urlsplit(os.environ["REDIS_URL"])
    db = int(parts.path.strip("/") or 0)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db + 1}", "", ""))


@dataclass
class Site:
    """A connector of slug `slug` on the sandboxes of the stack that will serve on `port`.

    Its secrets and names follow from the slug: `<slug>-intercom-token`, workspace `ws_<slug>`,
    Hull organization `<slug>.hullapp.io`.
    """

    slug: str
    hull_id: str
    segment: dict[str, str]
    port: int = field(default_factory=free_port)
    connector: Connector = field(init=False)

    def __post_init__(self) -> None:
        self.token = f"{self.slug}-intercom-token"
        self.workspace = f"ws_{self.slug}"
        self.hull_secret = f"{self.slug}-hull-secret"
        self.client_secret = f"{self.slug}-client-secret"
        self.organization = f"{self.slug}.hullapp.io"

    def user_update(self, notification_id: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """A Hull `user:update` notification to this connector."""
        return hull_user_update(
            notification_id=notification_id, hull_id=self.hull_id, secret=self.hull_secret,
            organization=self.organization, segment=self.segment, messages=messages,
        )

    def post_notification(self, stack: Stack, body: dict[str, Any], session: Any = requests) -> int:
        """POST a Hull notification to the smart-notifier endpoint; returns the status code."""
        return session.post(f"{stack.base_url}/hull/{self.slug}/smart-notifier", data=json.dumps(body),
                            headers={"Content-Type": "application/json"}, timeout=30).status_code

    @contextmanager
    def stack(self, *, web_workers: int = 2, clusters: int = 2, env: dict[str, str] | None = None) -> Iterator[Stack]:
        """Start the stack on the private Redis database, emptied first (no queue or budget of an earlier run)."""
        import redis

        redis.Redis.from_url(private_redis_url()).flushdb()
        environment = stack_env(database_url=database_url(), redis_url=private_redis_url(), extra=env)
        with running_stack(environment, port=self.port, web_workers=web_workers, clusters=clusters) as stack:
            yield stack


def make_site(slug: str, *, hull_id: str, segment: dict[str, str], **settings: Any) -> Site:
    """Create the connector (`settings`: its fields, and `rate_limit` of the sandbox workspace)."""
    from sandbox.wiring import connector_on_http_sandboxes

    site = Site(slug=slug, hull_id=hull_id, segment=segment)
    site.connector = connector_on_http_sandboxes(
        base_url=f"http://127.0.0.1:{site.port}",
        token=site.token,
        workspace=site.workspace,
        name=slug.title(),
        slug=slug,
        hull_organization=site.organization,
        hull_id=hull_id,
        hull_secret=site.hull_secret,
        intercom_client_secret=site.client_secret,
        **settings,
    )
    return site


def wait_for(condition: Callable[[], bool], *, timeout: float, stack: Stack, what: Callable[[], Any] = lambda: "", interval: float = 0.5) -> None:
    """Poll until `condition()`; fails with `what()` and the stack's logs on timeout or when a process died."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert stack.alive(), f"a process of the stack died: {what()}\n{stack.logs()}"
        assert time.monotonic() < deadline, f"not within {timeout}s: {what()}\n{stack.logs()}"
        time.sleep(interval)


def open_units() -> int:
    """Notifications and webhook deliveries still waiting for or held by a worker."""
    from sync.models import HullNotification, WebhookDelivery

    return sum(model.objects.filter(status__in=OPEN_STATUSES).count() for model in (HullNotification, WebhookDelivery))
