"""Intercom's event-name limit, counted, warned about on the dashboard, optionally enforced."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.models import SentEventName, SyncLog


@pytest.fixture
def events_on(connector):
    connector.synchronized_user_segments = ["ALL"]
    connector.tag_users = False
    connector.send_events = True
    connector.outgoing_events = ["all_events"]
    connector.event_name_limit = 3
    connector.save()
    return connector


def _send(connector, hull_sandbox, run, names, at="2026-11-01T10:00:00Z"):
    events = [{"event": n, "created_at": at} for n in names]
    hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "u-jane"}, {"plan": "pro"}, events=events)
    with run(execute=True):
        hull_sandbox.notify_users(connector)


def test_new_names_past_the_limit_are_skipped_with_a_reason_and_known_names_keep_flowing(
    events_on, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    events_on.stop_new_event_names_at_limit = True
    events_on.save()
    _send(events_on, hull_sandbox, django_capture_on_commit_callbacks, ["Signed Up", "Viewed Page", "Paid"])
    assert sorted(SentEventName.objects.values_list("name", flat=True)) == ["Paid", "Signed Up", "Viewed Page"]

    _send(events_on, hull_sandbox, django_capture_on_commit_callbacks, ["Churned", "Paid"], at="2026-11-02T10:00:00Z")

    sent = [e["event_name"] for e in intercom_sandbox.events()]
    assert sent.count("Paid") == 2 and "Churned" not in sent
    skip = SyncLog.objects.get(entity="event", status="skip")
    assert skip.reason == "event_name_limit" and skip.data["event"] == "Churned"
    assert "new event name" in skip.message and "3 distinct event names" in skip.message
    assert SentEventName.objects.count() == 3


def test_by_default_events_still_go_and_the_dashboard_warns(
    events_on, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks, staff_client
):
    _send(events_on, hull_sandbox, django_capture_on_commit_callbacks, ["A", "B", "C", "D"])
    assert len(intercom_sandbox.events()) == 4  # the choice is the admin's: by default nothing is held back
    assert SentEventName.objects.count() == 4

    page = staff_client.get(reverse("admin:sync_connector_dashboard", args=[events_on.pk])).content.decode()
    assert "4 distinct event names sent by this connector" in page
    assert "Intercom ignores events with a new name" in page


def test_the_dashboard_warns_from_100_names_with_the_default_limit(connector, staff_client):
    SentEventName.objects.bulk_create([SentEventName(connector=connector, name=f"event {i}") for i in range(99)])
    url = reverse("admin:sync_connector_dashboard", args=[connector.pk])
    assert 'id="event-name-warning"' not in staff_client.get(url).content.decode()
    SentEventName.objects.create(connector=connector, name="event 99")
    assert "Close to Intercom's event-name limit" in staff_client.get(url).content.decode()
