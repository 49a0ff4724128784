"""The stale-work sweep against two real workers on PostgreSQL + Redis (sync/work.py, docs/lifecycle.md).

A notification is slowed by Intercom's rate limit so it stays `processing` for many seconds, while
the sweep (`manage.py requeue_stale_work --older-than-seconds 0`, the most eager setting) runs again
and again. The older sweep picked rows by `received_at` alone: it put the live notification back
to `pending` and the second qcluster ran it at the same time (duplicate sync-log rows, twin contacts
possible). Now the running try holds a lease it renews by heartbeat (WORK_LEASE_SECONDS is set to a
few seconds here, so the heartbeat has to work), and the sweep leaves it alone: one try, one row per
entity.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set (.ci/run's second pass).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter

import pytest
import requests

from sandbox.stack import PYTHON, ROOT, free_port, running_stack, stack_env
from tests.e2e.test_scale_out import database_url, private_redis_url, pytestmark  # noqa: F401 - the same skip rule

TOKEN = "sweep-intercom-token"
HULL_SECRET = "sweep-hull-secret"
HULL_ID = "5c092905c36af496c700beef"
SEGMENT = {"id": "5bd720690026ca86b000005f", "name": "Customers", "type": "users_segment"}
LIMIT = 0  # no rate limit: the latency alone keeps the notification running for many seconds
USERS = 12
LEASE_SECONDS = 4
LATENCY_MS = 1200


def notification_body() -> dict:
    messages = []
    for i in range(USERS):
        messages.append(
            {
                "message_id": uuid.uuid4().hex,
                "user": {"id": f"sweep{i:019d}", "email": f"sweep{i}@acme.com", "external_id": f"sweep-{i}",
                         "name": f"Sweep {i}", "indexed_at": "2024-01-01T00:00:00+00:00", "segment_ids": [SEGMENT["id"]]},
                "segments": [SEGMENT],
                "account": {},
                "account_segments": [],
                "changes": {"is_new": True, "user": {}, "account": {}, "segments": {}, "account_segments": {}},
                "events": [],
            }
        )
    return {
        "notification_id": "sweep-1",
        "channel": "user:update",
        "configuration": {"id": HULL_ID, "secret": HULL_SECRET, "organization": "sweep.hullapp.io"},
        "connector": {"id": HULL_ID, "private_settings": {}},
        "segments": [SEGMENT],
        "accounts_segments": [],
        "messages": messages,
    }


@pytest.fixture
def sweep_connector(transactional_db):
    from sandbox.wiring import connector_on_http_sandboxes

    port = free_port()
    connector = connector_on_http_sandboxes(
        base_url=f"http://127.0.0.1:{port}",
        token=TOKEN,
        workspace="ws_sweep",
        rate_limit=LIMIT,
        name="Sweep",
        slug="sweep",
        hull_organization="sweep.hullapp.io",
        hull_id=HULL_ID,
        hull_secret=HULL_SECRET,
        intercom_client_secret="sweep-client-secret",
        synchronized_user_segments=[SEGMENT["id"]],
    )
    from sandbox.intercom.models import Workspace
    from sync.models import FieldMapping

    FieldMapping.objects.create(connector=connector, entity="user", direction="outgoing", hull_attribute="name", intercom_attribute="name")
    Workspace.objects.filter(token=TOKEN).update(latency_ms=LATENCY_MS)  # a slow Intercom: the try lasts
    return connector, port


def test_the_sweep_never_takes_a_live_notification_from_its_worker(sweep_connector):
    import redis

    from sandbox.intercom.models import Contact
    from sync.models import DeliveryStatus, HullNotification, SyncLog

    connector, port = sweep_connector
    redis.Redis.from_url(private_redis_url()).flushdb()
    env = stack_env(database_url=database_url(), redis_url=private_redis_url(), extra={"WORK_LEASE_SECONDS": str(LEASE_SECONDS)})
    sweeps = 0
    with running_stack(env, port=port, web_workers=1, clusters=2) as stack:
        response = requests.post(f"{stack.base_url}/hull/sweep/smart-notifier", data=json.dumps(notification_body()),
                                 headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 200
        deadline = time.monotonic() + 60
        while not HullNotification.objects.filter(status=DeliveryStatus.PROCESSING).exists():
            assert time.monotonic() < deadline, "the notification never started\n" + stack.logs()
            time.sleep(0.1)
        # The sweep, as eager as it gets, over several lease lengths while the notification runs.
        while HullNotification.objects.filter(status=DeliveryStatus.PROCESSING).exists() and sweeps < 6:
            sweep = subprocess.run([PYTHON, "manage.py", "requeue_stale_work", "--older-than-seconds", "0"],
                                   cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120)
            assert sweep.returncode == 0, sweep.stderr
            sweeps += 1
            time.sleep(LEASE_SECONDS / 2)
        deadline = time.monotonic() + 180
        while HullNotification.objects.exclude(status=DeliveryStatus.DONE).exists():
            assert time.monotonic() < deadline, f"{list(HullNotification.objects.values('status', 'error'))}\n{stack.logs()}"
            time.sleep(1)
        logs = stack.logs()

    assert sweeps >= 2, f"the notification finished before the sweep could run twice: slow it down {list(HullNotification.objects.values('status', 'error', 'processed_at', 'received_at'))} {list(SyncLog.objects.values_list('status', 'reason'))[:3]}"
    # One row per entity, one contact per user.
    rows = Counter(SyncLog.objects.filter(connector=connector, entity="user").values_list("hull_id", flat=True))
    assert len(rows) == USERS and set(rows.values()) == {1}, (rows, logs[-3000:])
    emails = Counter(Contact.objects.filter(workspace__token=TOKEN, deleted=False).values_list("email", flat=True))
    assert len(emails) == USERS and set(emails.values()) == {1}, emails
    # One processing per unit: a single try, never taken over.
    from sync.models import WorkAttempt

    outcomes = list(WorkAttempt.objects.filter(notification__notification_id="sweep-1").values_list("outcome", flat=True))
    assert outcomes == [WorkAttempt.Outcome.DONE], outcomes
