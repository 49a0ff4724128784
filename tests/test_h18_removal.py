"""Issue 18.1: the removal policy (deleted in Hull / left every synced segment) and erasure, Hull sandbox in,
Intercom sandbox out."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from sandbox.hull.notifier import deliver
from sync.models import Connector, Entity, ErasureAudit, IdentityLink, SyncLog


@pytest.fixture
def customers(connector, hull_sandbox):
    segment = hull_sandbox.add_segment("Customers", rule={"attribute": "traits_plan", "equals": "pro"})
    connector.synchronized_user_segments = [segment.hull_id]
    connector.tag_users = False
    connector.save()
    return segment


def _push_jane(connector, hull_sandbox, intercom_sandbox, run):
    user = hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "u-jane"}, {"plan": "pro"})
    with run(execute=True):
        hull_sandbox.notify_users(connector)
    [contact] = intercom_sandbox.contacts(role="user")
    return user, contact


def test_leaving_the_last_synced_segment_archives_the_contact_and_coming_back_unarchives_it(
    connector, customers, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    connector.removal_policy = Connector.RemovalPolicy.ARCHIVE
    connector.save()
    user, contact = _push_jane(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)

    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "free"})  # leaves "Customers"
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)

    [after] = intercom_sandbox.contacts(role="user")
    assert after["id"] == contact["id"] and after["archived"] is True and after["deleted"] is False
    row = SyncLog.objects.filter(connector=connector).first()
    assert (row.status, row.reason) == ("success", "removal_archived")
    assert "left every synchronized segment" in row.message and row.intercom_id == contact["id"]

    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "pro"})  # back in the segment
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    [back] = intercom_sandbox.contacts(role="user")
    assert back["id"] == contact["id"] and back["archived"] is False
    assert ("POST", f"/contacts/{contact['id']}/unarchive") in [(c.method, c.path) for c in intercom_sandbox.calls]
    assert SyncLog.objects.filter(connector=connector).first().status == "success"


def test_a_user_deleted_in_hull_is_deleted_in_intercom_with_the_delete_policy(
    connector, customers, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    connector.removal_policy = Connector.RemovalPolicy.DELETE
    connector.save()
    user, contact = _push_jane(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        result = deliver(connector, "user:delete", [{"user": {"id": user.hull_id, "email": "jane@acme.com"}}], sleep=lambda s: None)

    assert result.delivered_messages == 1
    assert intercom_sandbox.contacts(role="user") == []
    assert [c["id"] for c in intercom_sandbox.contacts(include_deleted=True)] == [contact["id"]]
    assert not IdentityLink.objects.filter(connector=connector, entity=Entity.USER).exists()
    row = SyncLog.objects.filter(connector=connector).first()
    assert (row.status, row.reason) == ("success", "removal_deleted")
    assert "deleted in Hull" in row.message


def test_by_default_nothing_happens_in_intercom_and_the_log_says_why(
    connector, customers, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    user, contact = _push_jane(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)
    intercom_sandbox.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        deliver(connector, "user:delete", [{"user": {"id": user.hull_id}}], sleep=lambda s: None)

    assert intercom_sandbox.calls == []
    assert intercom_sandbox.contacts(role="user")[0]["archived"] is False
    row = SyncLog.objects.filter(connector=connector).first()
    assert (row.status, row.reason) == ("skip", "removal_policy_nothing")
    assert "removal policy is “do nothing”" in row.message
