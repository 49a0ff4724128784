"""Fetch-all and incremental fetch: paging, checkpoints, resume, retry from start, halts, leases.

Intercom is the contract-checked sandbox (search lag off: the tests seed, then fetch).
"""

from __future__ import annotations

import ast
import io
import time
from collections import Counter
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from sandbox.intercom.models import Contact
from sync.incoming.fetch import (
    connector_fetch_all,
    connector_schedules_update,
    fetch_cancel,
    fetch_run_to_end,
    fetch_step,
)
from sync.models import IdentityLink, SyncCursor, SyncLog, WorkAttempt
from tests.incoming_support import RecordingFirehose, calls_to, faults, firehose, intercom, nth, seed_company  # noqa: F401

NOW = int(time.time())


def seed_users(sandbox, count: int, *, updated_at: int = NOW - 3600, role: str = "user") -> list[str]:
    """`count` contacts named <role>00000.. (emails), one second apart; returns their Intercom ids."""
    ids = []
    for n in range(count):
        fields = {"external_id": f"ext-{role}{n:05d}"} if role == "user" else {}
        contact = sandbox.add_contact(
            role=role, email=f"{role}{n:05d}@example.com", updated_at=updated_at + n, last_seen_at=updated_at + n - 10, **fields
        )
        ids.append(contact["id"])
    return ids


def sent_ids(firehose: RecordingFirehose, role: str = "user") -> list[str]:
    return [r["traits"][f"intercom_{role}/id"] for r in firehose.of_type("traits")]


def searches(sandbox) -> list[dict]:
    return [c.body for c in calls_to(sandbox, "POST", "/contacts/search")]


def day_start(moment: datetime) -> int:
    """Unix time of the start of `moment`'s UTC day (the sandbox workspace's time zone)."""
    return int(datetime.combine(moment.astimezone(dt_timezone.utc).date(), datetime.min.time(), tzinfo=dt_timezone.utc).timestamp())


def cursor_of(connector, kind: str = "fetch_all", stream: str = "users") -> SyncCursor:
    return SyncCursor.objects.get(connector=connector, kind=kind, stream=stream)


# --- fetch all ----------------------------------------------------------------------------------


def test_fetch_all_pages_through_every_user_once(connector, intercom, firehose, django_capture_on_commit_callbacks):
    seed_users(intercom, 320)
    seed_users(intercom, 5, role="lead")
    with django_capture_on_commit_callbacks(execute=True):
        connector_fetch_all(connector=connector, stream="users")
    cursor = cursor_of(connector)
    assert (cursor.status, cursor.pages, cursor.entities, cursor.total_estimate) == ("done", 3, 320, 320)
    ids = sent_ids(firehose)
    assert len(ids) == len(set(ids)) == 320
    # Pages of the maximum size, role-restricted.
    queries = [body["query"] for body in searches(intercom)]
    assert {"field": "role", "operator": "=", "value": "user"} in queries[0]["value"]
    assert searches(intercom)[0]["pagination"]["per_page"] == 150
    assert SyncLog.objects.filter(action="incoming.user.success", entity="user").count() == 320
    # 100 records per firehose call: 4 calls for 320 contacts (100+50 per page of 150, then 20).
    assert firehose.flushes == 5


def test_fetch_all_crash_in_the_middle_resumes_without_loss_or_duplicates(
    connector, intercom, firehose, django_capture_on_commit_callbacks
):
    seed_users(intercom, 400)
    firehose.fail_flush_numbers = {3}  # page 2's first batch never reaches Hull
    with pytest.raises(ConnectionError), django_capture_on_commit_callbacks(execute=True):
        connector_fetch_all(connector=connector, stream="users")
    cursor = cursor_of(connector)
    assert cursor.status == "running"  # checkpoint kept: page 1 done
    assert cursor.pages == 1 and cursor.page_cursor
    assert "firehose unavailable" in cursor.last_error
    # The worker comes back (django-q2's retry, or the admin's "Fetch all" again): it resumes.
    with django_capture_on_commit_callbacks(execute=True):
        connector_fetch_all(connector=connector, stream="users")
    cursor = cursor_of(connector)
    assert (cursor.status, cursor.entities) == ("done", 400)
    counts = Counter(sent_ids(firehose))
    assert len(counts) == 400 and set(counts.values()) == {1}
    assert SyncLog.objects.filter(action="incoming.user.success").count() == 400


def test_killed_worker_holds_the_lease_until_it_expires_then_the_retry_resumes(connector, intercom, firehose):
    ids = seed_users(intercom, 200)
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False)
    # A worker died mid-page: its lease is still on the cursor.
    SyncCursor.objects.filter(connector=connector).update(locked_until=timezone.now() + timedelta(seconds=100))
    assert fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False).status == "already_running"
    SyncCursor.objects.filter(connector=connector).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert fetch_step(connector=connector, kind="fetch_all:next", stream="users", chain=False).status == "done"
    assert sorted(sent_ids(firehose)) == sorted(ids)


def test_fetch_all_resumed_page_skips_contacts_this_run_already_sent(connector, intercom, firehose):
    seed_users(intercom, 10)
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    fetch_run_to_end(connector=connector, kind="fetch_all", stream="users")
    # The same page delivered again (a redelivered task after the checkpoint was lost).
    SyncCursor.objects.filter(connector=connector).update(status="running", page_cursor="")
    result = fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False)
    assert (result.entities, result.skipped) == (0, 10)
    # A new run re-sends everything: that is what "Fetch all" is for.
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    fetch_run_to_end(connector=connector, kind="fetch_all", stream="users")
    assert len(sent_ids(firehose)) == 20


def test_fetch_all_can_be_cancelled_between_pages(connector, intercom, firehose):
    seed_users(intercom, 400)
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False)
    fetch_cancel(connector=connector, stream="users")
    result = fetch_step(connector=connector, kind="fetch_all:next", stream="users", chain=False)
    assert result.status in ("cancelled", "idle")
    cursor = cursor_of(connector)
    assert cursor.status == "cancelled" and cursor.entities == 150
    assert len(sent_ids(firehose)) == 150


def test_a_second_fetch_while_one_holds_the_lease_is_refused(connector, intercom, firehose):
    seed_users(intercom, 3)
    cursor = connector_fetch_all(connector=connector, stream="users", enqueue=False)
    SyncCursor.objects.filter(pk=cursor.pk).update(locked_until=timezone.now() + timedelta(minutes=1))
    assert fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False).status == "already_running"
    assert firehose.records == []


def test_fetch_all_leads_uses_the_lead_profile(connector, intercom, firehose):
    ids = seed_users(intercom, 3, role="lead")
    connector_fetch_all(connector=connector, stream="leads", enqueue=False)
    fetch_run_to_end(connector=connector, kind="fetch_all", stream="leads")
    claims = [r["claims"] for r in firehose.of_type("traits")]
    assert {"email": "lead00000@example.com", "anonymous_id": f"intercom-lead:lead-{ids[0]}"} in claims
    assert IdentityLink.objects.filter(entity="lead").count() == 3


def test_fetch_all_companies_scrolls_until_an_empty_page(connector, intercom, firehose):
    [member] = seed_users(intercom, 1)
    first = intercom.add_company("co0000", name="Company co0000", website="co0000.example.com", contact_ids=[member])
    for n in range(1, 120):
        intercom.add_company(f"co{n:04d}", contact_ids=[member])
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies")
    assert (cursor.status, cursor.entities) == ("done", 120)
    accounts = firehose.of_type("account_traits")
    assert len({a["claims"]["anonymous_id"] for a in accounts}) == 120
    assert accounts[0]["claims"] == {"external_id": "co0000", "domain": "co0000.example.com", "anonymous_id": f"intercom:{first['id']}"}
    assert [c.path for c in intercom.calls if c.path.startswith("/companies")] == ["/companies/scroll"] * 4
    assert SyncLog.objects.filter(action="incoming.account.success").count() == 120


def test_fetch_all_command_runs_synchronously_with_progress(connector, intercom, firehose):
    seed_users(intercom, 160)
    out = io.StringIO()
    call_command("fetch_all", "--connector", "acme", "--entity", "users", stdout=out)
    text = out.getvalue()
    assert "page 1: 150/160 users sent" in text
    assert "160 sent in 2 pages" in text


# --- incremental --------------------------------------------------------------------------------


def test_first_incremental_run_starts_one_day_back(connector, intercom, firehose):
    intercom.add_contact(email="old@example.com", updated_at=NOW - 3 * 86400)
    recent = intercom.add_contact(email="recent@example.com", updated_at=NOW - 3600)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert sent_ids(firehose) == [recent["id"]]
    query = searches(intercom)[0]["query"]
    since = next(f["value"] for f in query["value"] if f["field"] == "updated_at")
    # One day before this run (not before import), moved to the end of the day before: Intercom
    # compares dates by calendar day (the workspace's, UTC here), so `>` that keeps the whole window.
    window_start = datetime.fromtimestamp(int(time.time()) - 86400, tz=dt_timezone.utc)
    assert abs(since - (day_start(window_start) - 1)) < 120
    assert cursor.status == "done"
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 3600, tz=dt_timezone.utc)


def test_incremental_overlap_costs_pages_not_hull_writes(connector, intercom, firehose):
    """S7-like: the next run searches from one day before the mark; unchanged contacts are skipped."""
    ids = seed_users(intercom, 5)
    fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    mark = cursor_of(connector, "incremental").high_water_mark
    Contact.objects.filter(intercom_id=ids[2]).update(updated_at=NOW - 60)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert sent_ids(firehose)[5:] == [ids[2]]
    query = [b["query"] for b in searches(intercom) if b["query"]["value"][0]["field"] == "updated_at"][-1]
    since = next(f["value"] for f in query["value"] if f["field"] == "updated_at")
    assert since == day_start(mark - timedelta(days=1)) - 1
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 60, tz=dt_timezone.utc)
    assert SyncLog.objects.filter(action="incoming.user.success").count() == 6


def test_the_last_seen_pass_takes_contacts_seen_since_the_mark_but_not_updated(connector, intercom, firehose):
    a = intercom.add_contact(email="a@example.com", updated_at=NOW - 7200)
    fetch_run_to_end(connector=connector, kind="incremental", stream="users")  # mark: NOW - 7200
    seen = intercom.add_contact(email="seen@example.com", updated_at=NOW - 3 * 86400, last_seen_at=NOW - 60)  # only seen
    intercom.add_contact(email="stale@example.com", updated_at=NOW - 3 * 86400, last_seen_at=NOW - 2 * 86400)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert sent_ids(firehose) == [a["id"], seen["id"]]
    fields = [b["query"]["value"][0]["field"] for b in searches(intercom)]
    assert fields == ["updated_at", "last_seen_at", "updated_at", "last_seen_at"]
    assert cursor.status == "done"
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 7200, tz=dt_timezone.utc)


def test_a_failed_incremental_run_is_retried_from_its_start(connector, intercom, faults, firehose):
    ids = seed_users(intercom, 200)
    # Page 2 keeps answering 502, through the client's own retries.
    faults.add(lambda m, p, q, body: p == "/contacts/search" and bool((body.get("pagination") or {}).get("starting_after")), 502)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert cursor.status == "failed" and "502" in cursor.last_error
    faults.clear()
    window = cursor.run_started_from
    assert cursor.high_water_mark is not None  # page 1 reached Hull
    # The next tick (hours later, say) restarts the same window from page 1, never skipping.
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert cursor.status == "done"
    assert cursor_of(connector, "incremental").run_started_from == window
    assert sorted(set(sent_ids(firehose))) == sorted(ids)
    assert len(sent_ids(firehose)) == 200  # page 1 was not re-sent: its contacts were already ingested


def test_rate_limit_halts_and_reschedules_at_the_reset(connector, intercom, faults, firehose):
    from sandbox.intercom import clock

    seed_users(intercom, 3)
    reset_at = int(clock.now()) + 40  # longer than the client waits in-line: a halt
    reset = datetime.fromtimestamp(reset_at, tz=dt_timezone.utc)
    headers = {"X-RateLimit-Limit": "1666", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_at)}
    faults.add(nth(1, path="/contacts/search"), 429, headers=headers)
    result = fetch_step(connector=connector, kind=SyncCursor.Kind.INCREMENTAL, stream=SyncCursor.Stream.USERS)
    assert result.status == "halted"
    cursor = cursor_of(connector, "incremental")
    assert cursor.status == "halted" and cursor.locked_until is None
    halt = SyncLog.objects.get(status="halted")
    assert halt.reason == "rate_limited"
    resume = Schedule.objects.get(func="sync.tasks.fetch_step")
    assert resume.schedule_type == Schedule.ONCE and abs((resume.next_run - reset).total_seconds()) <= 1
    assert ast.literal_eval(resume.args) == (connector.pk, "incremental:next", "users")  # as the scheduler reads it
    [attempt] = WorkAttempt.objects.filter(cursor=cursor)  # the try that met the limit, in the admin's attempts
    assert (attempt.page, attempt.outcome, attempt.resume_at) == (1, WorkAttempt.Outcome.HALTED, resume.next_run)
    # At the reset the continuation picks the same page up (then the last_seen_at pass).
    intercom.advance(41)
    assert fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status == "page"
    assert len(sent_ids(firehose)) == 3
    assert fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status == "done"


def test_a_tick_while_a_run_is_in_flight_does_nothing(connector, intercom, firehose):
    seed_users(intercom, 200)
    fetch_step(connector=connector, kind="incremental", stream="users", chain=False)
    assert fetch_step(connector=connector, kind="incremental", stream="users", chain=False).status == "already_running"
    statuses = [fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status for _ in range(3)]
    assert statuses == ["page", "page", "done"]  # page 2, then the two pages of the last_seen_at pass
    # A stray continuation after the run finished does not start a new run.
    assert fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status == "idle"


def test_incremental_is_off_when_the_stream_is_disabled(connector, intercom, firehose):
    connector.fetch_users = False
    connector.save()
    seed_users(intercom, 2)
    assert fetch_step(connector=connector, kind="incremental", stream="users", chain=False).status == "idle"
    assert firehose.records == []
    assert not WorkAttempt.objects.exists()  # a tick that fetches nothing leaves no attempt row


def test_incremental_companies_keep_only_recent_updates(connector, intercom, firehose):
    connector.fetch_companies = True
    connector.save()
    [member] = seed_users(intercom, 1)
    fresh = seed_company(intercom, "fresh", members=[member], updated_at=NOW - 600)
    seed_company(intercom, "stale", members=[member], updated_at=NOW - 5 * 86400)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="companies")
    assert [a["claims"]["anonymous_id"] for a in firehose.of_type("account_traits")] == [f"intercom:{fresh['id']}"]
    assert cursor.status == "done"


# --- schedules ----------------------------------------------------------------------------------


def test_schedules_follow_the_connector_settings(connector):
    names = connector_schedules_update(connector=connector)
    assert names == [f"intercom-fetch:{connector.pk}:users", f"intercom-fetch:{connector.pk}:leads"]
    users = Schedule.objects.get(name=names[0])
    assert (users.func, users.schedule_type, users.minutes) == ("sync.tasks.fetch_step", Schedule.MINUTES, 5)
    assert ast.literal_eval(users.kwargs) == {"connector_id": connector.pk, "kind": "incremental", "stream": "users"}
    connector.fetch_users_interval = 15
    connector.fetch_leads = False
    connector.fetch_companies = True
    connector.save()
    connector_schedules_update(connector=connector)
    assert Schedule.objects.get(name=names[0]).minutes == 15
    assert not Schedule.objects.filter(name=names[1]).exists()
    assert Schedule.objects.filter(name=f"intercom-fetch:{connector.pk}:companies", minutes=30).exists()
    connector.is_active = False
    connector.save()
    assert connector_schedules_update(connector=connector) == []
    assert not Schedule.objects.filter(name__startswith="intercom-fetch:").exists()


def test_setup_schedules_command_is_idempotent(connector):
    call_command("setup_schedules", stdout=io.StringIO())
    call_command("setup_schedules", stdout=io.StringIO())
    assert Schedule.objects.filter(name__startswith=f"intercom-fetch:{connector.pk}:").count() == 2


def test_a_due_schedule_runs_the_incremental_fetch_through_the_django_q2_scheduler(
    connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks
):
    """What the qcluster does every 30 s: pick the due schedules and run their tasks."""
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    intercom_sandbox.add_contact(role="user", email="scheduled@acme.com", external_id="s-1")
    connector_schedules_update(connector=connector)
    Schedule.objects.filter(name__startswith="intercom-fetch:").update(next_run=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):  # each page enqueues the next on commit
        scheduler(broker=get_broker())  # sync mode in tests: the tasks run here
    cursor = SyncCursor.objects.get(connector=connector, kind=SyncCursor.Kind.INCREMENTAL, stream="users")
    assert cursor.status == SyncCursor.Status.DONE, cursor.last_error
    assert hull_sandbox.user(email="scheduled@acme.com")


def test_a_25_hour_day_in_the_workspace_time_zone_misses_nothing(connector, intercom, firehose):
    """Paris, 25 October 2026: summer time ends, the day lasts 25 hours. One day before a mark
    late that evening is still the same local day, and Intercom's day-granular `updated_at >`
    skipped the rest of it. The window now ends before that day, in the zone `/me` gives."""
    from django.core.cache import cache

    from sandbox.intercom.models import Workspace

    Workspace.objects.filter(pk=intercom.workspace.pk).update(timezone="Europe/Paris")
    cache.delete(f"intercom-workspace-tz:{connector.pk}")
    paris = ZoneInfo("Europe/Paris")
    mark = datetime(2026, 10, 25, 23, 30, tzinfo=paris)  # 22:30 UTC
    later = intercom.add_contact(email="later@example.com", updated_at=int(datetime(2026, 10, 25, 23, 45, tzinfo=paris).timestamp()))
    SyncCursor.objects.create(connector=connector, kind="incremental", stream="users", status="done", high_water_mark=mark)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert cursor.status == "done"
    assert sent_ids(firehose) == [later["id"]]
    since = next(f["value"] for f in searches(intercom)[0]["query"]["value"] if f["field"] == "updated_at")
    assert since == int(datetime(2026, 10, 25, tzinfo=paris).timestamp()) - 1  # the end of 24 October, Paris time
    assert ("GET", "/me") in [(c.method, c.path) for c in intercom.calls]


def test_a_token_refused_while_reading_the_workspace_time_zone_halts_the_step(connector, intercom, faults, firehose):
    """`/me` answers 401: the step halts with the token refused (not "time zone unknown", then the search's 401)."""
    from django.core.cache import cache

    seed_users(intercom, 2)
    cache.delete(f"intercom-workspace-tz:{connector.pk}")
    faults.add(lambda method, path, query, body: path == "/me", 401)
    assert fetch_step(connector=connector, kind="incremental", stream="users", chain=False).status == "halted"
    assert not calls_to(intercom, "POST", "/contacts/search") and firehose.records == []
    connector.refresh_from_db()
    assert connector.is_intercom_token_refused
    [attempt] = WorkAttempt.objects.filter(cursor=cursor_of(connector, "incremental"))
    assert attempt.outcome == WorkAttempt.Outcome.HELD
