"""Fetch-all and incremental fetch: paging, checkpoints, resume, retry from start, halts, leases."""

from __future__ import annotations

import ast
import io
import time
from collections import Counter
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from sync.incoming.fetch import (
    connector_fetch_all,
    connector_schedules_update,
    fetch_cancel,
    fetch_run_to_end,
    fetch_step,
)
from sync.intercom.errors import IntercomRateLimited, IntercomServerError
from sync.models import IdentityLink, SyncCursor, SyncLog
from tests.test_incoming_fakes import FakeIntercom, RecordingFirehose, fake_intercom, firehose  # noqa: F401

NOW = int(time.time())


def seed_users(fake: FakeIntercom, count: int, *, updated_at: int = NOW - 3600, role: str = "user") -> None:
    for n in range(count):
        fake.add_contact(f"{role}{n:05d}", role=role, updated_at=updated_at + n)


def sent_ids(firehose: RecordingFirehose, role: str = "user") -> list[str]:
    return [r["traits"][f"intercom_{role}/id"] for r in firehose.of_type("traits")]


def cursor_of(connector, kind: str = "fetch_all", stream: str = "users") -> SyncCursor:
    return SyncCursor.objects.get(connector=connector, kind=kind, stream=stream)


# --- fetch all ----------------------------------------------------------------------------------


def test_fetch_all_pages_through_every_user_once(connector, fake_intercom, firehose, django_capture_on_commit_callbacks):
    seed_users(fake_intercom, 320)
    seed_users(fake_intercom, 5, role="lead")
    with django_capture_on_commit_callbacks(execute=True):
        connector_fetch_all(connector=connector, stream="users")
    cursor = cursor_of(connector)
    assert (cursor.status, cursor.pages, cursor.entities, cursor.total_estimate) == ("done", 3, 320, 320)
    ids = sent_ids(firehose)
    assert len(ids) == len(set(ids)) == 320
    # Pages of the maximum size, role-restricted.
    queries = [q for name, q in fake_intercom.calls if name == "search_contacts_page"]
    assert {"field": "role", "operator": "=", "value": "user"} in queries[0]["value"]
    assert SyncLog.objects.filter(action="incoming.user.success", entity="user").count() == 320
    # 100 records per firehose call: 4 calls for 320 contacts (100+50 per page of 150, then 20).
    assert firehose.flushes == 5


def test_fetch_all_crash_in_the_middle_resumes_without_loss_or_duplicates(
    connector, fake_intercom, firehose, django_capture_on_commit_callbacks
):
    seed_users(fake_intercom, 400)
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


def test_killed_worker_holds_the_lease_until_it_expires_then_the_retry_resumes(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 200)
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False)
    # A worker died mid-page: its lease is still on the cursor.
    SyncCursor.objects.filter(connector=connector).update(locked_until=timezone.now() + timedelta(seconds=100))
    assert fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False).status == "already_running"
    SyncCursor.objects.filter(connector=connector).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert fetch_step(connector=connector, kind="fetch_all:next", stream="users", chain=False).status == "done"
    assert sorted(sent_ids(firehose)) == sorted(fake_intercom.contacts)


def test_fetch_all_resumed_page_skips_contacts_this_run_already_sent(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 10)
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


def test_fetch_all_can_be_cancelled_between_pages(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 400)
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False)
    fetch_cancel(connector=connector, stream="users")
    result = fetch_step(connector=connector, kind="fetch_all:next", stream="users", chain=False)
    assert result.status in ("cancelled", "idle")
    cursor = cursor_of(connector)
    assert cursor.status == "cancelled" and cursor.entities == 150
    assert len(sent_ids(firehose)) == 150


def test_a_second_fetch_while_one_holds_the_lease_is_refused(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 3)
    cursor = connector_fetch_all(connector=connector, stream="users", enqueue=False)
    SyncCursor.objects.filter(pk=cursor.pk).update(locked_until=timezone.now() + timedelta(minutes=1))
    assert fetch_step(connector=connector, kind="fetch_all", stream="users", chain=False).status == "already_running"
    assert firehose.records == []


def test_fetch_all_leads_uses_the_lead_profile(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 3, role="lead")
    connector_fetch_all(connector=connector, stream="leads", enqueue=False)
    fetch_run_to_end(connector=connector, kind="fetch_all", stream="leads")
    claims = [r["claims"] for r in firehose.of_type("traits")]
    assert claims[0] == {"email": "lead00000@example.com", "anonymous_id": "intercom-lead:lead-lead00000"}
    assert IdentityLink.objects.filter(entity="lead").count() == 3


def test_fetch_all_companies_scrolls_until_an_empty_page(connector, fake_intercom, firehose):
    for n in range(120):
        fake_intercom.add_company(f"co{n:04d}")
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies")
    assert (cursor.status, cursor.entities) == ("done", 120)
    accounts = firehose.of_type("account_traits")
    assert len({a["claims"]["anonymous_id"] for a in accounts}) == 120
    assert accounts[0]["claims"] == {"external_id": "cid-co0000", "domain": "co0000.example.com", "anonymous_id": "intercom:co0000"}
    assert SyncLog.objects.filter(action="incoming.account.success").count() == 120


def test_fetch_all_command_runs_synchronously_with_progress(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 160)
    out = io.StringIO()
    call_command("fetch_all", "--connector", "acme", "--entity", "users", stdout=out)
    text = out.getvalue()
    assert "page 1: 150/160 users sent" in text
    assert "160 sent in 2 pages" in text


# --- incremental --------------------------------------------------------------------------------


def test_first_incremental_run_starts_one_day_back(connector, fake_intercom, firehose):
    fake_intercom.add_contact("old", updated_at=NOW - 3 * 86400)
    fake_intercom.add_contact("recent", updated_at=NOW - 3600)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert sent_ids(firehose) == ["recent"]
    query = [q for name, q in fake_intercom.calls if name == "search_contacts_page"][0]
    since = next(f["value"] for f in query["value"] if f["field"] == "updated_at")
    assert abs(since - (int(time.time()) - 86400)) < 120  # one day before this run, not before import
    assert cursor.status == "done"
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 3600, tz=dt_timezone.utc)


def test_incremental_overlap_costs_pages_not_hull_writes(connector, fake_intercom, firehose):
    """S7-like: the next run searches from one day before the mark; unchanged contacts are skipped."""
    seed_users(fake_intercom, 5)
    fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    mark = cursor_of(connector, "incremental").high_water_mark
    fake_intercom.contacts["user00002"]["updated_at"] = NOW - 60
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert sent_ids(firehose)[5:] == ["user00002"]
    query = [q for name, q in fake_intercom.calls if name == "search_contacts_page" and q["value"][0]["field"] == "updated_at"][-1]
    since = next(f["value"] for f in query["value"] if f["field"] == "updated_at")
    assert since == int((mark - timedelta(days=1)).timestamp())
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 60, tz=dt_timezone.utc)
    assert SyncLog.objects.filter(action="incoming.user.success").count() == 6


def test_the_last_seen_pass_takes_contacts_seen_since_the_mark_but_not_updated(connector, fake_intercom, firehose):
    fake_intercom.add_contact("a", updated_at=NOW - 7200)
    fetch_run_to_end(connector=connector, kind="incremental", stream="users")  # mark: NOW - 7200
    fake_intercom.add_contact("seen", updated_at=NOW - 3 * 86400, last_seen_at=NOW - 60)  # only seen
    fake_intercom.add_contact("stale", updated_at=NOW - 3 * 86400, last_seen_at=NOW - 2 * 86400)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert sent_ids(firehose) == ["a", "seen"]
    fields = [q["value"][0]["field"] for name, q in fake_intercom.calls if name == "search_contacts_page"]
    assert fields == ["updated_at", "last_seen_at", "updated_at", "last_seen_at"]
    assert cursor.status == "done"
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 7200, tz=dt_timezone.utc)


def test_a_failed_incremental_run_is_retried_from_its_start(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 200)
    fake_intercom.fail["search_contacts_page"] = lambda n: IntercomServerError("502", status=502) if n == 2 else None
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert cursor.status == "failed" and "502" in cursor.last_error
    window = cursor.run_started_from
    assert cursor.high_water_mark is not None  # page 1 reached Hull
    # The next tick (hours later, say) restarts the same window from page 1, never skipping.
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")
    assert cursor.status == "done"
    assert cursor_of(connector, "incremental").run_started_from == window
    assert sorted(set(sent_ids(firehose))) == sorted(fake_intercom.contacts)
    assert len(sent_ids(firehose)) == 200  # page 1 was not re-sent: its contacts were already ingested


def test_rate_limit_halts_and_reschedules_at_the_reset(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 3)
    reset = timezone.now() + timedelta(seconds=40)
    fake_intercom.fail["search_contacts_page"] = lambda n: IntercomRateLimited("429", reset_at=reset) if n == 1 else None
    result = fetch_step(connector=connector, kind=SyncCursor.Kind.INCREMENTAL, stream=SyncCursor.Stream.USERS)
    assert result.status == "halted"
    cursor = cursor_of(connector, "incremental")
    assert cursor.status == "halted" and cursor.locked_until is None
    halt = SyncLog.objects.get(status="halted")
    assert halt.reason == "rate_limited"
    resume = Schedule.objects.get(func="sync.tasks.fetch_step")
    assert resume.schedule_type == Schedule.ONCE and abs((resume.next_run - reset).total_seconds()) < 1
    assert ast.literal_eval(resume.args) == (connector.pk, "incremental:next", "users")  # as the scheduler reads it
    # At the reset the continuation picks the same page up (then the last_seen_at pass).
    assert fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status == "page"
    assert len(sent_ids(firehose)) == 3
    assert fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status == "done"


def test_a_tick_while_a_run_is_in_flight_does_nothing(connector, fake_intercom, firehose):
    seed_users(fake_intercom, 200)
    fetch_step(connector=connector, kind="incremental", stream="users", chain=False)
    assert fetch_step(connector=connector, kind="incremental", stream="users", chain=False).status == "already_running"
    statuses = [fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status for _ in range(3)]
    assert statuses == ["page", "page", "done"]  # page 2, then the two pages of the last_seen_at pass
    # A stray continuation after the run finished does not start a new run.
    assert fetch_step(connector=connector, kind="incremental:next", stream="users", chain=False).status == "idle"


def test_incremental_is_off_when_the_stream_is_disabled(connector, fake_intercom, firehose):
    connector.fetch_users = False
    connector.save()
    seed_users(fake_intercom, 2)
    assert fetch_step(connector=connector, kind="incremental", stream="users", chain=False).status == "idle"
    assert firehose.records == []


def test_incremental_companies_keep_only_recent_updates(connector, fake_intercom, firehose):
    connector.fetch_companies = True
    connector.save()
    fake_intercom.add_company("fresh", updated_at=NOW - 600)
    fake_intercom.add_company("stale", updated_at=NOW - 5 * 86400)
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="companies")
    assert [a["claims"]["anonymous_id"] for a in firehose.of_type("account_traits")] == ["intercom:fresh"]
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
