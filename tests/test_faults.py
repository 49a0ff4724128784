"""Faults against the sandboxes: rate limits for minutes, 5xx bursts, timeouts after the fact, Hull's
firehose down, a worker dying in the middle of a notification, a webhook and a fetch-all.

After recovery the same invariants hold every time (`assert_exactly_once`): every Hull user is one
Intercom contact (none lost, none doubled), every event is in Intercom once, every delivery is
processed or failed with a reason, and the failed ones are replayable.

Time is virtual (the sandboxes' clock and the client's sleep are the same), so "for minutes" costs
nothing. A killed worker is simulated by a BaseException (like SystemExit) raised from inside the
work after N entities: no `except Exception` swallows it, just as nothing catches a SIGKILL; the
task is then simply run again, as django-q2 redelivers an unacknowledged task.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
import requests

from sync import tasks
from sync.models import DeliveryStatus, HullNotification, SyncCursor, SyncLog, WebhookDelivery
from sync.transient import DATABASE_UNAVAILABLE
from webhooks.intercom_auth import intercom_signature

USERS = 6
EVENT = "Signed Up"


class WorkerKilled(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the code under test catches it."""


@pytest.fixture
def world(connector, hull_sandbox, intercom_sandbox):
    """A connector synchronising one segment of USERS Hull users, each with one event."""
    pytest.importorskip("sync.outgoing.notifications")
    segment = hull_sandbox.add_segment("Customers", rule={"attribute": "traits_plan", "equals": "pro"})
    connector.synchronized_user_segments = [segment.hull_id]
    connector.outgoing_events = [EVENT]
    connector.save()
    for n in range(USERS):
        hull_sandbox.add_user(
            {"email": f"user{n}@acme.com", "external_id": f"u-{n}"},
            {"plan": "pro", "first_name": f"User {n}"},
            events=[{"event": EVENT, "event_id": f"evt-{n}", "created_at": "2024-01-01T00:00:00Z"}],
        )
    return hull_sandbox, intercom_sandbox


def notify(hull_sandbox, connector, capture):
    with capture(execute=True):
        result = hull_sandbox.notify_users(connector)
    assert result.undelivered_messages == 0
    return result


def leases_expire() -> None:
    """Time passes beyond the lease (WORK_LEASE_SECONDS): what a dead worker still held is free again."""
    from datetime import timedelta

    from django.utils import timezone

    past = timezone.now() - timedelta(seconds=1)
    for model in (HullNotification, WebhookDelivery):
        model.objects.filter(status=DeliveryStatus.PROCESSING).update(lease_until=past)


def drain_notifications(intercom_sandbox, capture, *, advance: float = 0.0, rounds: int = 40) -> None:
    """What the scheduler does later: run every unfinished notification again, after `advance` seconds."""
    leases_expire()
    for _ in range(rounds):
        open_ids = list(
            HullNotification.objects.exclude(status__in=[DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.FAILED])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not open_ids:
            return
        if advance:
            intercom_sandbox.advance(advance)
        for pk in open_ids:
            with capture(execute=True):
                tasks.process_notification(pk)
    raise AssertionError("notifications never finished: " + repr(list(HullNotification.objects.values("status", "error"))))


def assert_exactly_once(intercom_sandbox, hull_sandbox=None, *, users: int = USERS, events: bool = True) -> None:
    contacts = intercom_sandbox.contacts(role="user") + intercom_sandbox.contacts(role="lead")
    emails = Counter(c["email"] for c in contacts)
    assert sorted(emails) == sorted(f"user{n}@acme.com" for n in range(users)), "a contact was lost or is extra"
    assert all(count == 1 for count in emails.values()), f"duplicate contacts: {emails}"
    if events:
        sent = Counter((e["id"], e["event_name"], e["created_at"]) for e in intercom_sandbox.events())
        assert len(sent) == users, f"events lost: {sent}"
        assert all(count == 1 for count in sent.values()), f"duplicate events: {sent}"
    if hull_sandbox is not None:
        # The write-back: every Hull user knows its Intercom id (else the next update creates a twin).
        by_email = {c["email"]: c["id"] for c in contacts}
        for n in range(users):
            user = hull_sandbox.user(email=f"user{n}@acme.com") or {}
            assert user.get("traits_intercom_user/id") == by_email[f"user{n}@acme.com"], f"user{n}: Intercom id never reached Hull"
    for row in HullNotification.objects.all():
        assert row.status in (DeliveryStatus.DONE, DeliveryStatus.FAILED), (row.status, row.error)
        if row.status == DeliveryStatus.FAILED:
            assert row.error
    for delivery in WebhookDelivery.objects.all():
        assert delivery.status in (DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.UNSUPPORTED, DeliveryStatus.FAILED)
        if delivery.status == DeliveryStatus.FAILED:
            assert delivery.error


def user_success_rows() -> Counter:
    return Counter(
        SyncLog.objects.filter(direction="outgoing", entity__in=["user", "lead"], status=SyncLog.Status.SUCCESS).values_list(
            "email", flat=True
        )
    )


# -- Intercom rate limit ---------------------------------------------------------------------------


def test_a_rate_limit_for_minutes_halts_the_notification_which_completes_later(
    connector, world, django_capture_on_commit_callbacks
):
    from django_q.models import Schedule

    hull_sandbox, intercom_sandbox = world
    # 8 calls per 5-minute window: far longer than the client waits in-line (MAX_RATE_WAIT).
    intercom_sandbox.set_rate_limit(8, window_seconds=300)
    notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    notification = HullNotification.objects.get()
    assert notification.status == DeliveryStatus.PENDING, notification.error  # halted, not failed
    assert 429 in intercom_sandbox.responses or "rate" in notification.error.lower()
    assert Schedule.objects.filter(name=f"hull-notification-resume:{notification.pk}").exists()
    assert SyncLog.objects.filter(status=SyncLog.Status.ERROR).count() == 0  # a halt is not an error

    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks, advance=300)
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert_exactly_once(intercom_sandbox)  # the write-back half: the next test
    # Every user and every event ends in exactly one row, a success: the resumed attempt replaces
    # the halted attempt's rows instead of adding to them.
    rows = Counter(SyncLog.objects.filter(direction="outgoing", entity="user").values_list("email", "status"))
    assert rows == {(f"user{n}@acme.com", SyncLog.Status.SUCCESS): 1 for n in range(USERS)}, rows
    events = Counter(SyncLog.objects.filter(direction="outgoing", entity="event").values_list("data__event_id", "status"))
    assert events == {(f"evt-{n}", SyncLog.Status.SUCCESS): 1 for n in range(USERS)}, events


def test_a_rate_limit_halt_mid_entity_still_writes_the_intercom_id_back(connector, world, django_capture_on_commit_callbacks):
    """Regression: the payload hash was recorded before the write-back was flushed (fixed in c2142f3)."""
    hull_sandbox, intercom_sandbox = world
    intercom_sandbox.set_rate_limit(8, window_seconds=300)
    notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks, advance=300)
    assert_exactly_once(intercom_sandbox, hull_sandbox)


# -- Intercom 5xx bursts and timeouts --------------------------------------------------------------


def test_5xx_bursts_are_retried_and_nothing_is_lost_or_doubled(connector, world, django_capture_on_commit_callbacks):
    hull_sandbox, intercom_sandbox = world
    intercom_sandbox.set_fault_rate(0.35, seed=7)
    notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    assert {500, 503, 504} & set(intercom_sandbox.responses), "the burst did not happen"
    intercom_sandbox.set_fault_rate(0.0)
    # Entities whose retries all failed are errors with Intercom's message: replay them.
    failed = SyncLog.objects.filter(status=SyncLog.Status.ERROR)
    for row in failed:
        assert row.reason and row.message
    if failed.exists():
        from sync.services.replay import hull_notifications_replay

        with django_capture_on_commit_callbacks(execute=True):
            hull_notifications_replay(notifications=HullNotification.objects.all())
    assert_exactly_once(intercom_sandbox, hull_sandbox)


def test_intercom_down_then_back_failed_entities_are_replayable(connector, world, django_capture_on_commit_callbacks):
    hull_sandbox, intercom_sandbox = world
    intercom_sandbox.set_fault_rate(1.0, seed=1)
    notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    assert intercom_sandbox.contacts() == []
    notification = HullNotification.objects.get()
    errors = SyncLog.objects.filter(status=SyncLog.Status.ERROR)
    failed_whole = notification.status == DeliveryStatus.FAILED
    assert failed_whole or errors.count() >= USERS, "every entity ends in an error row with a reason"
    for row in errors:
        assert row.reason and row.message

    intercom_sandbox.set_fault_rate(0.0)
    from sync.services.replay import hull_notifications_replay

    with django_capture_on_commit_callbacks(execute=True):
        hull_notifications_replay(notifications=HullNotification.objects.all())
    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks)
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert_exactly_once(intercom_sandbox, hull_sandbox)


@pytest.mark.parametrize("target", ["user", "lead"])
def test_timeouts_after_intercom_did_the_work_do_not_duplicate(
    connector, world, django_capture_on_commit_callbacks, monkeypatch, target
):
    """The nastiest timeout: Intercom created the contact (or event), but the answer never came back.

    Leads have no unique field, so a blind retry of the create would make a twin: the batch halts
    instead and resumes once Intercom's search (here two minutes behind) shows the new contact.
    """
    from sandbox.intercom import api
    from sync.outgoing.notifications import SEARCH_SETTLE

    hull_sandbox, intercom_sandbox = world
    if target == "lead":
        connector.synchronized_lead_segments, connector.synchronized_user_segments = connector.synchronized_user_segments, []
        connector.save()
    intercom_sandbox.set_search_lag(120)
    real = api.handle_request
    seen: Counter = Counter()

    def answer_lost(method, path, query, headers, body):
        result = real(method, path, query, headers, body)
        key = (method, path.rstrip("/"))
        if method == "POST" and key[1] in ("/contacts", "/events"):
            seen[key] += 1
            if seen[key] % 2 == 1:  # every other create: done, then the connection drops
                raise requests.ReadTimeout("read timed out (sandbox)")
        return result

    monkeypatch.setattr(api, "handle_request", answer_lost)
    notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    if target == "lead":
        assert HullNotification.objects.get().status == DeliveryStatus.PENDING  # halted, not failed
    else:
        # A user's create is sent again: Intercom refuses the second one with a 409 naming the
        # first (external_id/email are unique among users), so no halt is needed.
        assert HullNotification.objects.get().status == DeliveryStatus.DONE
        assert 409 in intercom_sandbox.responses
    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks, advance=SEARCH_SETTLE.total_seconds())
    monkeypatch.setattr(api, "handle_request", real)
    assert seen, "no timeout was injected"
    assert_exactly_once(intercom_sandbox, hull_sandbox if target == "user" else None)
    contacts = {c["email"]: c for c in intercom_sandbox.contacts(role=target)}
    assert len(contacts) == USERS, f"contacts of the wrong role: {sorted(contacts)}"
    if target == "lead":
        for n in range(USERS):
            user = hull_sandbox.user(email=f"user{n}@acme.com") or {}
            assert user.get("traits_intercom_lead/id") == contacts[f"user{n}@acme.com"]["id"], f"user{n}: lead id never reached Hull"
    assert not SyncLog.objects.filter(status=SyncLog.Status.ERROR).exists()


# -- Hull's firehose down ------------------------------------------------------------------------


def test_firehose_down_for_a_while_then_everything_is_written_back(connector, world, django_capture_on_commit_callbacks):
    hull_sandbox, intercom_sandbox = world
    hull_sandbox.set_down(True)
    try:
        try:
            with django_capture_on_commit_callbacks(execute=True):
                hull_sandbox.notify_users(connector)
        except Exception:  # noqa: BLE001 - django-q2 would record the failure and retry the task
            pass
    finally:
        hull_sandbox.set_down(False)
    notification = HullNotification.objects.get()
    assert notification.status in (DeliveryStatus.FAILED, DeliveryStatus.PENDING, DeliveryStatus.DONE)
    if notification.status == DeliveryStatus.FAILED:
        assert notification.error
    # The task is retried (django-q2 redelivery, or an admin replay) once Hull is back.
    from sync.services.replay import hull_notifications_replay

    if notification.status != DeliveryStatus.DONE:
        with django_capture_on_commit_callbacks(execute=True):
            hull_notifications_replay(notifications=[notification])
    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks)
    assert_exactly_once(intercom_sandbox, hull_sandbox)


# -- a worker killed mid-notification --------------------------------------------------------------


@pytest.mark.parametrize("kill_after", [1, 3])
def test_worker_killed_mid_notification_resumes_without_loss_or_duplicates(
    connector, world, django_capture_on_commit_callbacks, monkeypatch, kill_after
):
    """Killed right after Intercom created the Nth contact, before the connector recorded anything."""
    from sync.intercom.client import IntercomClient

    hull_sandbox, intercom_sandbox = world
    real_create = IntercomClient.create_contact
    created = {"n": 0}

    def create_then_die(self, body):
        result = real_create(self, body)
        created["n"] += 1
        if created["n"] == kill_after:
            raise WorkerKilled()
        return result

    monkeypatch.setattr(IntercomClient, "create_contact", create_then_die)
    with pytest.raises(WorkerKilled):
        notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    monkeypatch.setattr(IntercomClient, "create_contact", real_create)
    notification = HullNotification.objects.get()
    assert notification.status == DeliveryStatus.PROCESSING  # what a dead worker leaves behind
    done_before = len(notification.processed_messages)
    assert done_before == kill_after - 1

    # django-q2 redelivers the task (no ack): run it again.
    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks)
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert_exactly_once(intercom_sandbox, hull_sandbox)
    assert all(n == 1 for n in user_success_rows().values()), user_success_rows()


# -- a worker killed mid-webhook ---------------------------------------------------------------------


def _webhook(n: int) -> bytes:
    return json.dumps(
        {
            "type": "notification_event",
            "id": f"notif_fault_{n}",
            "topic": "contact.user.created",
            "app_id": "ws_acme",
            "created_at": 1700000000 + n,
            "delivery_attempts": 1,
            "data": {
                "type": "notification_event_data",
                "item": {"type": "contact", "id": f"66f{n:021d}", "role": "user", "email": f"hook{n}@acme.com", "external_id": f"h-{n}"},
            },
        }
    ).encode()


def test_worker_killed_mid_webhook_batch_then_redelivered(client, connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks, monkeypatch):
    from sync.incoming import handlers

    real_send = handlers.send_user_update
    sent = {"n": 0}

    def send_then_die(batch, update):
        sent["n"] += 1
        if sent["n"] == 3:
            raise WorkerKilled()
        return real_send(batch, update)

    monkeypatch.setattr(handlers, "send_user_update", send_then_die)
    bodies = [_webhook(n) for n in range(5)]
    with pytest.raises(WorkerKilled):
        with django_capture_on_commit_callbacks(execute=True):
            for body in bodies:
                response = client.post(
                    "/intercom/acme/webhooks", data=body, content_type="application/json",
                    HTTP_X_HUB_SIGNATURE=intercom_signature("sandbox-client-secret", body),
                )
                assert response.status_code == 200
    monkeypatch.setattr(handlers, "send_user_update", real_send)
    # Every delivery answered 200 is stored, whatever happened to its processing.
    assert WebhookDelivery.objects.count() == 5
    # Intercom redelivers (same id: a no-op) and django-q2 reruns the unfinished tasks.
    for body in bodies:
        client.post("/intercom/acme/webhooks", data=body, content_type="application/json",
                    HTTP_X_HUB_SIGNATURE=intercom_signature("sandbox-client-secret", body))
    assert WebhookDelivery.objects.count() == 5
    leases_expire()
    for delivery in WebhookDelivery.objects.exclude(status__in=[DeliveryStatus.DONE, DeliveryStatus.IGNORED]):
        with django_capture_on_commit_callbacks(execute=True):
            tasks.process_webhook_delivery(delivery.pk)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DONE}
    emails = Counter(u.get("email") for u in hull_sandbox.users())
    for n in range(5):
        assert emails[f"hook{n}@acme.com"] == 1, emails


def test_webhook_with_hull_down_fails_with_a_reason_and_replays(client, connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks):
    body = _webhook(42)
    hull_sandbox.set_down(True)
    try:
        try:
            with django_capture_on_commit_callbacks(execute=True):
                client.post("/intercom/acme/webhooks", data=body, content_type="application/json",
                            HTTP_X_HUB_SIGNATURE=intercom_signature("sandbox-client-secret", body))
        except Exception:  # noqa: BLE001 - the task raised for django-q2 to retry
            pass
    finally:
        hull_sandbox.set_down(False)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status in (DeliveryStatus.FAILED, DeliveryStatus.PENDING), delivery.status
    assert delivery.error, (delivery.status, delivery.attempts, list(SyncLog.objects.values("status", "reason")))
    from sync.services.replay import webhook_deliveries_replay

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_replay(deliveries=[delivery])
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DONE, delivery.error
    assert hull_sandbox.user(email="hook42@acme.com")


# -- a worker killed mid-fetch-all -------------------------------------------------------------------


def test_worker_killed_mid_fetch_all_resumes_from_the_checkpoint(connector, hull_sandbox, intercom_sandbox, monkeypatch):
    from sync.incoming import fetch

    total = 7
    for n in range(total):
        intercom_sandbox.add_contact(role="user", email=f"fetch{n}@acme.com", external_id=f"f-{n}")
    monkeypatch.setattr(fetch, "CONTACT_PAGE_SIZE", 2)
    real_ingest = fetch._ingest_page
    pages = {"n": 0}

    def ingest_then_die(ctx, cursor, page):
        pages["n"] += 1
        result = real_ingest(ctx, cursor, page)
        if pages["n"] == 2:
            raise WorkerKilled()  # the page is in Hull, the checkpoint is not written
        return result

    monkeypatch.setattr(fetch, "_ingest_page", ingest_then_die)
    cursor = fetch.connector_fetch_all(connector=connector, stream="users", enqueue=False)
    with pytest.raises(WorkerKilled):
        fetch.fetch_run_to_end(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    monkeypatch.setattr(fetch, "_ingest_page", real_ingest)
    # A SIGKILL would not have released the lease: it expires.
    SyncCursor.objects.filter(pk=cursor.pk).update(locked_until=None)
    cursor = fetch.connector_fetch_all(connector=connector, stream="users", enqueue=False)
    assert cursor.status == SyncCursor.Status.RUNNING  # continues, does not restart
    cursor = fetch.fetch_run_to_end(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    assert cursor.status == SyncCursor.Status.DONE
    emails = Counter(u.get("email") for u in hull_sandbox.users())
    for n in range(total):
        assert emails[f"fetch{n}@acme.com"] == 1, emails


# -- the database briefly unavailable ------------------------------------------------------------------


class DatabaseDown:
    """While active, the connector's database fails with OperationalError: every INSERT (writes
    refused, as in a read-only failover), or with `everything=True` every statement (gone). The
    sandboxes' tables stay up: they stand for Hull and Intercom, which are not in our database."""

    def __init__(self, monkeypatch, table: str = "", *, everything: bool = False) -> None:
        from django.db.backends import utils

        self.active = True
        real = utils.CursorWrapper.execute
        down = self

        def execute(self, sql, params=None):
            hit = everything or sql.lstrip().upper().startswith("INSERT")
            if down.active and hit and table in sql and "sandbox_" not in sql:
                from django.db import OperationalError

                raise OperationalError("could not connect to server (simulated)")
            return real(self, sql, params)

        monkeypatch.setattr(utils.CursorWrapper, "execute", execute)


def test_database_down_at_receipt_is_never_acknowledged_then_the_retry_is_stored(connector, intercom_sandbox, hull_sandbox, monkeypatch):
    from django.test import Client

    client = Client(raise_request_exception=False)
    body = _webhook(77)
    signature = intercom_signature("sandbox-client-secret", body)
    notification = json.dumps({
        "notification_id": "db-down-1", "channel": "user:update", "messages": [],
        "configuration": {"id": connector.hull_id, "secret": connector.hull_secret, "organization": "acme.hullapp.io"},
    })
    outage = DatabaseDown(monkeypatch)
    webhook_answer = client.post("/intercom/acme/webhooks", data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE=signature)
    hull_answer = client.post("/hull/acme/smart-notifier", data=notification, content_type="application/json")
    # Persist before you acknowledge: no 2xx for what is not stored, so both senders retry.
    assert webhook_answer.status_code >= 500
    assert hull_answer.status_code >= 500
    assert WebhookDelivery.objects.count() == 0 and HullNotification.objects.count() == 0
    outage.active = False
    assert client.post("/intercom/acme/webhooks", data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE=signature).status_code == 200
    assert client.post("/hull/acme/smart-notifier", data=notification, content_type="application/json").status_code == 200
    assert WebhookDelivery.objects.count() == 1 and HullNotification.objects.count() == 1


@pytest.mark.parametrize("everything", [False, True], ids=["writes-refused", "all-queries-fail"])
def test_database_gone_mid_notification_then_back_every_user_synced_once(
    transactional_db, connector, world, django_capture_on_commit_callbacks, monkeypatch, everything
):
    """The database goes away in the worker after Intercom created the 3rd contact and comes back later."""
    from sync.outgoing import receive as hull_notifications
    from sync.intercom.client import IntercomClient

    hull_sandbox, intercom_sandbox = world
    real_create = IntercomClient.create_contact
    outage: list[DatabaseDown] = []

    lock = threading.Lock()  # on PostgreSQL the messages run on the thread pool

    def create_then_lose_the_database(self, body):
        result = real_create(self, body)
        with lock:
            if not outage and len(intercom_sandbox.contacts()) >= 3:
                outage.append(DatabaseDown(monkeypatch, everything=everything))
        return result

    # Hull's delivery is stored and acknowledged; the worker picks it up (here: called directly).
    monkeypatch.setattr(hull_notifications, "unit_enqueue", lambda unit: None)
    notify(hull_sandbox, connector, django_capture_on_commit_callbacks)
    monkeypatch.setattr(IntercomClient, "create_contact", create_then_lose_the_database)
    try:
        tasks.process_notification(HullNotification.objects.get().pk)
    except DATABASE_UNAVAILABLE:
        pass  # not even the retry could be written down: the task fails and the stale-work sweep re-runs it
    assert outage, "the outage never started"
    outage[0].active = False
    notification = HullNotification.objects.get()
    assert notification.status in (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING), notification.error  # open, not failed
    assert not SyncLog.objects.filter(status=SyncLog.Status.ERROR).exists()  # no user blamed for the outage

    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks)
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert_exactly_once(intercom_sandbox, hull_sandbox)
    rows = Counter(SyncLog.objects.filter(direction="outgoing", entity__in=["user", "lead"]).values_list("email", "status"))
    assert rows == {(f"user{n}@acme.com", SyncLog.Status.SUCCESS): 1 for n in range(USERS)}, rows  # one row per user
    events = Counter(SyncLog.objects.filter(direction="outgoing", entity="event").values_list("data__event_id", flat=True))
    assert events == {f"evt-{n}": 1 for n in range(USERS)}, events


@pytest.mark.parametrize("everything", [False, True], ids=["writes-refused", "all-queries-fail"])
def test_database_gone_mid_webhook_batch_then_back_every_contact_once(
    transactional_db, client, connector, hull_sandbox, intercom_sandbox, monkeypatch, everything
):
    """Five deliveries stored and acknowledged; the database goes away after the 3rd reached Hull."""
    from sync.incoming import handlers, webhooks

    monkeypatch.setattr(webhooks, "unit_enqueue", lambda unit: None)  # the worker: called below
    bodies = [_webhook(n) for n in range(5)]
    for body in bodies:
        response = client.post("/intercom/acme/webhooks", data=body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE=intercom_signature("sandbox-client-secret", body))
        assert response.status_code == 200
    real_send = handlers.send_user_update
    outage: list[DatabaseDown] = []

    def send_then_lose_the_database(batch, update):
        result = real_send(batch, update)
        if len(hull_sandbox.users()) == 3 and not outage:
            outage.append(DatabaseDown(monkeypatch, everything=everything))
        return result

    monkeypatch.setattr(handlers, "send_user_update", send_then_lose_the_database)
    pks = list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))
    for pk in pks:
        try:
            tasks.process_webhook_delivery(pk)
        except DATABASE_UNAVAILABLE:
            pass  # the task fails; django-q2 or the stale-work sweep runs it again
    assert outage, "the outage never started"
    outage[0].active = False
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).exists()  # nobody blamed for the outage

    leases_expire()
    for pk in WebhookDelivery.objects.exclude(status=DeliveryStatus.DONE).values_list("pk", flat=True):
        tasks.process_webhook_delivery(pk)  # the retry (schedule, redelivery or sweep)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DONE}
    emails = Counter(u.get("email") for u in hull_sandbox.users())
    assert emails == {f"hook{n}@acme.com": 1 for n in range(5)}, emails
    rows = Counter(SyncLog.objects.filter(direction="incoming").values_list("email", "status"))
    assert rows == {(f"hook{n}@acme.com", SyncLog.Status.SUCCESS): 1 for n in range(5)}, rows


def test_database_gone_mid_fetch_all_then_back_resumes_and_every_contact_once(
    transactional_db, connector, hull_sandbox, intercom_sandbox, monkeypatch
):
    from sync.incoming import fetch

    total = 7
    for n in range(total):
        intercom_sandbox.add_contact(role="user", email=f"fetch{n}@acme.com", external_id=f"f-{n}")
    monkeypatch.setattr(fetch, "CONTACT_PAGE_SIZE", 2)
    real_ingest = fetch._ingest_page
    outage: list[DatabaseDown] = []

    def ingest_then_lose_the_database(ctx, cursor, page):
        result = real_ingest(ctx, cursor, page)
        if len(hull_sandbox.users()) == 4 and not outage:
            outage.append(DatabaseDown(monkeypatch, everything=True))  # the page is in Hull, its checkpoint is not
        return result

    monkeypatch.setattr(fetch, "_ingest_page", ingest_then_lose_the_database)
    cursor = fetch.connector_fetch_all(connector=connector, stream="users", enqueue=False)
    with pytest.raises(DATABASE_UNAVAILABLE):
        fetch.fetch_run_to_end(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    outage[0].active = False
    SyncCursor.objects.filter(pk=cursor.pk).update(locked_until=None)  # the lease could not be released: it expires
    cursor.refresh_from_db()
    assert cursor.status == SyncCursor.Status.RUNNING  # not failed: it continues from its checkpoint

    cursor = fetch.fetch_run_to_end(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    assert cursor.status == SyncCursor.Status.DONE
    emails = Counter(u.get("email") for u in hull_sandbox.users())
    assert emails == {f"fetch{n}@acme.com": 1 for n in range(total)}, emails


# -- exports (Hull's "send to Intercom" batches) ---------------------------------------------------


def test_a_rate_limited_export_resumes_with_its_unfinished_chunks_only(
    connector, world, django_capture_on_commit_callbacks, monkeypatch
):
    """An export halted by a minutes-long rate limit waits (not failed, not stuck) and its resume
    streams the file again but syncs only the chunks that had not finished."""
    from sync.outgoing import exports

    hull_sandbox, intercom_sandbox = world
    monkeypatch.setattr(exports, "EXPORT_CHUNK_MESSAGES", 2)  # 6 users: 3 chunks
    intercom_sandbox.set_rate_limit(12, window_seconds=300)  # about 3 new users' worth of calls
    with django_capture_on_commit_callbacks(execute=True):
        status, _answer, export_file = hull_sandbox.export(connector)
    assert status == 200
    in_file_order = [json.loads(line)["email"] for line in export_file.content.splitlines()]  # Hull's order: any
    export = HullNotification.objects.get(is_export=True)
    assert export.status == DeliveryStatus.PENDING, export.error  # halted, waiting for the reset
    assert "rate limit" in export.error
    finished = list(export.processed_messages)
    assert finished and len(finished) < 3, finished

    intercom_sandbox.set_rate_limit(0)
    intercom_sandbox.calls.clear()
    drain_notifications(intercom_sandbox, django_capture_on_commit_callbacks, advance=300)  # the resume schedule
    export.refresh_from_db()
    assert export.status == DeliveryStatus.DONE and export.processed_messages == [0, 1, 2]
    assert export.message_count == USERS
    resumed = {json.dumps(c.body) for c in intercom_sandbox.calls if c.body}
    for chunk in finished:  # the finished chunks' users were not looked up or pushed again
        for email in in_file_order[2 * chunk : 2 * chunk + 2]:
            assert not any(email in body for body in resumed), f"{email} synced again"
    assert_exactly_once(intercom_sandbox, hull_sandbox, events=False)
    rows = Counter(SyncLog.objects.filter(direction="outgoing", entity="user").values_list("email", "status"))
    assert rows == {(f"user{n}@acme.com", SyncLog.Status.SUCCESS): 1 for n in range(USERS)}, rows


def test_an_export_left_by_a_killed_worker_is_swept_up_as_an_export(connector, world, django_capture_on_commit_callbacks, monkeypatch):
    """The stale-work sweep (and a replay) enqueue every kind of notification the same way: an
    export must be streamed again, not parsed as a notification and failed as unreadable."""
    from datetime import timedelta

    from django.utils import timezone

    from sync.outgoing import exports
    from sync.services.replay import stale_work_requeue

    hull_sandbox, intercom_sandbox = world
    monkeypatch.setattr(exports, "unit_enqueue", lambda unit: None)  # the worker died before it ran
    assert hull_sandbox.export(connector)[0] == 200
    HullNotification.objects.update(status=DeliveryStatus.PROCESSING, received_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert stale_work_requeue() == (0, 1)
    export = HullNotification.objects.get()
    assert export.status == DeliveryStatus.DONE, export.error
    assert_exactly_once(intercom_sandbox, hull_sandbox, events=False)
