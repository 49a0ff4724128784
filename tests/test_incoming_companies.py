"""Companies from Intercom: the capped, sorted list; the one scroll per workspace; broken scrolls;
pagination loops; an incremental company fetch over 50,000 companies.

Intercom is the contract-checked sandbox, every request and answer, the 50,000-company test's
1,001 scroll pages included (the scroll's answers go through a validator compiled once:
sandbox/intercom/contract.py COMPILED_RESPONSES).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.utils import timezone

from sandbox.intercom.models import Company, Workspace
from sync.incoming.fetch import connector_fetch_all, fetch_run_to_end, fetch_step
from sync.intercom.client import _cursor_items
from sync.intercom.errors import IntercomPaginationLoop
from sync.models import SyncCursor, SyncLog
from tests.incoming_support import RecordingFirehose, calls_to, faults, firehose, intercom, nth, seed_company  # noqa: F401

NOW = int(time.time())


def bulk_companies(sandbox, count: int, *, updated_at: int, last_request_at=None) -> list[Company]:
    """`count` visible companies (one shared member) in two bulk inserts: fast enough for 50,000."""
    member = sandbox.add_contact(role="user", email="member@example.com", external_id="member")
    rows = [
        Company(
            workspace=sandbox.workspace, company_id=f"co{n:05d}", name=f"Company {n}", created_at=updated_at,
            updated_at=updated_at, last_request_at=last_request_at(n) if last_request_at else None,
        )
        for n in range(count)
    ]
    Company.objects.bulk_create(rows, batch_size=5000)
    companies = list(Company.objects.filter(workspace=sandbox.workspace).order_by("seq"))
    through = Company.contacts.through
    contact_pk = type(sandbox.workspace).objects.get(pk=sandbox.workspace.pk).contacts.get(intercom_id=member["id"]).pk
    through.objects.bulk_create([through(company_id=c.pk, contact_id=contact_pk) for c in companies], batch_size=5000)
    if connection.vendor == "postgresql":
        # Statistics for the rows just inserted: without them PostgreSQL plans the sandbox's "has a
        # member" EXISTS as a nested sequential scan, 1.4 s a page instead of milliseconds.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Company._meta.db_table}, {through._meta.db_table}")
    return companies


def run_rest(connector, kind: str = "fetch_all", stream: str = "companies") -> SyncCursor:
    """The continuation steps of a run already started, until it ends."""
    while fetch_step(connector=connector, kind=f"{kind}:next", stream=stream, chain=False).more:
        pass
    return SyncCursor.objects.get(connector=connector, kind=kind, stream=stream)


def account_ids(firehose: RecordingFirehose) -> list[str]:
    return [r["traits"]["intercom/id"] for r in firehose.of_type("account_traits")]


def scroll_opens(sandbox) -> int:
    return sum(1 for c in calls_to(sandbox, "GET", "/companies/scroll") if "scroll_param" not in c.query)


# --- the sandbox models Intercom's list ------------------------------------------------------


def test_the_company_list_is_sorted_by_last_request_at_and_stops_at_10000(intercom):
    bulk_companies(intercom, 10_050, updated_at=NOW - 86400, last_request_at=lambda n: NOW - n * 60)
    Company.objects.filter(company_id="co10049").update(last_request_at=NOW + 60)  # the most recent
    client = intercom.client()
    first = client.list_companies_page(page=1, per_page=60)
    assert first["total_count"] == 10_050 and first["pages"]["total_pages"] == 167  # 10,000 reachable
    assert [c["company_id"] for c in first["data"][:3]] == ["co10049", "co00000", "co00001"]
    last = client.list_companies_page(page=167, per_page=60)
    assert len(last["data"]) == 40  # the 10,000th company ends the list
    from sync.intercom.errors import IntercomValidationError

    with pytest.raises(IntercomValidationError, match="use scroll"):
        client.list_companies_page(page=168, per_page=60)


# --- scrolls ---------------------------------------------------------------------------------


def test_a_scroll_broken_by_a_500_after_the_work_restarts_and_delivers_every_company(connector, intercom, faults, firehose):
    """Intercom moved the scroll on, then answered 500: a retried page would silently skip 50
    companies (70 of 120 delivered, no error). The scroll restarts instead; nothing is lost."""
    companies = bulk_companies(intercom, 120, updated_at=NOW - 600)
    faults.add(nth(1, method="GET", path="/companies/scroll", when=lambda q, b: "scroll_param" in q), 500, after=True)
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies")
    assert cursor.status == "done", cursor.last_error
    sent = account_ids(firehose)
    assert sorted(set(sent)) == sorted(c.intercom_id for c in companies)
    assert len(sent) == 120  # the restart re-reads page 1 but does not send it again
    assert SyncLog.objects.filter(action="incoming.account.success").count() == 120
    # The abandoned scroll is still open for a minute: the restart waited it out, then opened one.
    assert scroll_opens(intercom) == 3 and 61 in intercom.slept


@pytest.mark.parametrize("kind", ["fetch_all", "incremental"])
def test_an_expired_scroll_param_restarts_the_scroll(kind, connector, intercom, firehose, monkeypatch):
    """The worker was away longer than a scroll lives (a minute idle): Intercom answers 404 to
    the scroll_param and the scroll restarts from scratch, delivering every company once. Both
    fetches scroll, the incremental one too: `/companies/list` stops at its cap (10,000 in
    Intercom; 100 here, to keep the test small) and 20 of these companies are past it."""
    from sandbox.intercom import resources

    monkeypatch.setattr(resources, "LIST_CAP", 100)
    connector.fetch_companies = True
    connector.save()
    companies = bulk_companies(intercom, 120, updated_at=NOW - 600, last_request_at=lambda n: NOW - n)
    if kind == "fetch_all":
        connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    assert fetch_step(connector=connector, kind=kind, stream="companies", chain=False).status == "page"
    intercom.advance(61)  # the worker was away longer than the scroll lives
    cursor = run_rest(connector, kind)
    assert cursor.status == "done", cursor.last_error
    assert sorted(account_ids(firehose)) == sorted(c.intercom_id for c in companies)  # every company, once
    resumed = [c.status for c in calls_to(intercom, "GET", "/companies/scroll") if "scroll_param" in c.query]
    assert resumed[0] == 404  # the expired scroll_param
    assert scroll_opens(intercom) == 2  # the restart, and no second scroll while one was open


def test_a_page_that_never_reached_hull_is_not_skipped_when_the_scroll_resumes(connector, intercom, firehose):
    """Intercom moved the scroll on when it served page 2, then Hull failed before the checkpoint.
    Intercom gives the same scroll_param on every page, so resuming with it (inside the scroll's
    minute) served page 3: page 2 was lost without an error (70 of 120). The resume restarts."""
    companies = bulk_companies(intercom, 120, updated_at=NOW - 600)
    firehose.fail_flush_numbers = {2}  # page 2's companies never reach Hull
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    with pytest.raises(ConnectionError):
        fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies")
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)  # "Fetch all" again, at once
    cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies")
    assert cursor.status == "done", cursor.last_error
    sent = account_ids(firehose)
    assert sorted(sent) == sorted(c.intercom_id for c in companies)  # every company, once


def test_a_halt_in_the_middle_of_a_company_page_resumes_without_skipping_a_page(connector, intercom, faults, firehose):
    """A rate-limit halt while a page's companies are enriched (their segments): the page is not
    in Hull, the halt resumes at the reset, inside the scroll's minute. Nothing is skipped."""
    from sandbox.intercom import clock
    from sync.models import FieldMapping

    FieldMapping.objects.create(
        connector=connector, entity="company", direction="incoming", hull_attribute="intercom/segments", intercom_attribute="segments"
    )
    companies = bulk_companies(intercom, 120, updated_at=NOW - 600)
    reset_at = int(clock.now()) + 40  # longer than the client waits in-line: a halt
    headers = {"X-RateLimit-Limit": "1666", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_at)}
    segment_calls = {"n": 0}

    def tenth_company_of_page_2(method, path, query, body):
        if method == "GET" and path.startswith("/companies/") and path.endswith("/segments"):
            segment_calls["n"] += 1
            return segment_calls["n"] == 60  # page 2 is companies 51-100
        return False

    faults.add(tenth_company_of_page_2, 429, headers=headers)
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    assert fetch_step(connector=connector, kind="fetch_all", stream="companies", chain=False).status == "page"
    assert fetch_step(connector=connector, kind="fetch_all:next", stream="companies", chain=False).status == "halted"
    intercom.advance(41)  # the reset: the continuation runs, 41 s after the scroll last moved
    cursor = run_rest(connector)
    assert cursor.status == "done", cursor.last_error
    assert sorted(account_ids(firehose)) == sorted(c.intercom_id for c in companies)


def test_a_fetch_all_whose_scroll_broke_too_often_resumes_later_with_a_fresh_scroll(connector, intercom, faults, firehose):
    """Six breaks in a row end the step (a transient failure, resumed later with back-off). The
    resume used to try the saved scroll_param again, long expired by then: a 404, a seventh break,
    the same failure at every resume, for ever (50 of 120 delivered)."""
    companies = bulk_companies(intercom, 120, updated_at=NOW - 600)
    broken = {"on": True}
    faults.add(lambda m, p, q, b: broken["on"] and p == "/companies/scroll" and "scroll_param" in q, 500, after=True)
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies")
    assert cursor.status == "running" and "broke 6 times" in cursor.last_error
    broken["on"] = False  # Intercom is well again by the resume, minutes later
    intercom.advance(300)
    cursor = run_rest(connector)
    assert cursor.status == "done", cursor.last_error
    assert sorted(account_ids(firehose)) == sorted(c.intercom_id for c in companies)  # every company, once


def test_a_scroll_serving_the_same_page_again_is_stopped(connector, intercom, firehose, monkeypatch):
    """airbyte#69149: the same page forever. The loop guard stops the run with its reason."""
    from sandbox.intercom import api

    bulk_companies(intercom, 120, updated_at=NOW - 600)
    original = api.handle_request

    def stuck(method, path, query, headers, body):
        if path == "/companies/scroll" and query.get("scroll_param"):
            Workspace.objects.filter(pk=intercom.workspace.pk).update(scroll_position=0)  # page 1 again
        return original(method, path, query, headers, body)

    monkeypatch.setattr(api, "handle_request", stuck)
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    with pytest.raises(IntercomPaginationLoop):
        fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies", max_steps=20)
    cursor = SyncCursor.objects.get(connector=connector, kind="fetch_all", stream="companies")
    assert "same page" in cursor.last_error
    assert len(account_ids(firehose)) == 50


def test_the_client_scroll_helper_restarts_a_broken_scroll(intercom, faults):
    companies = bulk_companies(intercom, 120, updated_at=NOW - 600)
    faults.add(nth(2, method="GET", path="/companies/scroll", when=lambda q, b: "scroll_param" in q), 503, after=True)
    listed = [c["id"] for c in intercom.client().scroll_companies()]
    assert sorted(listed) == sorted(c.intercom_id for c in companies)


def test_a_cursor_served_twice_is_a_pagination_loop():
    page = {"data": [{"id": "1"}], "pages": {"next": {"starting_after": "same"}}}
    with pytest.raises(IntercomPaginationLoop):
        list(_cursor_items(lambda cursor: page))


# --- one scroll per workspace ----------------------------------------------------------------


def test_an_incremental_company_run_waits_while_a_fetch_all_scrolls(connector, intercom, firehose):
    connector.fetch_companies = True
    connector.save()
    bulk_companies(intercom, 120, updated_at=NOW - 600)
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    fetch_step(connector=connector, kind="fetch_all", stream="companies", chain=False)  # scroll open
    assert fetch_step(connector=connector, kind="incremental", stream="companies", chain=False).status == "idle"
    assert scroll_opens(intercom) == 1  # the tick did not collide with the open scroll
    assert run_rest(connector).status == "done"
    # Once the fetch-all is done, the next tick runs.
    assert fetch_step(connector=connector, kind="incremental", stream="companies", chain=False).status == "page"


# --- 50,000 companies ------------------------------------------------------------------------


def test_the_incremental_company_fetch_finds_every_change_among_50000_companies(connector, intercom, firehose):
    """`/companies/list` would show 10,000 of them, most recently seen first: changes to the
    others were never fetched. The scroll reads them all, in one scroll, and keeps the changed."""
    connector.fetch_companies = True
    connector.save()
    companies = bulk_companies(intercom, 50_000, updated_at=NOW - 10 * 86400, last_request_at=lambda n: NOW - n)
    changed = [companies[n] for n in (3, 9_999, 10_000, 25_000, 49_999)]
    Company.objects.filter(pk__in=[c.pk for c in changed]).update(updated_at=NOW - 60)
    SyncCursor.objects.create(
        connector=connector, kind="incremental", stream="companies", status="done",
        high_water_mark=timezone.now() - timedelta(days=5),
    )  # fmt: skip
    assert intercom.validate  # every request and answer is contract-checked, the 1,001 scroll pages too
    started = time.monotonic()
    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="companies")
    elapsed = time.monotonic() - started
    assert cursor.status == "done", cursor.last_error
    assert sorted(account_ids(firehose)) == sorted(c.intercom_id for c in changed)
    scrolls = calls_to(intercom, "GET", "/companies/scroll")
    assert scroll_opens(intercom) == 1  # one scroll, start to end
    assert {c.status for c in scrolls} == {200} and len(scrolls) == 1001  # never a scroll_exists, never a restart
    assert intercom.violations == []
    assert cursor.pages == 1001  # 1,000 pages of 50, then the empty page that ends the scroll
    assert cursor.high_water_mark == datetime.fromtimestamp(NOW - 60, tz=dt_timezone.utc)
    print(f"50,000 companies scrolled in {elapsed:.1f} s")
