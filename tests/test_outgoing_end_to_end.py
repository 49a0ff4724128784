"""Outgoing through the whole loop: Hull sandbox notifies the real endpoint, the task pushes to the
Intercom sandbox, the write-back lands in the Hull sandbox through the real firehose (JWTs), and the
echo Hull then sends costs no Intercom call. Also export chunks through `outgoing_messages_sync`."""

from __future__ import annotations

from sync.hull.messages import export_line_message
from sync.models import Entity, HullNotification, SyncLog
from sync.outgoing.notifications import outgoing_messages_sync
from tests.fixtures.outgoing.helpers import add_mapping


def test_push_write_back_and_echo_through_both_sandboxes(connector, intercom_sandbox, hull_sandbox, django_capture_on_commit_callbacks):
    connector.synchronized_user_segments = ["ALL"]
    connector.tag_users = False
    connector.save()
    add_mapping(connector, Entity.USER, "plan", "plan")
    intercom_sandbox.add_data_attribute("plan")
    hull_sandbox.add_user({"email": "bob@rei.com", "external_id": "ext-1"}, {"plan": "pro"})

    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)

    [contact] = intercom_sandbox.contacts(role="user")
    assert contact["custom_attributes"]["plan"] == "pro"
    record = next(r for r in hull_sandbox.firehose_records if r.type == "traits")
    as_user = record.claims["io.hull.asUser"]
    assert as_user["anonymous_id"] == f"intercom-user:user-{contact['id']}"
    assert as_user["email"] == "bob@rei.com" and as_user["external_id"] == "ext-1"
    user = hull_sandbox.user(email="bob@rei.com")
    assert user["traits_intercom_user/id"] == contact["id"]
    assert SyncLog.objects.get(connector=connector).action == "outgoing.user.success"

    # Hull now tells us about our own write-back: nothing goes to Intercom.
    intercom_sandbox.calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = hull_sandbox.notify_users(connector)
    assert result.delivered_messages == 1
    assert intercom_sandbox.calls == []
    latest = SyncLog.objects.filter(connector=connector).first()
    assert (latest.action, latest.reason) == ("outgoing.user.skip", "own_changes_only")


def test_export_chunks_of_one_notification_are_each_synced(connector, intercom_sandbox, hull_sandbox):
    connector.send_batch_as = "Leads"
    connector.tag_leads = False
    connector.save()
    add_mapping(connector, Entity.LEAD, "name", "name")
    notification = HullNotification.objects.create(connector=connector, notification_id="export-1", channel="user:update", is_export=True)
    lines = [{"id": f"u{i}", "email": f"u{i}@rei.com", "name": f"User {i}", "segment_ids": []} for i in range(4)]
    for chunk in (lines[:2], lines[2:]):
        messages = [export_line_message(line, object_type="user", segments_by_id={}) for line in chunk]
        outgoing_messages_sync(connector=connector, messages=messages, notification=notification)

    assert sorted(c["email"] for c in intercom_sandbox.contacts(role="lead")) == [f"u{i}@rei.com" for i in range(4)]
    assert SyncLog.objects.filter(notification=notification, action="outgoing.user.success").count() == 4
    notification.refresh_from_db()
    assert notification.processed_messages == []  # exports are replayed whole, not resumed by index
