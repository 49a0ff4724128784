"""alerts to the connector's editors (hourly digests) and on the dashboard until acknowledged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from sync.models import ConnectorAlert, DeliveryStatus, HullNotification, SyncLog


@pytest.fixture
def editors(db, django_user_model, staff_user):
    call_command("setup_groups")
    editor = django_user_model.objects.create_user("eve", "eve@example.com", "pw", is_staff=True)
    editor.groups.add(Group.objects.get(name="Connector editors"))
    reader = django_user_model.objects.create_user("rita", "rita@example.com", "pw", is_staff=True)
    reader.groups.add(Group.objects.get(name="Log readers"))
    return ["eve@example.com", "staff@example.com"]


def test_a_revoked_token_raises_an_alert_mailed_to_the_editors_and_shown_until_acknowledged(
    connector, editors, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks, staff_client
):
    segment = hull_sandbox.add_segment("Customers", rule={"attribute": "traits_plan", "equals": "pro"})
    connector.synchronized_user_segments = [segment.hull_id]
    connector.intercom_access_token = "revoked-token"  # Intercom answers 401 to it
    connector.save()
    for email in ("a@acme.com", "b@acme.com"):
        hull_sandbox.add_user({"email": email}, {"plan": "pro"})

    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)

    # The lifecycle holds the work until Intercom is connected again (docs/lifecycle.md); the editors hear of it.
    assert HullNotification.objects.get().status == DeliveryStatus.PENDING
    [alert] = ConnectorAlert.objects.all()
    assert alert.kind == "token_lost" and "refused the access token" in alert.text
    [message] = mail.outbox  # one digest, not one mail per user
    assert sorted(message.to) == editors  # the log reader is not an editor
    assert "Acme" in message.subject and "Intercom token no longer works" in message.body

    dashboard = reverse("admin:sync_connector_dashboard", args=[connector.pk])
    page = staff_client.get(dashboard).content.decode()
    assert 'id="alerts"' in page and "refused the access token" in page
    staff_client.post(reverse("admin:sync_connector_acknowledge_alerts", args=[connector.pk]), {"alert": alert.pk})
    assert 'id="alerts"' not in staff_client.get(dashboard).content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == "staff" and alert.acknowledged_at is not None


def _errors(connector, n):
    SyncLog.objects.bulk_create(
        [SyncLog(connector=connector, direction="outgoing", entity="user", action="outgoing.user.error", status="error",
                 reason="intercom_error", message="Intercom said no") for _ in range(n)]
    )


def test_failures_past_the_threshold_send_at_most_one_digest_an_hour(connector, editors, capsys):
    connector.alert_failure_threshold = 5
    connector.save()
    _errors(connector, 4)
    call_command("alerts", "--connector", "acme", "--check")
    assert ConnectorAlert.objects.count() == 0 and mail.outbox == []

    _errors(connector, 1)
    call_command("alerts", "--connector", "acme", "--check")
    [alert] = ConnectorAlert.objects.all()
    assert alert.kind == "failures" and alert.text.startswith("5 sync errors in the last hour")
    assert len(mail.outbox) == 1

    _errors(connector, 20)
    call_command("alerts", "--connector", "acme", "--check")  # repeated within the hour: counted, not mailed
    alert.refresh_from_db()
    assert alert.occurrences == 2 and alert.text.startswith("25 sync errors") and len(mail.outbox) == 1
    assert ConnectorAlert.objects.filter(kind="error_state").exists()  # 25 errors and no success: status error

    ConnectorAlert.objects.update(emailed_at=alert.emailed_at - timedelta(minutes=61), last_seen_at=alert.last_seen_at)
    call_command("alerts", "--connector", "acme", "--check")  # an hour later: the next digest
    assert len(mail.outbox) == 2
    body = mail.outbox[1].body  # both alerts of the hour in one digest
    assert "Failures past the threshold (seen 2 times): 25 sync errors" in body and "Connector in error" in body

    call_command("alerts", "--connector", "acme", "--acknowledge")
    assert "No open alerts." in capsys.readouterr().out
    call_command("alerts", "--connector", "acme", "--check")  # acknowledged: quiet for an hour
    assert ConnectorAlert.objects.filter(acknowledged_at__isnull=True).count() == 0


def test_a_connector_in_error_raises_an_alert(connector, editors):
    from sync.models import SyncCursor

    SyncCursor.objects.create(connector=connector, kind="fetch_all", stream="users", status="failed", last_error="boom")
    call_command("alerts", "--connector", "acme", "--check")
    [alert] = ConnectorAlert.objects.all()
    assert alert.kind == "error_state" and "boom" in alert.text
    assert len(mail.outbox) == 1


def test_the_connector_page_explains_each_new_setting(staff_client, connector):
    from django.urls import reverse

    page = staff_client.get(reverse("admin:sync_connector_change", args=[connector.pk])).content.decode()
    for section in ("Removal and erasure", "Company moves", "Intercom event-name limit", "Consent (Intercom subscription types)",
                    "Support context", "Alerts"):
        assert section in page, section
    for words in ("Archive hides the contact in Intercom", "detached from the company of its previous Hull account",
                  "about 120 distinct event names", "opt-in type, true subscribes", "seconds to the first admin reply",
                  "at most one digest an hour"):
        assert words in page, words
