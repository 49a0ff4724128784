"""the removal policy (deleted in Hull / left every synced segment) and erasure, Hull sandbox in,
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


# --- erasure ----------------------------------------------------------------------------------


def test_erase_by_email_deletes_every_contact_of_the_person_and_keeps_an_audit_row_without_personal_data(
    connector, customers, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks, capsys
):
    user, contact = _push_jane(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)
    lead = intercom_sandbox.add_contact(role="lead", email="jane@acme.com")  # made in Intercom, unknown to us
    other = intercom_sandbox.add_contact(role="user", email="bob@acme.com")
    assert SyncLog.objects.filter(email="jane@acme.com").exists()

    call_command("erase_contact", "--connector", "acme", "--email", "Jane@Acme.com ")

    out = capsys.readouterr().out
    assert "2 Intercom contact(s) deleted" in out and "conversations" in out
    assert [c["id"] for c in intercom_sandbox.contacts()] == [other["id"]]
    deletes = sorted(c.path for c in intercom_sandbox.calls if c.method == "DELETE")
    assert deletes == sorted([f"/contacts/{contact['id']}", f"/contacts/{lead['id']}"])
    assert not IdentityLink.objects.filter(connector=connector, entity=Entity.USER).exists()
    assert not SyncLog.objects.filter(email__iexact="jane@acme.com").exists()
    [audit] = ErasureAudit.objects.all()
    assert (audit.identity_kind, audit.outcome, audit.contacts_deleted) == ("email", "erased", 2)
    assert audit.actor.startswith("command")
    from sync.services.erasure import identity_hash

    assert audit.identity_hash == identity_hash("email", "jane@acme.com")
    stored = " ".join(str(v) for v in ErasureAudit.objects.values_list("actor", "identity_hash", "detail", "outcome").get())
    assert "jane" not in stored.lower() and contact["id"] not in stored
    row = SyncLog.objects.get(connector=connector)
    assert row.action == "outgoing.user.erasure.erased" and row.email == "" and f"audit #{audit.pk}" in row.message


def test_the_admin_erase_page_says_what_intercom_keeps_and_erases_by_hull_id(
    staff_client, connector, customers, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    user, contact = _push_jane(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)
    url = reverse("admin:sync_connector_erase", args=[connector.pk])
    page = staff_client.get(url).content.decode()
    assert "What Intercom may still keep" in page and "backups" in page

    response = staff_client.post(url, {"kind": "hull_id", "value": user.hull_id, "confirm": "on"}, follow=True)

    assert "1 Intercom contact(s) deleted" in response.content.decode()
    assert intercom_sandbox.contacts() == []
    audit = ErasureAudit.objects.get()
    assert (audit.actor, audit.identity_kind, audit.outcome) == ("staff", "hull_id", "erased")


def test_erasing_someone_intercom_does_not_know_is_recorded_as_not_found(connector, intercom_sandbox, capsys):
    call_command("erase_contact", "--connector", "acme", "--external-id", "nobody")
    assert "No Intercom contact matched" in capsys.readouterr().out
    assert ErasureAudit.objects.get().outcome == "not_found"
