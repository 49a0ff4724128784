"""The same new leads pushed by several Hull notifications at once, on two qcluster processes.

PostgreSQL + Redis, real HTTP: gunicorn serves the connector and the Intercom/Hull sandboxes, whose
search shows a new contact only after 120 s (Intercom's lag). Every notification carries the same
new leads; the workers process them concurrently. Leads have nothing unique in Intercom (no 409),
so only the identity lock and the IdentityLink keep them single: exactly one lead per Hull user.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox.stack import free_port, running_stack, stack_env
from tests.e2e.test_scale_out import database_url, private_redis_url

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL=postgres://... and REDIS_URL",
    ),
]

TOKEN = "twins-intercom-token"
HULL_SECRET = "twins-hull-secret"
HULL_ID = "5c092905c36af496c700beef"
SEGMENT = {"id": "5bd720690026ca86b0000099", "name": "Visitors", "type": "users_segment"}
LEADS = 6
NOTIFICATIONS = 8
DRAIN_TIMEOUT = 180  # seconds


def notification(n: int) -> dict:
    messages = [
        {
            "message_id": uuid.uuid4().hex,
            "user": {"id": f"lead{i:020d}", "email": f"visitor{i}@acme.com", "name": f"Visitor {i} (from {n})",
                     "indexed_at": "2024-01-01T00:00:00+00:00", "segment_ids": [SEGMENT["id"]]},
            "segments": [SEGMENT],
            "account": {},
            "account_segments": [],
            "changes": {"is_new": True, "user": {}, "account": {}, "segments": {"entered": [SEGMENT]}, "account_segments": {}},
            "events": [],
        }
        for i in range(LEADS)
    ]
    return {
        "notification_id": f"twins-{n}",
        "channel": "user:update",
        "configuration": {"id": HULL_ID, "secret": HULL_SECRET, "organization": "twins.hullapp.io"},
        "connector": {"id": HULL_ID, "private_settings": {}},
        "segments": [SEGMENT],
        "accounts_segments": [],
        "messages": messages,
    }


@pytest.fixture
def twins_connector(transactional_db):
    from sandbox.intercom.models import Workspace
    from sandbox.wiring import connector_on_http_sandboxes

    port = free_port()
    connector = connector_on_http_sandboxes(
        base_url=f"http://127.0.0.1:{port}",
        token=TOKEN,
        workspace="ws_twins",
        name="Twins",
        slug="twins",
        hull_organization="twins.hullapp.io",
        hull_id=HULL_ID,
        hull_secret=HULL_SECRET,
        synchronized_lead_segments=[SEGMENT["id"]],
        synchronized_user_segments=[],
        tag_leads=False,
    )
    assert Workspace.objects.get(token=TOKEN).search_lag_seconds >= 120  # the sandbox's default
    return connector, port


def test_concurrent_notifications_for_the_same_new_leads_on_two_workers_make_no_twins(twins_connector):
    import redis

    from sandbox.intercom.models import Contact
    from sync.models import DeliveryStatus, HullNotification, SyncLog

    connector, port = twins_connector
    redis.Redis.from_url(private_redis_url()).flushdb()
    env = stack_env(database_url=database_url(), redis_url=private_redis_url())
    with running_stack(env, port=port, web_workers=2, clusters=2) as stack:
        session = requests.Session()

        def send(n: int) -> int:
            return session.post(f"{stack.base_url}/hull/twins/smart-notifier", data=json.dumps(notification(n)),
                                headers={"Content-Type": "application/json"}, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=NOTIFICATIONS) as pool:
            codes = Counter(pool.map(send, range(NOTIFICATIONS)))
        assert codes == Counter({200: NOTIFICATIONS}), codes
        deadline = time.monotonic() + DRAIN_TIMEOUT
        open_statuses = [DeliveryStatus.PENDING, DeliveryStatus.PROCESSING]
        while HullNotification.objects.filter(status__in=open_statuses).exists():
            assert time.monotonic() < deadline, stack.logs()
            assert stack.alive(), stack.logs()
            time.sleep(0.5)
        logs = stack.logs()

    assert set(HullNotification.objects.values_list("status", flat=True)) == {DeliveryStatus.DONE}, logs
    leads = Counter(Contact.objects.filter(workspace__token=TOKEN, role="lead", deleted=False).values_list("email", flat=True))
    print("twins:", json.dumps({"leads": len(leads), "contacts": sum(leads.values()), "pushes": LEADS * NOTIFICATIONS}))
    assert sorted(leads) == sorted(f"visitor{i}@acme.com" for i in range(LEADS)), leads
    assert set(leads.values()) == {1}, f"twin leads: {leads}"
    assert not SyncLog.objects.filter(connector=connector, status=SyncLog.Status.ERROR).exists(), list(
        SyncLog.objects.filter(status=SyncLog.Status.ERROR).values("reason", "message")[:5]
    )
