"""The connector dashboard and the status it reports (Hull's ok / warning / error / setupRequired)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sync.models import DeliveryStatus, HullNotification, RateBudget, SyncCursor, SyncLog, WebhookDelivery
from sync.services.status import connector_status
from sync.synclog import log_outcome

pytestmark = pytest.mark.django_db


def dashboard(client, connector) -> str:
    response = client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_status_is_setup_required_until_intercom_is_connected(connector):
    connector.intercom_access_token = ""
    connector.save()
    status = connector_status(connector=connector)
    assert status.status == "setupRequired"
    assert "Connector has not been authenticated with Intercom." in status.messages


def test_status_warns_when_no_segment_is_selected(connector):
    status = connector_status(connector=connector)
    assert status.status == "warning"
    assert "No user or lead segments are selected: no Hull users will be sent to Intercom." in status.messages


def test_status_is_ok_when_configured_and_quiet(connector):
    connector.synchronized_user_segments = ["ALL"]
    connector.save()
    assert connector_status(connector=connector).as_dict() == {"status": "ok", "messages": []}


def test_many_errors_and_no_success_is_an_error(connector):
    connector.synchronized_user_segments = ["ALL"]
    for n in range(11):
        log_outcome(connector, direction="outgoing", entity="user", status="error", action="outgoing.user.error", reason="INTERCOM_4XX", message="Bad Request", email=f"u{n}@x.io")
    assert connector_status(connector=connector).status == "error"


def test_a_failed_fetch_is_an_error_with_its_reason(connector):
    connector.synchronized_user_segments = ["ALL"]
    SyncCursor.objects.create(connector=connector, kind="fetch_all", stream="users", status="failed", last_error="Intercom 500")
    status = connector_status(connector=connector)
    assert status.status == "error"
    assert "Fetch all of users failed: Intercom 500" in status.messages


def test_the_dashboard_shows_status_webhook_url_and_queues(staff_client, connector, settings):
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    HullNotification.objects.create(connector=connector, notification_id="h1", channel="user:update")
    WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", status=DeliveryStatus.FAILED)
    html = dashboard(staff_client, connector)
    assert 'data-status="warning">Needs attention<' in html
    assert "https://connector.example.com/intercom/acme/webhooks" in html
    assert 'Hull notifications waiting</th><td id="pending-notifications">1<' in html
    assert "Replay failed" in html
    if "orm" in settings.Q_CLUSTER:  # the Redis broker's depth is not counted (dashboard.queue_depth)
        assert 'id="queue-depth">0<' in html


def test_the_dashboard_shows_fetch_progress_and_the_cursor(staff_client, connector):
    SyncCursor.objects.create(
        connector=connector, kind="fetch_all", stream="users", status="running", pages=3, entities=300,
        total_estimate=1000, page_cursor="WzE3MDAwMDAwMDAsIjY1ZiJd", started_at=timezone.now(),
    )
    mark = timezone.now() - timedelta(minutes=3)
    SyncCursor.objects.create(connector=connector, kind="incremental", stream="leads", status="done", high_water_mark=mark, finished_at=timezone.now())
    html = dashboard(staff_client, connector)
    assert "Running: 300 users in 3 page(s)" in html
    assert '<progress max="1000" value="300">' in html
    assert mark.strftime("%Y-%m-%d %H:%M:%S") in html


def test_the_dashboard_shows_the_rate_limit_budget_left(staff_client, connector):
    RateBudget.objects.create(workspace_key="ws_acme", limit=1000, remaining=740, reset_at=timezone.now() + timedelta(seconds=8))
    assert "740 of 1000 until" in dashboard(staff_client, connector)


def test_the_dashboard_counts_the_last_24_hours_per_entity_and_lists_latest_errors(staff_client, connector):
    log_outcome(connector, direction="outgoing", entity="user", status="success", action="outgoing.user.success", email="a@x.io")
    log_outcome(connector, direction="outgoing", entity="user", status="skip", action="outgoing.user.skip", reason="not_in_segment", message="User is not present in any of the defined segments")
    log_outcome(connector, direction="outgoing", entity="user", status="error", action="outgoing.user.error", reason="INTERCOM_4XX", message="Custom attribute 'x' does not exist", email="bad@x.io")
    old = log_outcome(connector, direction="outgoing", entity="user", status="success", action="outgoing.user.success")
    SyncLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    html = dashboard(staff_client, connector)
    assert "<td>User (Hull → Intercom)</td><td>1</td><td>1</td><td>0</td><td>1</td>" in html
    assert "Custom attribute &#x27;x&#x27; does not exist" in html
    assert "bad@x.io" in html


def test_the_change_page_links_to_the_dashboard_and_the_list_shows_status(staff_client, connector, intercom_sandbox):
    html = staff_client.get(reverse("admin:sync_connector_change", args=[connector.pk])).content.decode()
    assert reverse("admin:sync_connector_dashboard", args=[connector.pk]) in html
    listing = staff_client.get(reverse("admin:sync_connector_changelist")).content.decode()
    assert "status-warning" in listing


def test_an_unknown_connector_dashboard_is_404(staff_client):
    assert staff_client.get(reverse("admin:sync_connector_dashboard", args=[9999])).status_code == 404


def test_the_live_part_refreshes_by_itself_with_progress_and_eta(staff_client, connector):
    html = dashboard(staff_client, connector)
    live_url = reverse("admin:sync_connector_dashboard_live", args=[connector.pk])
    assert f'data-live-url="{live_url}"' in html and "setInterval(refresh" in html
    SyncCursor.objects.create(
        connector=connector, kind="fetch_all", stream="users", status="running", pages=2, entities=200,
        total_estimate=1000, started_at=timezone.now() - timedelta(minutes=2),
    )
    live = staff_client.get(live_url).content.decode()
    assert "<html" not in live  # a fragment, swapped into the page
    assert '<progress max="1000" value="200">' in live
    assert "about 8 minutes left" in live
    assert 'id="queue-depth"' in live and 'id="latest-errors"' in live


def test_last_24_hours_counts_people_not_rows(staff_client, connector):
    for _ in range(3):  # one person synced three times
        log_outcome(connector, direction="outgoing", entity="user", status="success", action="outgoing.user.success", email="a@x.io", intercom_id="ic-a")
    log_outcome(connector, direction="outgoing", entity="user", status="success", action="outgoing.user.success", email="b@x.io", intercom_id="ic-b")
    html = dashboard(staff_client, connector)
    assert "<td>User (Hull → Intercom)</td><td>2</td><td>0</td><td>0</td><td>0</td>" in html
