"""Outgoing sync behaviours beyond Hull's scenarios: conflicts, lazy attributes, rate-limit halts and
resumes, duplicates, replays, loop guards, tags, events, concurrency."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from sync.models import DeliveryStatus, Entity, HullNotification, IdentityLink, SyncLog
from sync.outgoing.notifications import notification_process
from tests.fixtures.outgoing.helpers import (  # noqa: F401 - pytest fixture
    account_message,
    add_mapping,
    calls,
    event,
    recording_firehose,
    segment,
    store_notification,
    user_message,
)


@pytest.fixture
def users(connector):
    connector.synchronized_user_segments = ["users"]
    connector.synchronized_account_segments = ["accounts"]
    connector.tag_users = False
    connector.save()
    add_mapping(connector, Entity.USER, "plan", "plan")
    add_mapping(connector, Entity.COMPANY, "plan", "plan")
    return connector


def push(connector, *messages, **kwargs) -> HullNotification:
    notification = store_notification(connector, list(messages), **kwargs)
    notification_process(notification=notification)
    notification.refresh_from_db()
    return notification


def bob(**traits):
    return {"id": "u1", "email": "bob@rei.com", **traits}


# --- conflicts, unknown attributes, stale ids ----------------------------------------------------


def test_a_409_on_create_updates_the_contact_intercom_names(users, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("plan")
    intercom_sandbox.set_search_lag(600)  # just created: not in Intercom's search index yet
    existing = intercom_sandbox.add_contact(role="user", email="bob@rei.com", fresh=True)

    push(users, user_message(bob(traits_plan="pro"), segments=[segment("users")]))

    assert calls(intercom_sandbox) == [("POST", "/contacts/search"), ("POST", "/contacts"), ("PUT", f"/contacts/{existing['id']}")]
    assert intercom_sandbox.responses[1] == 409
    assert len(intercom_sandbox.contacts(role="user")) == 1
    row = SyncLog.objects.get(connector=users)
    assert row.action == "outgoing.user.success" and row.intercom_id == existing["id"]
    assert row.data["conflict_resolved_to"] == existing["id"]
    assert IdentityLink.objects.get(connector=users, entity="user").intercom_id == existing["id"]


def test_an_unknown_custom_attribute_is_created_typed_from_the_value_and_the_push_retried_once(users, intercom_sandbox, recording_firehose):
    add_mapping(users, Entity.USER, "seats", "seats")
    add_mapping(users, Entity.USER, "paid", "paid")
    push(users, user_message(bob(traits_seats=5, traits_paid=True), segments=[segment("users")]))

    created = {c.body["name"]: c.body["data_type"] for c in intercom_sandbox.calls if c.path == "/data_attributes"}
    assert created == {"seats": "integer", "paid": "boolean", "plan": "string"} or created == {"seats": "integer", "paid": "boolean"}
    assert SyncLog.objects.get(connector=users).action == "outgoing.user.success"
    [user] = intercom_sandbox.contacts(role="user")
    assert user["custom_attributes"]["seats"] == 5 and user["custom_attributes"]["paid"] is True


def test_a_stored_id_intercom_no_longer_knows_is_forgotten_and_the_contact_found_again(users, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("plan")
    IdentityLink.objects.create(connector=users, entity="user", hull_id="u1", intercom_id="5f0000000000000000000dead")
    push(users, user_message(bob(traits_plan="pro"), segments=[segment("users")], changes={"user": {"traits_plan": ["free", "pro"]}}))

    made = calls(intercom_sandbox)
    assert made[0] == ("PUT", "/contacts/5f0000000000000000000dead")
    assert made[1:] == [("POST", "/contacts/search"), ("POST", "/contacts")]
    [user] = intercom_sandbox.contacts(role="user")
    assert IdentityLink.objects.get(connector=users, entity="user").intercom_id == user["id"]
    assert SyncLog.objects.get(connector=users).data["resolved_by"] == "link->404->none"


def test_an_intercom_4xx_is_that_users_error_with_intercoms_message_and_the_batch_goes_on(users, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("plan")
    add_mapping(users, Entity.USER, "seats", "seats")
    intercom_sandbox.add_data_attribute("seats", data_type="integer")
    push(
        users,
        user_message(bob(traits_seats="many"), segments=[segment("users")]),
        user_message({"id": "u2", "email": "ann@rei.com", "traits_plan": "pro"}, segments=[segment("users")]),
    )
    rows = {r.hull_id: r for r in SyncLog.objects.filter(connector=users)}
    assert rows["u1"].action == "outgoing.user.error" and rows["u1"].message
    assert rows["u2"].action == "outgoing.user.success"


# --- identical payloads, echoes, steady state ----------------------------------------------------


def test_steady_state_change_of_a_known_user_is_one_put_and_an_echo_is_nothing(users, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("plan")
    push(users, user_message(bob(traits_plan="free"), segments=[segment("users")]))
    [user] = intercom_sandbox.contacts(role="user")
    intercom_sandbox.calls.clear()

    changed = user_message(
        bob(traits_plan="pro", **{"traits_intercom_user/id": user["id"]}),
        segments=[segment("users")],
        changes={"user": {"traits_plan": ["free", "pro"]}},
    )
    push(users, changed)
    assert calls(intercom_sandbox) == [("PUT", f"/contacts/{user['id']}")]

    intercom_sandbox.calls.clear()
    echo = user_message(
        bob(traits_plan="pro", **{"traits_intercom_user/id": user["id"]}),
        segments=[segment("users")],
        changes={"user": {"traits_intercom_user/updated_at": [1, 2], "traits_intercom_user/plan": ["free", "pro"]}},
    )
    push(users, echo)
    assert intercom_sandbox.calls == []
    assert SyncLog.objects.filter(connector=users).first().reason == "own_changes_only"


def test_an_identical_payload_is_not_sent_again(users, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("plan")
    message = dict(user_message(bob(traits_plan="pro"), segments=[segment("users")], changes={"user": {"traits_plan": ["free", "pro"]}}))
    push(users, message)
    intercom_sandbox.calls.clear()
    recording_firehose.records.clear()

    push(users, message)  # Hull re-sent the same user (a new notification)
    assert intercom_sandbox.calls == []
    assert recording_firehose.records == []
    row = SyncLog.objects.filter(connector=users).first()
    assert (row.action, row.reason) == ("outgoing.user.skip", "identical_payload")


def test_an_identical_company_payload_is_not_sent_again(users, intercom_sandbox, recording_firehose):
    users.tag_companies = False
    users.save()
    message = account_message(
        {"id": "a1", "external_id": "acme", "plan": "pro"}, account_segments=[segment("accounts")], changes={"account": {"plan": ["free", "pro"]}}
    )
    push(users, message, channel="account:update")
    assert calls(intercom_sandbox) == [("POST", "/companies")]
    intercom_sandbox.calls.clear()
    push(users, message, channel="account:update")
    assert intercom_sandbox.calls == []
    assert SyncLog.objects.filter(connector=users).first().reason == "identical_payload"


def test_an_account_without_company_id_is_skipped_with_a_reason(users, intercom_sandbox, recording_firehose):
    push(users, account_message({"id": "a1", "domain": "acme.com"}, account_segments=[segment("accounts")]), channel="account:update")
    row = SyncLog.objects.get(connector=users)
    assert (row.action, row.reason) == ("outgoing.account.skip", "missing_identity")
    assert intercom_sandbox.calls == []


# --- duplicates and replays ----------------------------------------------------------------------


def test_duplicate_messages_for_one_user_make_one_contact_and_keep_every_event(users, intercom_sandbox, recording_firehose):
    users.outgoing_events = ["Signed Up", "Paid"]
    users.save()
    intercom_sandbox.add_data_attribute("plan")
    older = user_message(bob(traits_plan="free"), segments=[segment("users")], events=[event("Signed Up", created_at="2020-07-31 10:00:00 UTC")], indexed_at="2020-08-01T10:00:00Z")
    newer = user_message(bob(traits_plan="pro"), segments=[segment("users")], events=[event("Paid", created_at="2020-07-31 11:00:00 UTC")], indexed_at="2020-08-01T11:00:00Z")
    notification = push(users, newer, older)

    creates = [c for c in intercom_sandbox.calls if c.path == "/contacts" and c.method == "POST"]
    assert len(creates) == 1 and creates[0].body["custom_attributes"] == {"plan": "pro"}
    [user] = intercom_sandbox.contacts(role="user")
    assert sorted(e["event_name"] for e in intercom_sandbox.events(user["id"])) == ["Paid", "Signed Up"]
    assert SyncLog.objects.filter(connector=users, entity="user").count() == 1
    assert notification.message_count == 1 and notification.processed_messages == [0]


def test_a_replayed_notification_creates_no_duplicate_contacts_or_events(users, intercom_sandbox, recording_firehose):
    users.outgoing_events = ["all_events"]
    users.save()
    intercom_sandbox.add_data_attribute("plan")
    messages = [
        user_message(bob(traits_plan="pro"), segments=[segment("users")], events=[event("Signed Up")]),
        user_message({"id": "u2", "email": "ann@rei.com", "traits_plan": "pro"}, segments=[segment("users")], events=[event("Signed Up")]),
    ]
    notification = push(users, *messages, notification_id="n-1")
    assert notification.status == DeliveryStatus.DONE
    before = (len(intercom_sandbox.contacts()), len(intercom_sandbox.events()))
    intercom_sandbox.calls.clear()

    notification_process(notification=notification)  # the task ran twice
    assert intercom_sandbox.calls == []

    HullNotification.objects.filter(pk=notification.pk).update(status=DeliveryStatus.PENDING, processed_messages=[])
    notification.refresh_from_db()
    notification_process(notification=notification)  # replayed from the admin: everything again
    assert (len(intercom_sandbox.contacts()), len(intercom_sandbox.events())) == before == (2, 2)
    assert not [c for c in intercom_sandbox.calls if c.path == "/contacts" and c.method == "POST"]


# --- rate limit halts and resumes ----------------------------------------------------------------


def test_a_429_mid_batch_halts_and_the_resume_does_only_the_unfinished_messages(users, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("plan")
    intercom_sandbox.set_rate_limit(3, window_seconds=600)  # reset far beyond the client's patience
    messages = [
        user_message({"id": f"u{i}", "email": f"user{i}@rei.com", "traits_plan": "pro"}, segments=[segment("users")])
        for i in range(3)
    ]
    notification = push(users, *messages)

    assert notification.status == DeliveryStatus.PENDING
    assert "rate limit" in notification.error
    assert notification.processed_messages == [0]
    assert Schedule.objects.filter(name=f"hull-notification-resume:{notification.pk}", func="sync.tasks.process_notification").exists()
    assert SyncLog.objects.filter(connector=users).count() == 1  # the halted messages have no outcome yet
    assert len(intercom_sandbox.contacts()) == 1

    intercom_sandbox.advance(601)
    intercom_sandbox.set_rate_limit(0)
    intercom_sandbox.calls.clear()
    notification_process(notification=notification)
    notification.refresh_from_db()

    assert notification.status == DeliveryStatus.DONE and notification.processed_messages == [0, 1, 2]
    assert sorted(c["email"] for c in intercom_sandbox.contacts()) == ["user0@rei.com", "user1@rei.com", "user2@rei.com"]
    assert all(c.body["query"]["value"][0]["value"] != "user0@rei.com" for c in intercom_sandbox.calls if c.path == "/contacts/search")
    assert sorted(SyncLog.objects.filter(connector=users).values_list("hull_id", flat=True)) == ["u0", "u1", "u2"]


def test_an_invalid_token_holds_the_notification_and_the_connector_until_intercom_is_connected_again(
    users, intercom_sandbox, recording_firehose, django_capture_on_commit_callbacks
):
    from sync.services.status import connector_status
    from sync.work import connector_token_accepted

    good_token = users.intercom_access_token
    users.intercom_access_token = "revoked-token"
    users.save()
    notification = push(users, user_message(bob(traits_plan="pro"), segments=[segment("users")]))
    assert notification.status == DeliveryStatus.PENDING  # held, not failed: nothing is lost
    assert notification.processed_messages == []
    assert not Schedule.objects.filter(name__startswith="hull-notification-resume").exists()  # only a person can fix it
    users.refresh_from_db()
    assert users.is_intercom_token_refused
    status = connector_status(connector=users)
    assert status.status == "error" and any("Connect Intercom again" in m for m in status.messages), status.messages

    users.intercom_access_token = good_token
    users.save()
    with django_capture_on_commit_callbacks(execute=True):
        connector_token_accepted(connector=users)  # what OAuth or a pasted token calls
    notification.refresh_from_db()
    assert notification.status == DeliveryStatus.DONE, notification.error
    assert [c["email"] for c in intercom_sandbox.contacts()] == ["bob@rei.com"]


def test_a_paused_connector_leaves_the_notification_pending(users, intercom_sandbox, recording_firehose):
    users.is_active = False
    users.save()
    notification = push(users, user_message(bob(traits_plan="pro"), segments=[segment("users")]))
    assert notification.status == DeliveryStatus.PENDING and intercom_sandbox.calls == []


# --- tags ----------------------------------------------------------------------------------------


def test_segments_left_are_untagged_and_tags_that_are_not_segment_names_stay(users, intercom_sandbox, recording_firehose):
    users.tag_users = True
    users.save()
    intercom_sandbox.add_data_attribute("plan")
    manual = intercom_sandbox.add_tag("Manual tag")
    trial = intercom_sandbox.add_tag("Trial")
    contact = intercom_sandbox.add_contact(role="user", email="bob@rei.com")
    intercom_sandbox.client().tag_contact(contact["id"], manual["id"])
    intercom_sandbox.client().tag_contact(contact["id"], trial["id"])
    intercom_sandbox.calls.clear()

    message = user_message(
        bob(traits_plan="pro", **{"traits_intercom_user/id": contact["id"], "traits_intercom_user/tags": ["Manual tag", "Trial"]}),
        segments=[segment("users", "Customers")],
        changes={"segments": {"left": [segment("trial", "Trial"), segment("gone", "Never a tag")], "entered": [segment("users", "Customers")]}},
    )
    push(users, message)

    assert intercom_sandbox.contact_tag_names(contact["id"]) == ["Customers", "Manual tag"]
    assert ("DELETE", f"/contacts/{contact['id']}/tags/{trial['id']}") in calls(intercom_sandbox)
    [record] = recording_firehose.of_type("traits")
    assert sorted(record.body["intercom_user/tags"]) == ["Customers", "Manual tag"]
    assert SyncLog.objects.get(connector=users).data["tags"] == {"added": ["Customers"], "removed": ["Trial"], "errors": []}


def test_the_tag_list_is_fetched_once_per_workspace(users, intercom_sandbox, recording_firehose):
    users.tag_users = True
    users.save()
    intercom_sandbox.add_data_attribute("plan")
    messages = [
        user_message({"id": f"u{i}", "email": f"u{i}@rei.com", "traits_plan": "x"}, segments=[segment("users", "Customers")])
        for i in range(3)
    ]
    push(users, *messages)
    assert calls(intercom_sandbox).count(("GET", "/tags")) == 1
    assert calls(intercom_sandbox).count(("POST", "/tags")) == 1


# --- events --------------------------------------------------------------------------------------


def test_event_created_at_falls_back_to_the_hull_event_time_and_metadata_is_trimmed(users, intercom_sandbox, recording_firehose):
    users.outgoing_events = ["Viewed"]
    users.save()
    intercom_sandbox.add_data_attribute("plan")
    properties = {f"p{i}": i for i in range(12)} | {"nested": {"a": 1}}
    push(users, user_message(bob(traits_plan="pro"), segments=[segment("users")], events=[event("Viewed", created_at="2018-03-30 14:38:02 UTC", properties=properties)]))

    [sent] = [c.body for c in intercom_sandbox.calls if c.path == "/events"]
    assert sent["created_at"] == 1522420682
    assert list(sent["metadata"]) == [f"p{i}" for i in range(10)]
    row = SyncLog.objects.get(connector=users, entity="event")
    assert row.action == "outgoing.event.success"
    assert row.data["trimmed_metadata"] == ["p10", "p11", "nested"]
    assert "trimmed" in row.message


def test_events_of_a_user_intercom_refused_are_logged_as_not_sent(users, intercom_sandbox, recording_firehose):
    users.outgoing_events = ["Viewed"]
    users.save()
    first = intercom_sandbox.add_contact(role="user", email="bob@rei.com")
    second = intercom_sandbox.add_contact(role="user", email="bob@rei.com", external_id="other")
    push(users, user_message(bob(), segments=[segment("users")], events=[event("Viewed")]))
    rows = {r.entity: (r.action, r.reason) for r in SyncLog.objects.filter(connector=users)}
    assert rows == {"user": ("outgoing.user.error", "ambiguous_identity"), "event": ("outgoing.event.skip", "contact_not_synced")}
    assert first["id"] != second["id"]


# --- concurrency ---------------------------------------------------------------------------------


def test_messages_run_on_a_bounded_thread_pool_and_a_halt_stops_new_ones(monkeypatch):
    """The pool itself, without the database (in-memory SQLite cannot share tables between threads)."""
    import threading
    import time

    from sync.intercom.errors import IntercomRateLimited
    from sync.outgoing import notifications

    running, peak, seen, lock = [0], [0], [], threading.Lock()

    def fake_run(ctx, message):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append(message)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        if message == 5:
            raise IntercomRateLimited("Exceeded rate limit")

    monkeypatch.setattr(notifications, "_run_guarded", fake_run)
    monkeypatch.setattr(notifications.connection, "close", lambda: None)
    progress = notifications._Progress(None)
    halt = notifications._run_pool(object(), [(i, i) for i in range(40)], progress, workers=3)

    assert isinstance(halt, IntercomRateLimited)
    assert peak[0] <= 3
    assert 5 not in progress.done and progress.done <= set(seen) - {5}
    assert len(seen) < 40  # nothing new was started once Intercom said stop


# --- segment channels ----------------------------------------------------------------------------


def test_segment_channels_refresh_the_known_segments(users, intercom_sandbox, recording_firehose):
    from sync.models import HullSegment

    push(users, [segment("s1", "VIP")][0], channel="users_segment:update")
    push(users, segment("as1", "Big accounts", "accounts_segment"), channel="accounts_segment:update")
    assert set(HullSegment.objects.filter(connector=users).values_list("kind", "hull_id", "name", "deleted")) == {
        ("user", "s1", "VIP", False),
        ("account", "as1", "Big accounts", False),
    }
    notification = push(users, segment("s1", "VIP"), channel="users_segment:delete")
    assert notification.status == DeliveryStatus.DONE
    assert HullSegment.objects.get(connector=users, hull_id="s1").deleted is True
    assert intercom_sandbox.calls == []


def test_user_notifications_remember_the_segment_names_they_carry(users, intercom_sandbox, recording_firehose):
    from sync.models import HullSegment

    push(users, user_message({"id": "u1"}, segments=[segment("other")]), segments=[segment("other", "Other people")])
    assert HullSegment.objects.get(connector=users, hull_id="other").name == "Other people"


# --- the write-back is part of the push ----------------------------------------------------------


def test_a_push_whose_write_back_never_reached_hull_is_not_skipped_as_identical(users, intercom_sandbox, recording_firehose):
    from sync.hull.client import HullApiError

    intercom_sandbox.add_data_attribute("plan")
    message = user_message(bob(traits_plan="pro"), segments=[segment("users")])
    notification = store_notification(users, [message])

    def hull_down() -> None:
        raise HullApiError("firehose unavailable", status=503)

    recording_firehose.flush = hull_down
    notification_process(notification=notification)
    notification.refresh_from_db()
    # Hull's 503 is transient (sync/work.py): the notification waits for its scheduled retry.
    assert notification.status == DeliveryStatus.PENDING and notification.resume_at is not None, notification.error
    assert IdentityLink.objects.get(connector=users, entity="user").last_payload_hash == ""

    del recording_firehose.flush  # Hull is back
    recording_firehose.records.clear()
    notification_process(notification=notification)  # the scheduled retry
    notification.refresh_from_db()
    assert notification.status == DeliveryStatus.DONE
    [record] = recording_firehose.of_type("traits")
    [user] = intercom_sandbox.contacts(role="user")
    assert record.body["intercom_user/id"] == user["id"]
    assert IdentityLink.objects.get(connector=users, entity="user").last_payload_hash != ""
