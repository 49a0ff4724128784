"""The same new leads pushed by several Hull notifications at once, on two qcluster processes.

PostgreSQL + Redis, real HTTP: gunicorn serves the connector and the Intercom/Hull sandboxes, whose
search shows a new contact only after 120 s (Intercom's lag). Every notification carries the same
new leads; the workers process them concurrently. Leads have nothing unique in Intercom (no 409),
so only the identity lock and the IdentityLink keep them single: exactly one lead per Hull user.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.support import STACK_MARKS, open_units, wait_for
from tests.payloads import hull_user_message

pytestmark = STACK_MARKS

HULL_ID = "5c092905c36af496c700beef"
SEGMENT = {"id": "5bd720690026ca86b0000099", "name": "Visitors", "type": "users_segment"}
LEADS = 6
NOTIFICATIONS = 8
DRAIN_TIMEOUT = 180  # seconds


def messages(n: int) -> list[dict]:
    """The same new leads in every notification (names differ by notification)."""
    return [
        hull_user_message(hull_id=f"lead{i:020d}", email=f"visitor{i}@acme.com", name=f"Visitor {i} (from {n})", segment=SEGMENT, entered=True)
        for i in range(LEADS)
    ]


@pytest.fixture
def twins(stack_site):
    from sandbox.intercom.models import Workspace

    site = stack_site("twins", hull_id=HULL_ID, segment=SEGMENT, synchronized_lead_segments=[SEGMENT["id"]],
                      synchronized_user_segments=[], tag_leads=False)
    assert Workspace.objects.get(token=site.token).search_lag_seconds >= 120  # the sandbox's default
    return site


def test_concurrent_notifications_for_the_same_new_leads_on_two_workers_make_no_twins(twins):
    from sandbox.intercom.models import Contact
    from sync.models import DeliveryStatus, HullNotification, SyncLog

    with twins.stack(web_workers=2, clusters=2) as stack:
        session = requests.Session()

        def send(n: int) -> int:
            return twins.post_notification(stack, twins.user_update(f"twins-{n}", messages(n)), session)

        with ThreadPoolExecutor(max_workers=NOTIFICATIONS) as pool:
            codes = Counter(pool.map(send, range(NOTIFICATIONS)))
        assert codes == Counter({200: NOTIFICATIONS}), codes
        wait_for(lambda: not open_units(), timeout=DRAIN_TIMEOUT, stack=stack, what=lambda: f"still {open_units()} open")
        logs = stack.logs()

    assert set(HullNotification.objects.values_list("status", flat=True)) == {DeliveryStatus.DONE}, logs
    leads = Counter(Contact.objects.filter(workspace__token=twins.token, role="lead", deleted=False).values_list("email", flat=True))
    print("twins:", json.dumps({"leads": len(leads), "contacts": sum(leads.values()), "pushes": LEADS * NOTIFICATIONS}))
    assert sorted(leads) == sorted(f"visitor{i}@acme.com" for i in range(LEADS)), leads
    assert set(leads.values()) == {1}, f"twin leads: {leads}"
    assert not SyncLog.objects.filter(connector=twins.connector, status=SyncLog.Status.ERROR).exists(), list(
        SyncLog.objects.filter(status=SyncLog.Status.ERROR).values("reason", "message")[:5]
    )
