"""Sync log, Hull notification and webhook delivery admins: read-only, searchable, linked, replayable."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.models import DeliveryStatus, HullNotification, IdentityLink, WebhookDelivery
from sync.services.connectors import connector_create
from sync.synclog import log_outcome

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(connector) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        connector=connector, notification_id="notif_1", topic="contact.created", status=DeliveryStatus.FAILED,
        error="boom", payload={"type": "notification_event", "data": {"item": {"id": "65f0", "email": "lea@x.io"}}},
    )


@pytest.fixture
def log_row(connector, delivery):
    IdentityLink.objects.create(connector=connector, entity="lead", intercom_id="65f0", hull_id="hull-1", email="lea@x.io")
    return log_outcome(
        connector, direction="incoming", entity="lead", status="success", action="incoming.user.success",
        hull_id="hull-1", intercom_id="65f0", email="lea@x.io", data={"traits": {"intercom_lead/email": "lea@x.io"}}, delivery=delivery,
    )


def test_sync_log_is_searchable_by_email_and_ids(staff_client, log_row, connector):
    log_outcome(connector, direction="outgoing", entity="user", status="skip", action="outgoing.user.skip", reason="not_in_segment", message="User is not present in any of the defined segments", email="other@x.io")
    url = reverse("admin:sync_synclog_changelist")
    for term in ("lea@x.io", "hull-1", "65f0"):
        html = staff_client.get(url, {"q": term}).content.decode()
        assert "lea@x.io" in html and "other@x.io" not in html, term


def test_a_log_row_links_to_its_delivery_its_hull_entity_and_its_intercom_contact(staff_client, log_row, delivery):
    html = staff_client.get(reverse("admin:sync_synclog_change", args=[log_row.pk])).content.decode()
    assert reverse("admin:sync_webhookdelivery_change", args=[delivery.pk]) in html
    assert reverse("admin:sync_synclog_changelist") + "?hull_id=hull-1" in html
    assert reverse("admin:sync_identitylink_changelist") + "?intercom_id=65f0" in html
    assert "&quot;intercom_lead/email&quot;: &quot;lea@x.io&quot;" in html  # pretty JSON
    filtered = staff_client.get(reverse("admin:sync_identitylink_changelist"), {"intercom_id": "65f0"})
    assert filtered.status_code == 200 and "hull-1" in filtered.content.decode()


def test_a_delivery_links_to_its_log_rows_and_shows_its_payload(staff_client, log_row, delivery):
    html = staff_client.get(reverse("admin:sync_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert reverse("admin:sync_synclog_changelist") + f"?delivery__id__exact={delivery.pk}" in html
    assert "&quot;email&quot;: &quot;lea@x.io&quot;" in html
    rows = staff_client.get(reverse("admin:sync_synclog_changelist"), {"delivery__id__exact": delivery.pk})
    assert rows.status_code == 200 and "lea@x.io" in rows.content.decode()


def test_deliveries_are_searchable_by_the_email_of_their_contact(staff_client, log_row, delivery, connector):
    WebhookDelivery.objects.create(connector=connector, notification_id="notif_2", topic="user.created")
    html = staff_client.get(reverse("admin:sync_webhookdelivery_changelist"), {"q": "lea@x.io"}).content.decode()
    assert "notif_1" in html and "notif_2" not in html


def test_logs_cannot_be_added_or_edited(staff_client, log_row, delivery):
    assert staff_client.get(reverse("admin:sync_synclog_add")).status_code == 403
    response = staff_client.post(reverse("admin:sync_synclog_change", args=[log_row.pk]), {"status": "error"})
    assert response.status_code == 403
    html = staff_client.get(reverse("admin:sync_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert 'name="_save"' not in html


def test_replaying_a_delivery_resets_it_and_enqueues_the_task(staff_client, delivery, monkeypatch, django_capture_on_commit_callbacks):
    enqueued: list[tuple] = []
    monkeypatch.setattr("sync.work.enqueue_now", lambda *args, **kw: enqueued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:sync_webhookdelivery_changelist"), {"action": "replay_deliveries", "_selected_action": [delivery.pk]}
        )
    assert response.status_code == 302
    assert enqueued == [("sync.tasks.process_webhook_delivery", delivery.pk)]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error) == (DeliveryStatus.PENDING, "")


def test_replaying_a_notification_enqueues_the_notification_task(staff_client, connector, monkeypatch, django_capture_on_commit_callbacks):
    notification = HullNotification.objects.create(connector=connector, notification_id="h1", channel="user:update", status=DeliveryStatus.FAILED)
    enqueued: list[tuple] = []
    monkeypatch.setattr("sync.work.enqueue_now", lambda *args, **kw: enqueued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("admin:sync_hullnotification_changelist"), {"action": "replay_notifications", "_selected_action": [notification.pk]})
    assert enqueued == [("sync.tasks.process_notification", notification.pk)]


def test_the_list_does_not_load_payloads(staff_client, delivery, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        staff_client.get(reverse("admin:sync_webhookdelivery_changelist"))
    selects = [q["sql"] for q in queries.captured_queries if "sync_webhookdelivery" in q["sql"] and "SELECT" in q["sql"] and '"payload"' not in q["sql"]]
    assert selects, "the changelist query should not select the payload column"
    assert not any('"sync_webhookdelivery"."payload"' in q["sql"] for q in queries.captured_queries)


def test_the_list_says_why_in_words_and_leaves_out_the_only_connector(staff_client, connector):
    message = "Custom attribute 'plan_tier' does not exist on this workspace"
    log_outcome(connector, direction="outgoing", entity="user", status="error", action="outgoing.user.error",
                reason="intercom_error", message=message, email="err@x.io")
    html = staff_client.get(reverse("admin:sync_synclog_changelist")).content.decode()
    assert "Custom attribute &#x27;plan_tier&#x27; does not exist" in html  # Intercom's words, not just a code
    assert 'title="Custom attribute' in html and "intercom_error:" not in html  # the code is a filter, not the text
    assert "column-connector" not in html  # one connector: no column repeating its name

    connector_create(name="Second", slug="second")
    html = staff_client.get(reverse("admin:sync_synclog_changelist")).content.decode()
    assert "column-connector" in html
