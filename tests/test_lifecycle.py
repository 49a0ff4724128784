"""The lifecycle of every unit of work (sync/work.py, docs/lifecycle.md), end to end through the endpoints.

Hull notifications and exports reach `/hull/acme/...`, Intercom webhooks `/intercom/acme/webhooks`;
the work runs against the sandboxes. Each test reproduces a failure the older code had: a revoked
token handled three ways, a poisoned export left `processing` for ever, one malformed message
failing a whole notification, and an unpaused connector leaving its stored work for the sweep.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.urls import reverse

from sync.models import DeliveryStatus, HullNotification, SyncLog, WebhookDelivery, WorkAttempt
from tests.admin_helpers import form_data
from tests.incoming_support import faults, intercom  # noqa: F401 - fixtures
from tests.payloads import intercom_user_created
from webhooks.intercom_auth import intercom_signature

EVENT = "Signed Up"


@pytest.fixture
def world(connector, hull_sandbox, intercom_sandbox):
    """A connector synchronising one segment of three Hull users."""
    segment = hull_sandbox.add_segment("Customers", rule={"attribute": "traits_plan", "equals": "pro"})
    connector.synchronized_user_segments = [segment.hull_id]
    connector.save()
    for n in range(3):
        hull_sandbox.add_user({"email": f"user{n}@acme.com", "external_id": f"u-{n}"}, {"plan": "pro"})
    return hull_sandbox, intercom_sandbox


def webhook(client, n: int):
    body = intercom_user_created(notification_id=f"notif_life_{n}", app_id="ws_acme", contact_id=f"66f{n:021d}",
                                 email=f"hook{n}@acme.com", external_id=f"hook-{n}", created_at=1700000000 + n)
    response = client.post(
        "/intercom/acme/webhooks", data=body, content_type="application/json",
        HTTP_X_HUB_SIGNATURE=intercom_signature("sandbox-client-secret", body),
    )
    assert response.status_code == 200


def intercom_emails(intercom_sandbox) -> list[str]:
    return sorted(c["email"] for c in intercom_sandbox.contacts())


def revoke_token(connector) -> str:
    """The app was uninstalled in Intercom: the token the connector holds is refused (401). Returns the good one."""
    token = connector.intercom_access_token
    connector.intercom_access_token = "token-of-the-uninstalled-app"
    connector.save()
    return token


# --- a revoked token -------------------------------------------------------------------------------


def test_a_revoked_token_holds_all_work_says_connect_again_and_reconnecting_resumes_it(
    client, connector, world, django_capture_on_commit_callbacks
):
    from settings_ui.oauth import intercom_connection_store
    from sync.services.hull_status import hull_status
    from sync.incoming.fetch import connector_fetch_all

    hull_sandbox, intercom_sandbox = world
    token = revoke_token(connector)

    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    notification = HullNotification.objects.get()
    assert notification.status == DeliveryStatus.PENDING, notification.error  # held: old code failed it
    connector.refresh_from_db()
    assert connector.is_intercom_token_refused

    # Everything else of the connector waits at once, without calling Intercom for nothing.
    calls_before = len(intercom_sandbox.calls)
    with django_capture_on_commit_callbacks(execute=True):
        webhook(client, 1)
        connector_fetch_all(connector=connector, stream="users")
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    assert len(intercom_sandbox.calls) == calls_before
    assert [a.outcome for a in WorkAttempt.objects.filter(notification=notification)] == [WorkAttempt.Outcome.HELD]

    # Hull's status and the dashboard say what to do, in words.
    status = hull_status(connector=connector)
    assert status.status == "error"
    assert any("Connect Intercom again" in message for message in status.messages), status.messages
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    page = client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk]))
    assert "Connect Intercom again" in page.content.decode()

    # Reconnecting (the OAuth callback stores the new token) resumes what was held, at once.
    with django_capture_on_commit_callbacks(execute=True):
        intercom_connection_store(connector=connector, access_token=token, workspace_id="ws_acme", workspace_name="Acme")
    connector.refresh_from_db()
    assert not connector.is_intercom_token_refused
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DONE
    assert intercom_emails(intercom_sandbox) == ["user0@acme.com", "user1@acme.com", "user2@acme.com"]
    assert "Connect Intercom again" not in " ".join(hull_status(connector=connector).messages)


# --- a poisoned export -----------------------------------------------------------------------------


def test_an_export_whose_download_breaks_unexpectedly_ends_failed_and_does_not_hold_back_hull(
    connector, world, monkeypatch, django_capture_on_commit_callbacks
):
    from sync.outgoing import exports, flow_control

    hull_sandbox, _ = world

    def broken_stream(url, **limits):
        yield json.dumps({"id": "u1", "email": "user0@acme.com"})
        raise RuntimeError("decoder state corrupted")  # not a HullApiError: nobody expected it

    monkeypatch.setattr(exports, "stream_export_lines", broken_stream)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            hull_sandbox.export(connector)
    except RuntimeError:
        pass  # the old code let it out of the task and left the export `processing`
    export = HullNotification.objects.get(is_export=True)
    assert export.status == DeliveryStatus.FAILED, export.status
    assert "decoder state corrupted" in export.error
    assert [a.outcome for a in WorkAttempt.objects.filter(notification=export)] == [WorkAttempt.Outcome.FAILED]

    # A failed export is not queue depth: Hull is not asked to retry because of it.
    monkeypatch.setattr(flow_control, "MAX_PENDING_NOTIFICATIONS", 0)
    assert flow_control.flow_control_for(connector)["type"] == "next"


# --- one malformed message ---------------------------------------------------------------------------


def test_one_malformed_message_gets_its_own_error_row_and_the_others_sync_replay_included(
    connector, world, django_capture_on_commit_callbacks
):
    from sandbox.hull.models import SandboxUser
    from sandbox.hull.notifier import deliver, user_message
    from sync.services.replay import hull_notifications_replay

    hull_sandbox, intercom_sandbox = world
    users = list(SandboxUser.objects.order_by("pk"))
    messages = [user_message(users[0]), {"message_id": "broken", "user": None, "segments": []}, user_message(users[1])]
    with django_capture_on_commit_callbacks(execute=True):
        deliver(connector, "user:update", messages, sleep=lambda seconds: None)
    notification = HullNotification.objects.get()
    assert notification.status == DeliveryStatus.DONE, notification.error  # old code: failed, no rows at all
    assert intercom_emails(intercom_sandbox) == ["user0@acme.com", "user1@acme.com"]
    [bad] = SyncLog.objects.filter(status=SyncLog.Status.ERROR)
    assert bad.reason == SyncLog.Reason.MALFORMED_MESSAGE and "user" in bad.message and bad.notification_id == notification.pk

    with django_capture_on_commit_callbacks(execute=True):
        hull_notifications_replay(notifications=[notification])
    notification.refresh_from_db()
    assert notification.status == DeliveryStatus.DONE
    # One row per entity still (the replay replaced its own), and the attempts keep the history.
    rows = Counter((r.hull_id, r.data.get("message_index")) for r in SyncLog.objects.filter(notification=notification, entity="user"))
    assert sorted(rows.values()) == [1, 1, 1], rows
    assert [a.number for a in WorkAttempt.objects.filter(notification=notification).order_by("started_at", "id")] == [1, 2]


# --- unpausing ---------------------------------------------------------------------------------------


def test_unpausing_a_connector_runs_what_arrived_meanwhile_at_once(
    client, staff_client, connector, world, django_capture_on_commit_callbacks
):
    hull_sandbox, intercom_sandbox = world
    connector.is_active = False
    connector.save()
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
        webhook(client, 2)
    assert HullNotification.objects.get().status == DeliveryStatus.PENDING
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    assert intercom_emails(intercom_sandbox) == []

    data = form_data(staff_client, connector)
    data["is_active"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    # Not minutes later by the sweep: at once.
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DONE
    assert intercom_emails(intercom_sandbox) == ["user0@acme.com", "user1@acme.com", "user2@acme.com"]


def test_a_fetch_meeting_a_revoked_token_marks_the_connector_and_waits_for_a_new_one(
    connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    from sync.incoming.fetch import connector_fetch_all, fetch_step
    from sync.models import SyncCursor
    from sync.work import connector_token_accepted

    intercom_sandbox.add_contact(role="user", email="ann@acme.com", external_id="ann")
    token = revoke_token(connector)
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    result = fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False)  # old code: raised
    assert result.status == "halted"
    cursor = SyncCursor.objects.get(connector=connector, kind="fetch_all", stream="users")
    assert cursor.status == SyncCursor.Status.HALTED and "Connect Intercom again" in cursor.last_error
    connector.refresh_from_db()
    assert connector.is_intercom_token_refused

    connector.intercom_access_token = token
    connector.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert connector_token_accepted(connector=connector) == 1  # the fetch-all continues
    cursor.refresh_from_db()
    assert cursor.status == SyncCursor.Status.DONE and cursor.entities == 1
    tries = WorkAttempt.objects.filter(cursor=cursor).order_by("started_at", "id")
    assert [(a.page, a.number, a.outcome) for a in tries] == [(1, 1, WorkAttempt.Outcome.HELD), (1, 2, WorkAttempt.Outcome.DONE)]
    assert "Connect Intercom again" in tries[0].error and tries[0].resume_at is None


def test_pasting_a_new_token_in_the_admin_resumes_the_held_work(
    staff_client, connector, world, django_capture_on_commit_callbacks
):
    hull_sandbox, intercom_sandbox = world
    token = revoke_token(connector)
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    connector.refresh_from_db()
    assert connector.is_intercom_token_refused and HullNotification.objects.get().status == DeliveryStatus.PENDING

    data = form_data(staff_client, connector)
    data["intercom_access_token"] = token
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    connector.refresh_from_db()
    assert not connector.is_intercom_token_refused
    assert HullNotification.objects.get().status == DeliveryStatus.DONE
    assert intercom_emails(intercom_sandbox) == ["user0@acme.com", "user1@acme.com", "user2@acme.com"]


def test_the_attempts_of_a_notification_are_listed_on_its_admin_page(staff_client, connector, world, django_capture_on_commit_callbacks):
    from sync.services.replay import hull_notifications_replay

    hull_sandbox, _ = world
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    notification = HullNotification.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        hull_notifications_replay(notifications=[notification])
    page = staff_client.get(reverse("admin:sync_hullnotification_change", args=[notification.pk])).content.decode()
    import re

    outcomes = re.findall(r'<td class="field-outcome">\s*(?:<p>)?([^<]+)', page)
    assert [o.strip() for o in outcomes] == ["Done", "Done"], outcomes
    listing = staff_client.get(reverse("admin:sync_workattempt_changelist")).content.decode()
    assert listing.count(str(notification)) >= 2


# --- fetch steps have attempt rows too -----------------------------------------------------------------


def test_a_fetch_step_that_fails_transiently_then_succeeds_shows_both_attempts_on_its_admin_page(
    staff_client, connector, hull_sandbox, intercom, faults, django_capture_on_commit_callbacks
):
    """Through the worker's own path: the step is a django-q2 task enqueued on commit (sync mode runs
    it here), its failure schedules the resume, and django-q2's scheduler runs that resume."""
    import re
    from datetime import timedelta

    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from sync.incoming.fetch import connector_fetch_all
    from sync.models import SyncCursor

    intercom.add_contact(role="user", email="ann@acme.com", external_id="ann")
    broken = {"search": True}  # Intercom answers 502 to the search, through the client's own retries
    faults.add(lambda method, path, query, body: broken["search"] and path == "/contacts/search", 502)
    with django_capture_on_commit_callbacks(execute=True):
        connector_fetch_all(connector=connector, stream="users")
    cursor = SyncCursor.objects.get(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    assert cursor.status == SyncCursor.Status.RUNNING and cursor.pages == 0, cursor.last_error
    [resume] = Schedule.objects.filter(name__startswith=f"intercom-fetch-resume:{cursor.pk}:")

    broken["search"] = False  # Intercom is back by the time the resume is due
    Schedule.objects.filter(pk=resume.pk).update(next_run=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        scheduler(broker=get_broker())
    cursor.refresh_from_db()
    assert (cursor.status, cursor.entities) == (SyncCursor.Status.DONE, 1), cursor.last_error

    first, second = WorkAttempt.objects.filter(cursor=cursor).order_by("started_at", "id")
    assert (first.page, first.number, first.outcome) == (1, 1, WorkAttempt.Outcome.RETRY)
    assert "IntercomServerError" in first.error and first.resume_at is not None and first.finished_at is not None
    assert (second.page, second.number, second.outcome, second.error) == (1, 2, WorkAttempt.Outcome.DONE, "")

    page = staff_client.get(reverse("admin:sync_synccursor_change", args=[cursor.pk])).content.decode()
    outcomes = [o.strip() for o in re.findall(r'<td class="field-outcome">\s*(?:<p>)?([^<]+)', page)]
    assert outcomes == ["Done", "Transient failure (retried)"], outcomes  # newest first
    assert "IntercomServerError" in page and "all 2 attempts" in page
    listing = staff_client.get(reverse("admin:sync_workattempt_changelist"), {"cursor__id__exact": cursor.pk})
    assert listing.status_code == 200 and listing.content.decode().count(str(cursor)) >= 2


def test_a_cursor_page_shows_its_latest_attempts_and_a_step_prunes_the_ones_past_retention(
    staff_client, connector, hull_sandbox, intercom
):
    from datetime import timedelta

    from django.utils import timezone

    from settings_ui.logs import CURSOR_ATTEMPTS_SHOWN
    from sync.incoming.fetch import connector_fetch_all, fetch_step

    intercom.add_contact(role="user", email="ann@acme.com", external_id="ann")
    cursor = connector_fetch_all(connector=connector, stream="users", enqueue=False)
    old = timezone.now() - WorkAttempt.RETENTION_PERIOD - timedelta(days=1)
    for n in range(CURSOR_ATTEMPTS_SHOWN + 5):
        row = WorkAttempt.objects.create(connector=connector, cursor=cursor, page=1, number=n + 1, outcome=WorkAttempt.Outcome.RETRY)
        WorkAttempt.objects.filter(pk=row.pk).update(started_at=old + timedelta(minutes=n))
    page = staff_client.get(reverse("admin:sync_synccursor_change", args=[cursor.pk])).content.decode()
    assert page.count('<td class="field-outcome">') == CURSOR_ATTEMPTS_SHOWN
    assert f"all {CURSOR_ATTEMPTS_SHOWN + 5} attempts" in page

    assert fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False).status == "done"
    [(number, outcome)] = WorkAttempt.objects.filter(cursor=cursor).values_list("number", "outcome")
    assert (number, outcome) == (1, WorkAttempt.Outcome.DONE)  # the old rows were past retention, and of a past run
