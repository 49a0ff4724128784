"""Every admin page speaks to a support person: no raw codes, camelCase or backticks on screen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.models import DeliveryStatus, HullNotification, HullSegment, IdentityLink, SyncCursor, SyncLog, WebhookDelivery
from sync.synclog import log_outcome
from tests.admin_helpers import Recorder, fake_module
from tests.words_checker import raw_codes

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_connector(connector, monkeypatch):
    """A connector with something of everything: failures, skips, a fetch, segments."""
    fake_module(monkeypatch, "sync.incoming.fetch", connector_schedules_update=Recorder(result=[]))
    log_outcome(connector, direction="outgoing", entity="user", status="error", action="outgoing.user.error", reason="INTERCOM_4XX", message="Intercom refused the user: the email is not valid.", email="bad@x.io")
    log_outcome(connector, direction="outgoing", entity="user", status="skip", action="outgoing.user.skip", reason="not_in_segment", message="Not in any of the User filter's segments.", email="skip@x.io")
    log_outcome(connector, direction="incoming", entity="user", status="success", action="incoming.user.success", email="ok@x.io", intercom_id="ic1")
    WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="contact.user.created", payload={"id": "n1"}, status=DeliveryStatus.FAILED, error="Hull did not answer in time.")
    HullNotification.objects.create(connector=connector, notification_id="h1", channel="user:update", payload={"messages": []})
    HullNotification.objects.create(connector=connector, notification_id="h2", channel="user:update", is_export=True, payload={"messages": []})
    HullSegment.objects.create(connector=connector, kind="user", hull_id="s1", name="Customers")
    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic1", hull_id="h1")
    SyncCursor.objects.create(connector=connector, kind="fetch_all", stream="users", status="running", entities=10, total_estimate=100)
    # What the engine stores when Intercom is unreachable: shown in words, stored as it was.
    engine_error = "unavailable ConnectionError after 1 attempts"
    log_outcome(connector, direction="incoming", entity="user", status="error", action="incoming.user.error", reason="unavailable", message=engine_error, email="down@x.io")
    SyncCursor.objects.create(connector=connector, kind="incremental", stream="leads", status="failed", last_error=engine_error)
    WebhookDelivery.objects.create(connector=connector, notification_id="n2", topic="contact.lead.created", payload={"id": "n2"}, status=DeliveryStatus.FAILED, error=engine_error)
    return connector


def pages(connector) -> list[str]:
    pk = connector.pk
    urls = [
        reverse("admin:index"),
        reverse("admin:sync_connector_changelist"),
        reverse("admin:sync_connector_change", args=[pk]),
        reverse("admin:sync_connector_add"),
        reverse("admin:sync_connector_dashboard", args=[pk]),
        reverse("admin:sync_connector_history", args=[pk]),
    ]
    for action in ("check_connector", "fetch_all_users", "cancel_fetch_all", "replay_failures", "push_segment"):
        urls.append(reverse("admin:sync_connector_run_action", args=[pk, action]))
    for model in (SyncLog, HullNotification, WebhookDelivery, IdentityLink, SyncCursor, HullSegment):
        name = model._meta.model_name
        urls.append(reverse(f"admin:sync_{name}_changelist"))
        for obj in model.objects.all():
            urls.append(reverse(f"admin:sync_{name}_change", args=[obj.pk]))
    return urls


def test_no_page_shows_raw_codes(staff_client, busy_connector, intercom_sandbox):
    problems = {}
    for url in pages(busy_connector):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        found = raw_codes(response.content.decode())
        if found:
            problems[url] = found
    assert not problems, "\n".join(f"{url}\n  " + "\n  ".join(found) for url, found in problems.items())


def test_a_connector_waiting_for_set_up_says_so_in_words(staff_client, connector):
    connector.intercom_access_token = ""
    connector.save()
    html = staff_client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk])).content.decode()
    assert "Set-up needed" in html and not raw_codes(html)
    listing = staff_client.get(reverse("admin:sync_connector_changelist")).content.decode()
    assert "setupRequired" not in listing.split("<body", 1)[1].replace('status-setupRequired', "")


def test_the_checker_catches_what_the_issue_found():
    for text in ("setupRequired", "incoming.user.success", "unavailable ConnectionError after 1 attempts", "`GET /api/v1/app`", "INTERCOM_4XX", "Stable reason code"):
        assert raw_codes(f"<p>{text}</p>"), text
    assert not raw_codes("<p>The webhook URL is <code>https://x/intercom/acme/webhooks</code>.</p>")


def test_an_unreachable_intercom_is_said_in_words(staff_client, busy_connector):
    html = staff_client.get(reverse("admin:sync_connector_dashboard", args=[busy_connector.pk])).content.decode()
    assert "Intercom could not be reached (the connection failed, 1 try)" in html
    assert "ConnectionError" not in html
