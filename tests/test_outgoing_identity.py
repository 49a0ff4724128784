"""Outgoing identity under Intercom's search lag: direct reads, our own identity map, normalised
emails, the identity lock (threads), archived contacts, and creates whose outcome is unknown."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from sync.models import DeliveryStatus, Entity, IdentityLink, IdentityLock, SyncLog
from sync.outgoing import contacts as contacts_module
from sync.outgoing.locks import IdentityUnsettled, identity_keys, identity_lock
from sync.outgoing.notifications import SEARCH_SETTLE, notification_process
from tests.fixtures.outgoing.helpers import (  # noqa: F401 - pytest fixture
    add_mapping,
    calls,
    recording_firehose,
    segment,
    store_notification,
    user_message,
)


@pytest.fixture
def users(connector):
    connector.synchronized_user_segments = ["users"]
    connector.tag_users = False
    connector.save()
    add_mapping(connector, Entity.USER, "name", "name")
    return connector


@pytest.fixture
def leads(connector):
    connector.synchronized_lead_segments = ["leads"]
    connector.synchronized_user_segments = []
    connector.tag_leads = False
    connector.save()
    add_mapping(connector, Entity.LEAD, "name", "name")
    return connector


def push(connector, *messages):
    notification = store_notification(connector, list(messages))
    notification_process(notification=notification)
    notification.refresh_from_db()
    return notification


def lead_message(user: dict) -> dict:
    return user_message(user, segments=[segment("leads")], changes={"segments": {"entered": [segment("leads")]}})


def users_message(user: dict) -> dict:
    return user_message(user, segments=[segment("users")], changes={"segments": {"entered": [segment("users")]}})


def test_a_new_user_with_an_external_id_costs_one_direct_read_then_one_create(users, intercom_sandbox, recording_firehose):
    push(users, users_message({"id": "u1", "email": "bob@rei.com", "external_id": "bob-1"}))

    assert calls(intercom_sandbox) == [("GET", "/contacts/find_by_external_id/bob-1"), ("POST", "/contacts")]
    assert SyncLog.objects.get(connector=users).data["resolved_by"] == "none"


def test_an_existing_user_found_by_its_external_id_is_updated_even_before_search_shows_it(users, intercom_sandbox, recording_firehose):
    made = intercom_sandbox.add_contact(role="user", external_id="bob-1", email="bob@rei.com", fresh=True)  # search lags

    push(users, users_message({"id": "u1", "email": "bob@rei.com", "external_id": "bob-1", "name": "Bob"}))

    assert calls(intercom_sandbox) == [("GET", "/contacts/find_by_external_id/bob-1"), ("PUT", f"/contacts/{made['id']}")]
    assert [c["name"] for c in intercom_sandbox.contacts(role="user")] == ["Bob"]


def test_a_lead_we_just_created_is_found_in_our_identity_map_not_created_twice(leads, intercom_sandbox, recording_firehose):
    """A second Hull user with the lead's email (Hull merged, or the id changed) within the search lag."""
    push(leads, lead_message({"id": "h1", "email": "visitor@acme.com", "name": "First"}))
    push(leads, lead_message({"id": "h2", "email": "  Visitor@ACME.com ", "name": "Second"}))

    [lead] = intercom_sandbox.contacts(role="lead")
    assert lead["name"] == "Second" and lead["email"] == "Visitor@ACME.com"  # trimmed, case kept
    assert SyncLog.objects.filter(connector=leads).latest("pk").data["resolved_by"] == "map"


def test_a_lead_known_from_an_incoming_fetch_is_updated_not_twinned(leads, intercom_sandbox, recording_firehose):
    made = intercom_sandbox.add_contact(role="lead", email="visitor@acme.com", fresh=True)
    IdentityLink.objects.create(connector=leads, entity=Entity.LEAD, intercom_id=made["id"], email="visitor@acme.com")

    push(leads, lead_message({"id": "h1", "email": "VISITOR@acme.com", "name": "Known"}))

    [lead] = intercom_sandbox.contacts(role="lead")
    assert lead["id"] == made["id"] and lead["name"] == "Known"
    assert ("POST", "/contacts") not in calls(intercom_sandbox)


def test_emails_are_normalised_before_searching_and_sending(leads, intercom_sandbox, recording_firehose):
    made = intercom_sandbox.add_contact(role="lead", email="visitor@acme.com")  # old, searchable

    push(leads, lead_message({"id": "h1", "email": " Visitor@Acme.com  ", "name": "Spaced"}))

    search = next(c for c in intercom_sandbox.calls if c.path == "/contacts/search")
    assert search.body["query"]["value"][0] == {"field": "email", "operator": "=", "value": "visitor@acme.com"}
    [lead] = intercom_sandbox.contacts(role="lead")
    assert lead["id"] == made["id"] and lead["name"] == "Spaced"
    assert SyncLog.objects.get(connector=leads).status == SyncLog.Status.SUCCESS


def test_a_409_naming_an_archived_contact_unarchives_it_before_the_update(users, intercom_sandbox, recording_firehose):
    """Left archived, the contact would be updated but invisible in Intercom (docs/outgoing-identity.md)."""
    made = intercom_sandbox.add_contact(role="user", email="bob@rei.com", archived=True)

    push(users, users_message({"id": "u1", "email": "bob@rei.com", "name": "Bob"}))

    [user] = intercom_sandbox.contacts(role="user")
    assert user["id"] == made["id"] and user["name"] == "Bob" and user["archived"] is False
    assert ("POST", f"/contacts/{made['id']}/unarchive") in calls(intercom_sandbox)
    row = SyncLog.objects.get(connector=users)
    assert row.status == SyncLog.Status.SUCCESS and row.data["unarchived"] == made["id"]


def test_a_lead_create_failing_after_the_work_halts_and_the_resume_finds_the_lead(leads, intercom_sandbox, recording_firehose):
    """Intercom made the lead and answered 500: no retry (a twin), a halt; the resume after the
    search settled finds it. A second notification meanwhile waits instead of creating it."""
    intercom_sandbox.set_fault_rate(1.0, mode="after", only=(("POST", "/contacts"),))
    first = push(leads, lead_message({"id": "h1", "email": "visitor@acme.com"}))
    intercom_sandbox.set_fault_rate(0.0)
    assert first.status == DeliveryStatus.PENDING
    assert len(intercom_sandbox.contacts(role="lead")) == 1

    # Another notification for the same lead before Intercom's search shows it: halted too.
    second = push(leads, lead_message({"id": "h1", "email": "visitor@acme.com", "name": "Again"}))
    assert second.status == DeliveryStatus.PENDING and "earlier create" in second.error
    assert len(intercom_sandbox.contacts(role="lead")) == 1

    intercom_sandbox.advance(SEARCH_SETTLE.total_seconds())
    for notification in (first, second):
        notification_process(notification=notification)
        notification.refresh_from_db()
        assert notification.status == DeliveryStatus.DONE
    [lead] = intercom_sandbox.contacts(role="lead")
    assert lead["name"] == "Again"
    assert not IdentityLock.objects.exists()


def test_the_identity_lock_refuses_an_unsettled_identity_until_it_settles(db, intercom_sandbox):
    keys = identity_keys("ws", "lead", hull_id="h1", email="A@b.com ")
    assert keys == identity_keys("ws", "lead", hull_id="h1", email="a@b.com")
    from datetime import timedelta

    from sync.intercom.errors import IntercomOutcomeUnknown

    with pytest.raises(IntercomOutcomeUnknown), identity_lock(keys, settle=timedelta(minutes=5)):
        raise IntercomOutcomeUnknown("lost", code="outcome_unknown")
    with pytest.raises(IdentityUnsettled), identity_lock(keys):
        pass
    intercom_sandbox.advance(301)
    with identity_lock(keys):
        assert IdentityLock.objects.count() == 2
    assert not IdentityLock.objects.exists()


@pytest.mark.parametrize("linked", [False, True], ids=["new-lead", "linked-lead-deleted-in-intercom"])
@pytest.mark.django_db(transaction=True)
def test_two_threads_pushing_the_same_new_lead_at_once_make_one_lead(connector, intercom_sandbox, recording_firehose, linked):
    """Both resolve while Intercom's search cannot show the lead: only the lock stops the twin.

    linked: the lead was pushed before and then deleted in Intercom. An update of a linked contact
    runs without the lock; both pushes meet the 404, and the lock around the re-create keeps one.
    """
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("threads need a database they can share: PostgreSQL (DATABASE_URL); in-memory SQLite locks whole tables")
    connector.synchronized_lead_segments = ["leads"]
    connector.synchronized_user_segments = []
    connector.tag_leads = False
    connector.save()
    add_mapping(connector, Entity.LEAD, "name", "name")
    if linked:
        notification_process(notification=store_notification(connector, [lead_message({"id": "h1", "email": "visitor@acme.com", "name": "T"})]))
        [first] = intercom_sandbox.contacts(role="lead")
        intercom_sandbox.client().delete_contact(first["id"])
        assert IdentityLink.objects.filter(entity=Entity.LEAD, intercom_id=first["id"]).exists()
        SyncLog.objects.all().delete()
    barrier = threading.Barrier(2, timeout=10)
    real_resolve = contacts_module.resolve_contact
    errors: list[BaseException] = []

    def slow_resolve(ctx, **kwargs):
        result = real_resolve(ctx, **kwargs)
        try:
            barrier.wait(timeout=2)  # without the lock both threads get here before either creates
        except threading.BrokenBarrierError:
            pass
        return result

    notifications = [
        store_notification(connector, [lead_message({"id": "h1", "email": "visitor@acme.com", "name": f"T{n}"})]) for n in range(2)
    ]

    def run(n: int) -> None:
        try:
            notification_process(notification=notifications[n])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    contacts_module.resolve_contact = slow_resolve
    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        contacts_module.resolve_contact = real_resolve
    assert not errors, errors
    assert len(intercom_sandbox.contacts(role="lead")) == 1
    assert SyncLog.objects.filter(status=SyncLog.Status.SUCCESS).count() == 2
    assert IdentityLink.objects.filter(entity=Entity.LEAD).count() == 1


# --- company custom attributes: typed, and null clears -------------------------------------------


def test_company_custom_attributes_are_sent_typed_and_a_null_clears_the_value(connector, intercom_sandbox, recording_firehose):
    connector.synchronized_account_segments = ["accounts"]
    connector.tag_companies = False
    connector.save()
    for name in ("seats", "paying", "score", "tier"):
        add_mapping(connector, Entity.COMPANY, name, name)
    intercom_sandbox.add_data_attribute("tier", model="company")
    account = {"id": "a1", "external_id": "acme", "seats": 12, "paying": True, "score": 4.5, "tier": "gold"}
    changes = {"account": {"seats": [None, 12]}}
    push_account = lambda acc: notification_process(  # noqa: E731
        notification=store_notification(
            connector, [{"message_id": f"m-{acc['tier']}", "account": acc, "account_segments": [segment("accounts")], "changes": changes}],
            channel="account:update",
        )
    )
    push_account(account)
    [company] = intercom_sandbox.companies()
    assert company["custom_attributes"] == {"seats": 12, "paying": True, "score": 4.5, "tier": "gold"}
    types = {a["name"]: a["data_type"] for a in intercom_sandbox.data_attributes(model="company")}
    assert (types["seats"], types["paying"], types["score"]) == ("integer", "boolean", "float")

    push_account({**account, "tier": None})
    [company] = intercom_sandbox.companies()
    assert company["custom_attributes"]["tier"] is None
    assert not SyncLog.objects.filter(status=SyncLog.Status.ERROR).exists()
