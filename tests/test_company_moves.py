"""when a Hull user's account changes, the Intercom contact follows (attach new, detach old)."""

from __future__ import annotations

import pytest

from sync.models import SyncLog


@pytest.fixture
def linking(connector):
    connector.synchronized_user_segments = ["ALL"]
    connector.synchronized_account_segments = ["ALL"]
    connector.link_users_in_service = True
    connector.tag_users = connector.tag_companies = False
    connector.save()
    return connector


def _company_ids_of(intercom_sandbox, contact_id):
    return sorted(c["company_id"] for c in intercom_sandbox.companies() if contact_id in _members(c["id"]))


def _members(company_intercom_id):
    from sandbox.intercom.models import Company

    return set(Company.objects.get(intercom_id=company_intercom_id).contacts.values_list("intercom_id", flat=True))


def _move(linking, hull_sandbox, intercom_sandbox, run):
    hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "u-jane"}, {"plan": "pro"}, account={"external_id": "acme", "domain": "acme.com"})
    with run(execute=True):
        hull_sandbox.notify_users(linking)
    [contact] = intercom_sandbox.contacts(role="user")
    assert _company_ids_of(intercom_sandbox, contact["id"]) == ["acme"]

    hull_sandbox.add_user({"email": "jane@acme.com"}, {}, account={"external_id": "globex", "domain": "globex.com"})
    with run(execute=True):
        hull_sandbox.notify_users(linking)
    return contact


def test_a_user_who_moves_to_another_account_leaves_the_old_company_in_intercom(
    linking, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    contact = _move(linking, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)

    assert _company_ids_of(intercom_sandbox, contact["id"]) == ["globex"]
    acme = next(c for c in intercom_sandbox.companies() if c["company_id"] == "acme")
    assert ("DELETE", f"/contacts/{contact['id']}/companies/{acme['id']}") in [(c.method, c.path) for c in intercom_sandbox.calls]
    row = SyncLog.objects.filter(connector=linking, entity="user").first()
    assert row.status == "success" and "detached from the previous company" in row.message
    assert row.data["company_moves"] == {"detached": [acme["id"]]}


def test_companies_attached_in_intercom_by_hand_stay_and_the_setting_can_keep_memberships(
    linking, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    linking.move_company_memberships = False
    linking.save()
    contact = _move(linking, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks)
    assert _company_ids_of(intercom_sandbox, contact["id"]) == ["acme", "globex"]  # the old behaviour, chosen


def test_a_hand_made_membership_is_not_detached(linking, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks):
    hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "u-jane"}, {"plan": "pro"}, account={"external_id": "acme", "domain": "acme.com"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(linking)
    [contact] = intercom_sandbox.contacts(role="user")
    intercom_sandbox.add_company("partner-co", contact_ids=[contact["id"]])  # attached in Intercom by a person
    hull_sandbox.add_user({"email": "jane@acme.com"}, {}, account={"external_id": "globex", "domain": "globex.com"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(linking)
    assert _company_ids_of(intercom_sandbox, contact["id"]) == ["globex", "partner-co"]
