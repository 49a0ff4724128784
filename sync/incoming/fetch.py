"""Fetching from Intercom: fetch-all and the incremental fetch, one page per django-q2 task.

Each step takes a lease on its SyncCursor (a conditional UPDATE on `locked_until`, like
django-q2's ORM broker dequeue), fetches one page, hands it to Hull through the firehose, and
only then checkpoints the cursor (page cursor, progress, high-water mark) in one transaction.
So a killed worker resumes from the last page Hull has; a redelivered task finds the lease or
the checkpoint and does not repeat work.

Incremental runs (docs/decisions.md "Incremental fetch", docs/incoming.md): search `updated_at >` one
day before the high-water mark, moved before the mark's calendar day in the workspace's time zone
(Intercom compares dates by local day), skip contacts whose `updated_at` is not newer than the
one already ingested (IdentityLink), raise the high-water mark after each page reached Hull, and
retry a failed run from its start (`run_started_from` is kept until the run completes).
Companies are scrolled by both fetches (`/companies/list` stops at 10,000), one scroll per
workspace at a time; a broken scroll restarts.

Schedule ticks and page continuations share `sync.tasks.fetch_step`; a continuation carries
`kind="<kind>:next"`, so a tick never starts a second chain while one is in flight and a
stray continuation never starts a new run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time as dt_time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sync.incoming.context import IncomingContext
from sync.incoming.ingest import (
    IngestedEntity,
    links_for,
    log_incoming_error,
    open_firehose,
    record_ingested,
    send_account_update,
    send_user_update,
    unix_to_datetime,
)
from sync.incoming.payloads import normalise_company, normalise_contact
from sync.incoming.transforms import company_to_hull_account, contact_to_hull_user
from sync.models import Connector, Direction, SyncCursor, SyncLog, WorkAttempt
from sync.synclog import log_outcome
from sync.work import (
    FETCH_CONTINUATION,
    FETCH_STEP,
    TOKEN_REFUSED_ACTION,
    Failure,
    attempt_close,
    attempt_open,
    attempt_outcome,
    classify,
    connector_token_refused,
    fetch_enqueue,
    new_owner,
    reraise_halt,
    resume_time,
    schedule_every,
    schedule_resume,
)

logger = logging.getLogger(__name__)

# One page must finish well inside the task timeout (120 s); the lease outlives it, and is shorter
# than django-q2's `retry` (180 s) so a redelivered task of a killed worker can take over.
LEASE = timedelta(seconds=150)
# A tick that finds a running chain leaves it alone unless the chain has been silent this long.
STALE_CHAIN = timedelta(minutes=10)
LOOKBACK = timedelta(days=1)  # search dates are day-granular (docs/intercom-api.md#contact-search)
CONTACT_PAGE_SIZE = 150  # Intercom's maximum for contact search
MAX_SCROLL_RESTARTS = 5  # a company scroll broken more often than this in one run fails the run
LAST_SEEN_PASS = "last_seen:"
ROLE_FOR_STREAM: dict[str, str] = {SyncCursor.Stream.USERS: "user", SyncCursor.Stream.LEADS: "lead"}
FLAG_FOR_STREAM = {
    SyncCursor.Stream.USERS: ("fetch_users", "fetch_users_interval"),
    SyncCursor.Stream.LEADS: ("fetch_leads", "fetch_leads_interval"),
    SyncCursor.Stream.COMPANIES: ("fetch_companies", "fetch_companies_interval"),
}


@dataclass(frozen=True)
class StepResult:
    """What one step did. `more` is True when another page follows."""

    status: str  # page | done | halted | held | cancelled | already_running | idle | failed
    entities: int = 0
    skipped: int = 0
    more: bool = False
    resume_at: datetime | None = None  # a halted or failed page: when it is tried again (None: by a person, or the next tick)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None = None
    last_seen_pass: bool = False


# --- services -------------------------------------------------------------------------------


def connector_fetch_all(*, connector: Connector, stream: str, restart: bool = False, enqueue: bool = True) -> SyncCursor:
    """Start "Fetch all <stream>" (or continue the unfinished one unless `restart`); returns its cursor."""
    cursor, _ = SyncCursor.objects.get_or_create(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream=stream)
    unfinished = cursor.status in (SyncCursor.Status.RUNNING, SyncCursor.Status.HALTED)
    if restart or not unfinished:
        now = timezone.now()
        SyncCursor.objects.filter(pk=cursor.pk).update(
            status=SyncCursor.Status.RUNNING,
            page_cursor="",
            pages=0,
            entities=0,
            total_estimate=None,
            cancel_requested=False,
            last_error="",
            started_at=now,
            finished_at=None,
            updated_at=now,
        )
        cursor.refresh_from_db()
    if enqueue:
        _enqueue_step(connector.pk, SyncCursor.Kind.FETCH_ALL, stream)
    return cursor


def fetch_cancel(*, connector: Connector, stream: str) -> SyncCursor | None:
    """Ask a fetch-all to stop; the next step sees the flag and ends the run (no page is cut in half)."""
    cursor = SyncCursor.objects.filter(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream=stream).first()
    if cursor is None:
        return None
    SyncCursor.objects.filter(pk=cursor.pk).update(cancel_requested=True)
    if cursor.status not in (SyncCursor.Status.RUNNING, SyncCursor.Status.HALTED) or _lease_free(cursor):
        # Nothing in flight will come back to read the flag, or the next step is merely queued.
        SyncCursor.objects.filter(pk=cursor.pk, status__in=[SyncCursor.Status.RUNNING, SyncCursor.Status.HALTED]).update(
            status=SyncCursor.Status.CANCELLED, finished_at=timezone.now()
        )
    cursor.refresh_from_db()
    return cursor


def fetch_run_to_end(
    *,
    connector: Connector,
    kind: str,
    stream: str,
    on_page: Callable[[SyncCursor, StepResult], None] | None = None,
    max_steps: int | None = None,
) -> SyncCursor:
    """Run a fetch in this process, page after page (the management command and the benchmark)."""
    steps = 0
    step_kind = kind
    while True:
        result = fetch_step(connector=connector, kind=step_kind, stream=stream, chain=False)
        steps += 1
        cursor = SyncCursor.objects.get(connector=connector, kind=kind, stream=stream)
        if on_page is not None:
            on_page(cursor, result)
        if not result.more or (max_steps is not None and steps >= max_steps):
            return cursor
        step_kind = kind + FETCH_CONTINUATION


def connector_schedules_update(*, connector: Connector) -> list[str]:
    """Create, update or remove the connector's incremental-fetch Schedules; returns the names kept."""
    from django_q.models import Schedule

    kept = []
    for stream, (flag, interval_field) in FLAG_FOR_STREAM.items():
        name = schedule_name(connector, stream)
        wanted = connector.is_active and connector.is_intercom_connected and getattr(connector, flag)
        if not wanted:
            Schedule.objects.filter(name=name).delete()
            continue
        schedule_every(
            FETCH_STEP,
            name=name,
            minutes=max(1, int(getattr(connector, interval_field) or 1)),  # every N minutes, N from the connector's settings
            kwargs={"connector_id": connector.pk, "kind": SyncCursor.Kind.INCREMENTAL.value, "stream": stream.value},
            first_run=timedelta(seconds=30),
        )
        kept.append(name)
    return kept


def schedule_name(connector: Connector, stream: str) -> str:
    return f"intercom-fetch:{connector.pk}:{stream}"


# --- the step -------------------------------------------------------------------------------


def fetch_step(*, connector: Connector, kind: str, stream: str, chain: bool = True) -> StepResult:
    """One page of a fetch. With `chain`, enqueues the next page itself (after releasing the lease)."""
    continuation = kind.endswith(FETCH_CONTINUATION)
    kind = kind.removesuffix(FETCH_CONTINUATION)
    if kind not in SyncCursor.Kind.values or stream not in SyncCursor.Stream.values:
        raise ValueError(f"unknown fetch {kind!r}/{stream!r}")
    cursor, _ = SyncCursor.objects.get_or_create(connector=connector, kind=kind, stream=stream)
    if not _take_lease(cursor):
        logger.info("intercom.fetch.already-running", extra={"connector": connector.pk, "kind": kind, "stream": stream})
        return StepResult("already_running")
    result = StepResult("idle")
    attempt: WorkAttempt | None = None
    try:
        cursor.refresh_from_db()
        skipped = _step_skipped(connector, cursor, continuation)
        if skipped is not None:
            result = skipped
        else:
            attempt = _attempt_open(cursor)
            result = _step_page(connector, cursor)
            attempt_close(attempt, outcome=WorkAttempt.Outcome.DONE)
    except Exception as exc:
        # The lifecycle's one classification (sync/work.py): halts wait, transient failures retry.
        kind_of_failure = classify(exc)
        if kind_of_failure is Failure.HALT:
            result = _halt(cursor, exc, chain=chain)
        elif kind_of_failure is Failure.TRANSIENT:
            result = _transient_failure(cursor, exc, chain=chain, tries=attempt.number if attempt else 1)
        else:
            _record_failure(cursor, exc)
        if attempt is not None:
            attempt_close(attempt, outcome=attempt_outcome(exc), error=cursor.last_error, resume_at=result.resume_at)
        if kind_of_failure not in (Failure.HALT, Failure.TRANSIENT):
            raise
    finally:
        _release_lease(cursor)
    if result.more and chain:
        _enqueue_step(connector.pk, kind + FETCH_CONTINUATION, stream)
    return result


def _step_skipped(connector: Connector, cursor: SyncCursor, continuation: bool) -> StepResult | None:
    """Why this step fetches nothing (cancelled, paused, held, finished, redundant); None: fetch a page."""
    Status = SyncCursor.Status
    if cursor.cancel_requested:
        _finish(cursor, Status.CANCELLED)
        return StepResult("cancelled")
    if not connector.is_active:
        return StepResult("idle")
    connector.refresh_from_db(fields=["intercom_token_refused_at"])
    if connector.is_intercom_token_refused:
        return StepResult("held")  # reconnecting Intercom resumes fetch-all runs (sync.work.connector_work_resume)
    if cursor.kind == SyncCursor.Kind.FETCH_ALL:
        if cursor.status not in (Status.RUNNING, Status.HALTED):
            return StepResult("idle")  # finished or cancelled: a late duplicate of a step
    elif not _incremental_ready(connector, cursor, continuation):
        return StepResult("idle" if cursor.status != Status.RUNNING else "already_running")
    return None


def _attempt_open(cursor: SyncCursor) -> WorkAttempt:
    """The attempt row of the page this step fetches: its number counts the tries at this page of the run.

    A cursor is never deleted, so its rows past WorkAttempt.RETENTION_PERIOD go here (one indexed DELETE).
    """
    now = timezone.now()
    WorkAttempt.objects.filter(cursor=cursor, started_at__lt=now - WorkAttempt.RETENTION_PERIOD).delete()
    page = cursor.pages + 1
    earlier = WorkAttempt.objects.filter(cursor=cursor, page=page)
    if cursor.started_at is not None:
        earlier = earlier.filter(started_at__gte=cursor.started_at)
    return attempt_open(connector_id=cursor.connector_id, owner=new_owner(), number=earlier.count() + 1, page=page, cursor=cursor)


def _step_page(connector: Connector, cursor: SyncCursor) -> StepResult:
    """Fetch the cursor's next page, hand it to Hull, then checkpoint."""
    Status = SyncCursor.Status
    ctx = IncomingContext(connector=connector)
    page = _fetch_page(ctx, cursor)
    sent, skipped, high = _ingest_page(ctx, cursor, page)
    # The page is in Hull: checkpoint it.
    now = timezone.now()
    cursor.pages += 1
    cursor.entities += sent
    cursor.page_cursor = page.next_cursor or ""
    if page.total is not None:
        cursor.total_estimate = page.total
    if high is not None and (cursor.high_water_mark is None or high > cursor.high_water_mark):
        cursor.high_water_mark = high
    cursor.status = Status.RUNNING if page.next_cursor else Status.DONE
    cursor.last_error = ""
    if not page.next_cursor:
        cursor.finished_at = now
    cursor.save(
        update_fields=[
            "pages", "entities", "page_cursor", "total_estimate", "high_water_mark", "status", "last_error",
            "finished_at", "updated_at",
        ]
    )
    logger.info(
        "intercom.fetch.page",
        extra={"connector": connector.pk, "kind": cursor.kind, "stream": cursor.stream, "sent": sent, "skipped": skipped},
    )
    return StepResult("page" if page.next_cursor else "done", sent, skipped, more=bool(page.next_cursor))


def _incremental_ready(connector: Connector, cursor: SyncCursor, continuation: bool) -> bool:
    """Start, restart or continue an incremental run; False when this step has nothing to do."""
    Status = SyncCursor.Status
    flag, _ = FLAG_FOR_STREAM[SyncCursor.Stream(cursor.stream)]
    if not getattr(connector, flag) or _scroll_in_use(connector, cursor):
        return False
    now = timezone.now()
    if cursor.status == Status.FAILED:
        # Retried from its start: same search window, first page (docs/decisions.md#incremental-fetch).
        cursor.page_cursor = ""
        cursor.run_started_from = cursor.run_started_from or _search_from(cursor, now)
    elif cursor.status in (Status.RUNNING, Status.HALTED):
        if not continuation and now - cursor.updated_at < STALE_CHAIN:
            return False  # a chain is in flight; this tick is redundant
    elif continuation:
        return False  # a stray continuation of a finished run
    else:
        cursor.page_cursor = ""
        cursor.run_started_from = _search_from(cursor, now)
    if cursor.status != Status.RUNNING:
        cursor.status = Status.RUNNING
        cursor.pages = 0 if not cursor.page_cursor else cursor.pages
        cursor.entities = 0 if not cursor.page_cursor else cursor.entities
        cursor.started_at = now if not cursor.page_cursor else cursor.started_at
        cursor.finished_at = None
        cursor.save(
            update_fields=["status", "page_cursor", "run_started_from", "pages", "entities", "started_at", "finished_at", "updated_at"]
        )
    return True


def _search_from(cursor: SyncCursor, now: datetime) -> datetime:
    """One day before the high-water mark; the first run starts one day back."""
    return (cursor.high_water_mark or now) - LOOKBACK


# --- pages ----------------------------------------------------------------------------------


def _fetch_page(ctx: IncomingContext, cursor: SyncCursor) -> Page:
    from sync.intercom.errors import IntercomNotFound, IntercomValidationError

    if cursor.stream == SyncCursor.Stream.COMPANIES:
        return _company_scroll_page(ctx, cursor)
    try:
        return _request_page(ctx, cursor, cursor.page_cursor or None)
    except (IntercomNotFound, IntercomValidationError):
        if not cursor.page_cursor:
            raise
        # The saved cursor expired (a scroll idles out after a minute): start the listing again.
        # Entities already sent in this run are skipped by `_already_ingested`.
        logger.info("intercom.fetch.cursor-expired", extra={"connector": ctx.connector.pk, "stream": cursor.stream})
        return _request_page(ctx, cursor, None)


def _company_scroll_page(ctx: IncomingContext, cursor: SyncCursor) -> Page:
    """One page of the company scroll, for fetch-all and the incremental fetch alike.

    `/companies/list` reaches only 10,000 companies, sorted by `last_request_at`, so it cannot
    find every company changed since the mark: both fetches scroll (reference §3.3-3.4) and the
    incremental one keeps what changed (`_outside_window`). A scroll broken by a 5xx, a lost
    answer or an expired `scroll_param` cannot be resumed: it restarts from scratch (at most
    MAX_SCROLL_RESTARTS times a run), and what this run already sent is skipped by
    `_already_ingested`. A page served twice in one scroll is a pagination loop: stopped.
    A page asked for but never checkpointed (Hull failed, a halt, a killed worker) restarts the
    scroll too: Intercom gives the same scroll_param on every page, so resuming with it would
    silently skip that page (`"f"` in the saved state marks the page in flight).
    """
    from sync.intercom.client import scroll_page_key
    from sync.intercom.errors import (
        IntercomNotFound,
        IntercomPaginationLoop,
        IntercomServerError,
        IntercomUnavailable,
        IntercomValidationError,
    )

    client = ctx.intercom
    state = _scroll_state(cursor.page_cursor)
    response = None
    if state["s"] and state["f"]:
        # The last step asked for the next page and never checkpointed it (Hull failed, a halt, a
        # killed worker): Intercom moved the scroll on, and the same scroll_param would now serve
        # the page after the lost one. Restart (not counted: Intercom did not break the scroll).
        logger.info(
            "intercom.fetch.scroll-restart",
            extra={"connector": ctx.connector.pk, "kind": cursor.kind, "restarts": state["r"], "error": "unconfirmed_page"},
        )
        state = {"s": "", "r": state["r"], "p": "", "f": 0}
    if state["s"]:
        SyncCursor.objects.filter(pk=cursor.pk).update(page_cursor=json.dumps({**state, "f": 1}))  # asked, not yet in Hull
        try:
            response = client.scroll_companies_page(state["s"])
        except (IntercomNotFound, IntercomServerError, IntercomUnavailable) as exc:
            state = {"s": "", "r": state["r"] + 1, "p": "", "f": 0}
            if state["r"] > MAX_SCROLL_RESTARTS:
                raise IntercomUnavailable(
                    f"the company scroll broke {state['r']} times in this run (last: {exc})", code="scroll_broken"
                ) from exc
            logger.info(
                "intercom.fetch.scroll-restart",
                extra={"connector": ctx.connector.pk, "kind": cursor.kind, "restarts": state["r"], "error": type(exc).__name__},
            )
    if response is None:
        try:
            response = client.open_companies_scroll()
        except IntercomValidationError as exc:
            if exc.code != "scroll_exists":
                raise
            # Another run holds the workspace's one scroll: a transient condition, retried later.
            raise IntercomUnavailable(f"the workspace's company scroll is in use by another run: {exc}", code="scroll_exists") from exc
    items = list(response.get("data") or [])
    if not items:
        return Page([], None)  # the scroll ends with an empty page
    key = scroll_page_key(items)
    if key == state["p"]:
        raise IntercomPaginationLoop("the company scroll served the same page twice", code="pagination_loop")
    scroll_param = response.get("scroll_param")
    next_cursor = json.dumps({"s": scroll_param, "r": state["r"], "p": key}) if scroll_param else None
    return Page(items, next_cursor)


def _scroll_state(page_cursor: str) -> dict[str, Any]:
    """The saved scroll: `{"s": scroll_param, "r": restarts this run, "p": last page's key,
    "f": 1 while the next page was asked for but not checkpointed}`.
    A bare scroll_param (a cursor saved before this format) is read as such."""
    if not page_cursor:
        return {"s": "", "r": 0, "p": "", "f": 0}
    try:
        state = json.loads(page_cursor)
    except ValueError:
        return {"s": page_cursor, "r": 0, "p": "", "f": 0}
    if not isinstance(state, dict):
        return {"s": page_cursor, "r": 0, "p": "", "f": 0}
    return {"s": str(state.get("s") or ""), "r": int(state.get("r") or 0), "p": str(state.get("p") or ""), "f": int(state.get("f") or 0)}


def _scroll_in_use(connector: Connector, cursor: SyncCursor) -> bool:
    """Intercom allows one company scroll per workspace: an incremental company run waits while
    another company run of the same workspace (a fetch-all, say) is in flight; that run delivers
    every company anyway."""
    if cursor.stream != SyncCursor.Stream.COMPANIES or cursor.kind != SyncCursor.Kind.INCREMENTAL:
        return False
    same_workspace = Q(connector=connector)
    if connector.intercom_workspace_id:
        same_workspace |= Q(connector__intercom_workspace_id=connector.intercom_workspace_id)
    return (
        SyncCursor.objects.filter(same_workspace, stream=SyncCursor.Stream.COMPANIES)
        .filter(status__in=[SyncCursor.Status.RUNNING, SyncCursor.Status.HALTED])
        .filter(updated_at__gte=timezone.now() - STALE_CHAIN)
        .exclude(pk=cursor.pk)
        .exists()
    )


def _request_page(ctx: IncomingContext, cursor: SyncCursor, page_cursor: str | None) -> Page:
    client = ctx.intercom
    role = ROLE_FOR_STREAM[cursor.stream]
    incremental = cursor.kind == SyncCursor.Kind.INCREMENTAL
    # The second pass of an incremental run (Hull's `last_seen_at` pass, docs/intercom-behaviour.md#incremental-fetch): its page cursors
    # carry a prefix so a resumed run knows which pass it was in.
    last_seen_pass = incremental and (page_cursor or "").startswith(LAST_SEEN_PASS)
    if last_seen_pass:
        page_cursor = page_cursor[len(LAST_SEEN_PASS) :] or None  # type: ignore[index]
    since = _search_since(ctx, cursor) if incremental else 0
    query = {
        "operator": "AND",
        "value": [
            {"field": "last_seen_at" if last_seen_pass else "updated_at", "operator": ">", "value": since},
            {"field": "role", "operator": "=", "value": role},
        ],
    }
    response = client.search_contacts_page(query, per_page=CONTACT_PAGE_SIZE, starting_after=page_cursor)
    next_page = (response.get("pages") or {}).get("next") or {}
    next_cursor = next_page.get("starting_after") if isinstance(next_page, dict) else None
    if last_seen_pass and next_cursor:
        next_cursor = LAST_SEEN_PASS + next_cursor
    elif not next_cursor and incremental and not last_seen_pass and _maps_last_seen(ctx, role):
        next_cursor = LAST_SEEN_PASS  # first page of the second pass
    return Page(list(response.get("data") or []), next_cursor or None, response.get("total_count"), last_seen_pass)


def _search_since(ctx: IncomingContext, cursor: SyncCursor) -> int:
    """The `updated_at >` / `last_seen_at >` value of a run's searches.

    Intercom compares these dates by calendar day in the workspace's time zone: `> T` returns
    what changed on a later local day than T's, and skips the rest of T's day. So T is the last
    second of the day before the window start's local day, in the time zone `/me` gives
    (app.timezone): everything changed after the window start is returned, on 23-, 24- or
    25-hour days alike (a fixed one-day offset falls on the same local day on a 25-hour day and
    misses the rest of it). When the zone cannot be read, T is two days before the mark instead.
    The overlap costs pages, not Hull writes (`_already_ingested`). See docs/incoming.md.
    """
    window_start = cursor.run_started_from
    assert window_start is not None
    zone = _workspace_zone(ctx)
    if zone is None:
        return int((window_start - LOOKBACK).timestamp())
    local_day = window_start.astimezone(zone).date()
    day_start = datetime.combine(local_day, dt_time.min, tzinfo=zone)
    return int(day_start.timestamp()) - 1


def _workspace_zone(ctx: IncomingContext) -> ZoneInfo | None:
    """The workspace's time zone from `/me`, cached a day per connector; None when unknown."""
    from django.core.cache import cache

    from sync.intercom.errors import IntercomApiError

    key = f"intercom-workspace-tz:{ctx.connector.pk}"
    name = cache.get(key)
    if name is None:
        try:
            name = str(((ctx.intercom.me() or {}).get("app") or {}).get("timezone") or "")
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit or a refused token stops the step; any other error: zone unknown
            return None
        cache.set(key, name, 86400)
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _maps_last_seen(ctx: IncomingContext, role: str) -> bool:
    from sync.mapping import mapping_rows
    from sync.models import Direction

    return any(row.intercom_attribute == "last_seen_at" for row in mapping_rows(ctx.connector, role, Direction.INCOMING))


def _ingest_page(ctx: IncomingContext, cursor: SyncCursor, page: Page) -> tuple[int, int, datetime | None]:
    """Transform, skip what Hull already has, send; returns (sent, skipped, newest updated_at sent)."""
    from sync.intercom.errors import IntercomApiError

    is_company = cursor.stream == SyncCursor.Stream.COMPANIES
    entity = "company" if is_company else ROLE_FOR_STREAM[cursor.stream]
    normalised = [normalise_company(item) if is_company else normalise_contact(item) for item in page.items if item.get("id")]
    links = links_for(ctx.connector, entity, (str(item["id"]) for item in normalised))
    updates: list[Any] = []
    skipped = 0
    for item in normalised:
        if page.last_seen_pass:
            skip = _not_newly_seen(cursor, item)
        else:
            skip = _already_ingested(cursor, links.get(str(item["id"])), item) or _outside_window(cursor, item)
        if skip:
            skipped += 1
            continue
        try:
            updates.append(company_to_hull_account(ctx, item) if is_company else contact_to_hull_user(ctx, item, role=entity))
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit or a refused token stops the page, not this entity
            # One entity's lookup failed (e.g. merged away between listing and reading): its error.
            log_incoming_error(
                ctx,
                entity=SyncLog.EntityType.ACCOUNT if is_company else entity,
                reason=SyncLog.Reason.INTERCOM_ERROR,
                message=str(exc),
                intercom_id=str(item["id"]),
            )
    if updates:
        with open_firehose(ctx.connector) as batch:
            for update in updates:
                (send_account_update if is_company else send_user_update)(batch, update)
    source = "fetch_all" if cursor.kind == SyncCursor.Kind.FETCH_ALL else "incremental"
    ingested = [IngestedEntity.of_account(u) if is_company else IngestedEntity.of_user(u) for u in updates]
    with transaction.atomic():
        record_ingested(ctx, ingested, source=source)
    stamps = [u.updated_at for u in updates if u.updated_at is not None]
    return len(updates), skipped, unix_to_datetime(max(stamps)) if stamps else None


def _already_ingested(cursor: SyncCursor, link: Any, item: dict[str, Any]) -> bool:
    """Hull already has this version: the overlap (incremental) or a resumed page (fetch-all)."""
    updated_at = item.get("updated_at")
    if link is None or link.last_ingested_updated_at is None or not isinstance(updated_at, int):
        return False
    if unix_to_datetime(updated_at) > link.last_ingested_updated_at:
        return False
    if cursor.kind == SyncCursor.Kind.FETCH_ALL:
        # Fetch-all re-sends everything once per run; only what this run already sent is skipped.
        return cursor.started_at is not None and link.updated_at >= cursor.started_at
    return True


def _not_newly_seen(cursor: SyncCursor, item: dict[str, Any]) -> bool:
    """The `last_seen_at` pass keeps contacts seen since the run's high-water mark whose `updated_at`
    is older than the window (newer ones came with the first pass), as Hull's filter does."""
    updated_at, last_seen_at = item.get("updated_at"), item.get("last_seen_at")
    if not isinstance(last_seen_at, int) or cursor.run_started_from is None:
        return True
    window_start = cursor.run_started_from.timestamp()
    if isinstance(updated_at, int) and updated_at > window_start:
        return True
    # The mark the run started from (one lookback after its window start); a first run has none.
    return last_seen_at <= window_start + LOOKBACK.total_seconds()


def _outside_window(cursor: SyncCursor, item: dict[str, Any]) -> bool:
    """Incremental company listing is not filtered server-side: keep what changed since the window."""
    if cursor.kind != SyncCursor.Kind.INCREMENTAL or cursor.stream != SyncCursor.Stream.COMPANIES:
        return False
    updated_at = item.get("updated_at")
    started = cursor.run_started_from
    return isinstance(updated_at, int) and started is not None and updated_at <= started.timestamp()


# --- lease, halts, failures -----------------------------------------------------------------


def _take_lease(cursor: SyncCursor) -> bool:
    now = timezone.now()
    taken = (
        SyncCursor.objects.filter(pk=cursor.pk)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + LEASE)
    )
    return taken == 1


def _release_lease(cursor: SyncCursor) -> None:
    SyncCursor.objects.filter(pk=cursor.pk).update(locked_until=None)


def _lease_free(cursor: SyncCursor) -> bool:
    return cursor.locked_until is None or cursor.locked_until < timezone.now()


def _finish(cursor: SyncCursor, status: str) -> None:
    cursor.status = status
    cursor.finished_at = timezone.now()
    cursor.save(update_fields=["status", "finished_at", "updated_at"])


def _halt(cursor: SyncCursor, exc: Any, *, chain: bool) -> StepResult:
    """Rate limited: record the halt, resume this same page at the reset time (docs/conventions.md "A rate limit is a halt").
    Token refused: the connector is marked and the run waits for Intercom to be connected again."""
    what = f"{cursor.get_kind_display().lower()} of {cursor.stream}"
    resume_at = resume_time(exc)
    if resume_at is None:  # only reconnecting Intercom resumes it
        connector_token_refused(cursor.connector, exc)
        reason = SyncLog.Reason.INTERCOM_UNAUTHORIZED
        cursor.last_error = f"halted: Intercom refused the token ({exc}). {TOKEN_REFUSED_ACTION}."
        message = f"Intercom refused the access token: {what} waits. {TOKEN_REFUSED_ACTION}."
    else:
        reason = SyncLog.Reason.RATE_LIMITED
        cursor.last_error = f"halted: rate_limited until {resume_at.isoformat()}"
        message = f"Intercom rate limit reached; {what} resumes at {resume_at.isoformat()}."
    cursor.status = SyncCursor.Status.HALTED
    cursor.save(update_fields=["status", "last_error", "updated_at"])
    log_outcome(
        cursor.connector,
        direction=Direction.INCOMING,
        entity=SyncLog.EntityType.ACCOUNT if cursor.stream == SyncCursor.Stream.COMPANIES else ROLE_FOR_STREAM[cursor.stream],
        status=SyncLog.Status.HALTED,
        action="incoming.job.halted",
        reason=reason,
        message=message,
        data={"kind": cursor.kind, "stream": cursor.stream, **({"resume_at": resume_at.isoformat()} if resume_at else {})},
    )
    if chain and resume_at is not None:
        _schedule_resume(cursor, resume_at)
    return StepResult("halted", resume_at=resume_at)


def _transient_failure(cursor: SyncCursor, exc: Exception, *, chain: bool, tries: int) -> StepResult:
    """Intercom kept failing after the client's own retries, or the database went away. Incremental:
    the run fails and the next tick retries it from its start. Fetch-all: resume this page later,
    backing off with the `tries` at this page (sync.work.resume_time). (If the database cannot even
    record this, the exception fails the task instead.)"""
    _record_failure(cursor, exc)
    resume_at = resume_time(exc, attempts=tries) if cursor.kind == SyncCursor.Kind.FETCH_ALL and chain else None
    if resume_at is not None:
        _schedule_resume(cursor, resume_at)
    return StepResult("failed", resume_at=resume_at)


def _schedule_resume(cursor: SyncCursor, resume_at: datetime) -> None:
    """A one-off continuation of this run at `resume_at` (a ONCE schedule deletes itself once run)."""
    schedule_resume(
        FETCH_STEP,
        # plain strings: the scheduler reads the args back with ast.literal_eval
        (cursor.connector_id, str(cursor.kind) + FETCH_CONTINUATION, str(cursor.stream)),
        name=f"intercom-fetch-resume:{cursor.pk}:{int(resume_at.timestamp())}",
        at=resume_at,
    )


def _record_failure(cursor: SyncCursor, exc: Exception) -> None:
    """Incremental: FAILED, so the next step restarts the run from its start. Fetch-all keeps its
    checkpoint and stays RUNNING, so django-q2's retry of this task resumes from the last page."""
    cursor.last_error = f"{type(exc).__name__}: {exc}"[:5000]
    fields = ["last_error", "updated_at"]
    if cursor.kind == SyncCursor.Kind.INCREMENTAL:
        cursor.status = SyncCursor.Status.FAILED
        cursor.page_cursor = ""
        fields += ["status", "page_cursor"]
    cursor.save(update_fields=fields)
    logger.warning("intercom.fetch.failed", extra={"cursor": cursor.pk, "error": type(exc).__name__})


def _enqueue_step(connector_id: int, kind: str, stream: str) -> None:
    fetch_enqueue(connector_id, kind, stream)
