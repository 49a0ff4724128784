"""The stale-work sweep against two real workers on PostgreSQL + Redis (sync/work.py, docs/lifecycle.md).

A notification is slowed by a slow Intercom (the sandbox's latency) so it stays `processing` for many seconds, while
the sweep (`manage.py requeue_stale_work --older-than-seconds 0`, the most eager setting) runs again
and again. The older sweep picked rows by `received_at` alone: it put the live notification back
to `pending` and the second qcluster ran it at the same time (duplicate sync-log rows, twin contacts
possible). Now the running try holds a lease it renews by heartbeat (WORK_LEASE_SECONDS is set to a
few seconds here, so the heartbeat has to work), and the sweep leaves it alone: one try, one row per
entity.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set (.ci/run's second pass).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from sandbox.stack import PYTHON, ROOT
from tests.e2e.support import STACK_MARKS, wait_for
from tests.payloads import hull_user_message

pytestmark = STACK_MARKS

HULL_ID = "5c092905c36af496c700beef"
SEGMENT = {"id": "5bd720690026ca86b000005f", "name": "Customers", "type": "users_segment"}
USERS = 12
LEASE_SECONDS = 4
LATENCY_MS = 1200


@pytest.fixture
def sweep(stack_site):
    from sandbox.intercom.models import Workspace
    from sync.models import FieldMapping

    # No rate limit: the latency alone keeps the notification running for many seconds.
    site = stack_site("sweep", hull_id=HULL_ID, segment=SEGMENT, rate_limit=0, synchronized_user_segments=[SEGMENT["id"]])
    FieldMapping.objects.create(connector=site.connector, entity="user", direction="outgoing", hull_attribute="name", intercom_attribute="name")
    Workspace.objects.filter(token=site.token).update(latency_ms=LATENCY_MS)  # a slow Intercom: the try lasts
    return site


def test_the_sweep_never_takes_a_live_notification_from_its_worker(sweep):
    from sandbox.intercom.models import Contact
    from sync.models import DeliveryStatus, HullNotification, SyncLog, WorkAttempt

    messages = [
        hull_user_message(hull_id=f"sweep{i:019d}", email=f"sweep{i}@acme.com", external_id=f"sweep-{i}", name=f"Sweep {i}", segment=SEGMENT)
        for i in range(USERS)
    ]
    sweeps = 0
    with sweep.stack(web_workers=1, clusters=2, env={"WORK_LEASE_SECONDS": str(LEASE_SECONDS)}) as stack:
        assert sweep.post_notification(stack, sweep.user_update("sweep-1", messages)) == 200
        wait_for(HullNotification.objects.filter(status=DeliveryStatus.PROCESSING).exists, timeout=60, stack=stack, interval=0.1,
                 what=lambda: "the notification never started")
        # The sweep, as eager as it gets, over several lease lengths while the notification runs.
        while HullNotification.objects.filter(status=DeliveryStatus.PROCESSING).exists() and sweeps < 6:
            run = subprocess.run([PYTHON, "manage.py", "requeue_stale_work", "--older-than-seconds", "0"],
                                 cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            sweeps += 1
            time.sleep(LEASE_SECONDS / 2)
        wait_for(lambda: not HullNotification.objects.exclude(status=DeliveryStatus.DONE).exists(), timeout=180, stack=stack, interval=1,
                 what=lambda: list(HullNotification.objects.values("status", "error")))
        logs = stack.logs()

    assert sweeps >= 2, f"the notification finished before the sweep could run twice: slow it down {list(HullNotification.objects.values('status', 'error', 'processed_at', 'received_at'))} {list(SyncLog.objects.values_list('status', 'reason'))[:3]}"
    # One row per entity, one contact per user.
    rows = Counter(SyncLog.objects.filter(connector=sweep.connector, entity="user").values_list("hull_id", flat=True))
    assert len(rows) == USERS and set(rows.values()) == {1}, (rows, logs[-3000:])
    emails = Counter(Contact.objects.filter(workspace__token=sweep.token, deleted=False).values_list("email", flat=True))
    assert len(emails) == USERS and set(emails.values()) == {1}, emails
    # One processing per unit: a single try, never taken over.
    outcomes = list(WorkAttempt.objects.filter(notification__notification_id="sweep-1").values_list("outcome", flat=True))
    assert outcomes == [WorkAttempt.Outcome.DONE], outcomes
