"""Hull sandbox -> smart-notifier -> outgoing sync -> Intercom sandbox -> firehose write-back."""

from __future__ import annotations

import pytest

from sync.models import DeliveryStatus, HullNotification, SyncLog


def test_sandbox_user_reaches_intercom_and_ids_come_back(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks):
    pytest.importorskip("sync.outgoing.notifications")
    segment = hull_sandbox.add_segment("Customers", rule={"attribute": "traits_plan", "equals": "pro"})
    connector.synchronized_user_segments = [segment.hull_id]
    connector.save()
    hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "u-jane"}, {"plan": "pro", "first_name": "Jane"})

    with django_capture_on_commit_callbacks(execute=True):
        result = hull_sandbox.notify_users(connector)

    assert result.delivered_messages == 1
    assert result.flow_controls[0]["type"] == "next"
    notification = HullNotification.objects.get()
    assert notification.status == DeliveryStatus.DONE, notification.error
    log = SyncLog.objects.get(notification=notification)
    assert log.status == SyncLog.Status.SUCCESS, (log.reason, log.message)
    [contact] = intercom_sandbox.contacts(role="user")
    assert contact["email"] == "jane@acme.com"
    # The Intercom id is written back to Hull through the firehose, as user traits.
    user = hull_sandbox.user(email="jane@acme.com")
    assert user["traits_intercom_user/id"] == contact["id"]
    assert all(record.error == "" for record in hull_sandbox.firehose_records)
