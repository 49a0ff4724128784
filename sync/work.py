"""One lifecycle for every unit of work: Hull notifications and exports, Intercom webhook deliveries, fetch steps.

docs/lifecycle.md describes it in words. In short:

- `enqueue` is the one way work reaches django-q2: on commit, task names from the constants below.
- `lease_take` starts a try: a conditional UPDATE makes the unit `processing` with an owner and a
  lease (`lease_until`), so two workers never run one unit; `Run.heartbeat` extends the lease while
  the try progresses; `Run.finish` / `Run.wait` end the try and always release the lease.
- `classify` sorts any exception into HALT (rate limit, token refused, outcome unknown: the whole
  unit waits), TRANSIENT (5xx, timeouts, the database: retried with back-off), REFUSED (a 4xx about
  this entity: the entity's error row, the unit goes on) and BUG (anything else: the unit fails).
- `resume_time` is the one place that says when waiting work runs again.
- Every try leaves a `WorkAttempt` row (when, outcome, error), fetch steps included (`attempt_open`,
  `attempt_close`): replays and resumes add history.
- A refused Intercom token holds every unit of the connector (`connector_token_refused`) until
  Intercom is connected again; `connector_work_resume` (reconnect, unpause) enqueues what was held.
- `stale_work_requeue` (the sweep) takes only work whose lease expired, or pending work nobody is
  scheduled to run, and never work waiting for a scheduled resume.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from sync.models import Connector, DeliveryStatus, HullNotification, SyncCursor, WebhookDelivery, WorkAttempt
from sync.transient import DATABASE_RETRY_DELAY, DATABASE_UNAVAILABLE

logger = logging.getLogger("sync.work")

# --- task names (django-q2 stores them in queued tasks and Schedule.func: never rename) ----------

PROCESS_NOTIFICATION = "sync.tasks.process_notification"
PROCESS_EXPORT = "sync.tasks.process_export"
PROCESS_WEBHOOK_DELIVERY = "sync.tasks.process_webhook_delivery"
PROCESS_WEBHOOK_DELIVERIES = "sync.tasks.process_webhook_deliveries"  # a batch, from the web process's queue
FETCH_STEP = "sync.tasks.fetch_step"
PRUNE_SYNC_LOGS = "sync.tasks.prune_sync_logs"
REPORT_STATUSES = "sync.tasks.report_statuses"
REQUEUE_STALE_WORK = "sync.tasks.requeue_stale_work"
CHECK_ALERTS = "sync.tasks.check_alerts"

Unit = HullNotification | WebhookDelivery

OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING)
FINAL_STATUSES = (DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.UNSUPPORTED, DeliveryStatus.FAILED)

# When Intercom gave no reset time with its 429.
RATE_LIMIT_FALLBACK = timedelta(seconds=60)
# After a create whose answer was lost: Intercom's search shows new contacts "within a few minutes".
SEARCH_SETTLE = timedelta(minutes=5)
# Transient failures: base * 2**(attempt-1), capped; units give up after MAX_TRANSIENT_ATTEMPTS tries.
RETRY_BASE = timedelta(seconds=60)
RETRY_MAX = timedelta(hours=1)
MAX_TRANSIENT_ATTEMPTS = 5


def lease_length() -> timedelta:
    """How long a try owns its unit without a heartbeat (WORK_LEASE_SECONDS, default 150 s: shorter than django-q2's retry, so its redelivery of a dead worker's task can take over)."""
    return timedelta(seconds=int(getattr(settings, "WORK_LEASE_SECONDS", 150)))


# --- enqueue ---------------------------------------------------------------------------------------


def enqueue(task: str, *args: Any, group: str) -> None:
    """Queue `task(*args)` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: enqueue_now(task, *args, group=group))


def enqueue_now(task: str, *args: Any, group: str) -> None:
    """`async_task`, inside an atomic block when a worker will run it.

    Outside an atomic block django-q2's ORM broker calls `close_old_connections()` on every
    enqueue, so with CONN_MAX_AGE=0 (our SQLite setting) each webhook reopened the database:
    85% of a delivery's time (bench/incoming.py). In sync mode (tests) the task runs inline and
    must not share that block, or a failing task would roll back its own failure record.
    """
    from django_q.conf import Conf
    from django_q.tasks import async_task

    if Conf.SYNC:
        async_task(task, *args, group=group)
        return
    with transaction.atomic():
        async_task(task, *args, group=group)


def unit_task(unit: Unit) -> str:
    if isinstance(unit, WebhookDelivery):
        return PROCESS_WEBHOOK_DELIVERY
    return PROCESS_EXPORT if unit.is_export else PROCESS_NOTIFICATION


def unit_group(unit: Unit) -> str:
    if isinstance(unit, WebhookDelivery):
        return "intercom-webhooks"
    return f"connector-{unit.connector_id}"


def unit_enqueue(unit: Unit) -> None:
    enqueue(unit_task(unit), unit.pk, group=unit_group(unit))


# A fetch step whose kind ends so continues a run and never starts one (sync/incoming/fetch.py).
FETCH_CONTINUATION = ":next"


def fetch_enqueue(connector_id: int, kind: str, stream: str) -> None:
    """Queue one fetch step (a page) of the connector's `kind` ("fetch_all", "incremental:next", ...) and `stream`."""
    enqueue(FETCH_STEP, connector_id, kind, stream, group=f"intercom-fetch:{connector_id}:{stream}")


def resume_schedule_name(unit: Unit) -> str:
    """One resume schedule per unit (a later halt moves it)."""
    if isinstance(unit, WebhookDelivery):
        return f"intercom-webhook-retry:{unit.pk}"
    return f"hull-notification-resume:{unit.pk}"


def schedule_resume(task: str, args: tuple[Any, ...], *, name: str, at: datetime) -> None:
    """Run `task(*args)` at `at` (a ONCE schedule, deleted once run; one per name, the latest wins).

    Args must be plain values: the scheduler reads them back with ast.literal_eval.
    """
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=name,
        defaults={"func": task, "args": repr(tuple(args)), "kwargs": None, "schedule_type": Schedule.ONCE, "next_run": at, "repeats": -1},
    )


def schedule_every(task: str, *, name: str, minutes: int, kwargs: dict[str, Any] | None = None, first_run: timedelta) -> None:
    """Run `task(**kwargs)` every `minutes` (a MINUTES schedule, one per name). A new schedule is first
    due `first_run` from now; an updated one keeps its due time. Kwargs must be plain values (ast.literal_eval)."""
    from django_q.models import Schedule

    defaults = {"func": task, "args": None, "kwargs": repr(kwargs) if kwargs else None, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1}
    schedule, created = Schedule.objects.update_or_create(name=name, defaults=defaults)
    if created:
        schedule.next_run = timezone.now() + first_run
        schedule.save(update_fields=["next_run"])


# --- classification --------------------------------------------------------------------------------


class Failure(enum.Enum):
    HALT = "halt"  # the whole unit (and for a refused token, the whole connector) waits
    TRANSIENT = "transient"  # the infrastructure failed, not the entity: retried with back-off
    REFUSED = "refused"  # Intercom or Hull refused this entity (4xx): its error row, the rest goes on
    BUG = "bug"  # anything else: the unit fails (terminal, replayable)


def classify(exc: BaseException) -> Failure:
    """The one classification of exceptions every unit of work uses (docs/lifecycle.md)."""
    from sync.hull.client import HullApiError
    from sync.intercom.errors import (
        IntercomApiError,
        IntercomOutcomeUnknown,
        IntercomRateLimited,
        IntercomServerError,
        IntercomUnauthorized,
        IntercomUnavailable,
    )

    if isinstance(exc, (IntercomRateLimited, IntercomUnauthorized, IntercomOutcomeUnknown, Halted)):
        return Failure.HALT
    if isinstance(exc, (IntercomServerError, IntercomUnavailable, *DATABASE_UNAVAILABLE)):
        return Failure.TRANSIENT
    if isinstance(exc, IntercomApiError):
        return Failure.REFUSED
    if isinstance(exc, HullApiError):
        return Failure.TRANSIENT if exc.status is None or exc.status >= 500 or exc.status == 429 else Failure.REFUSED
    return Failure.BUG


def halts(exc: BaseException) -> bool:
    """True for what stops the whole unit instead of ending in one entity's error row."""
    return classify(exc) is Failure.HALT


def reraise_halt(exc: BaseException) -> None:
    """For `except IntercomApiError as exc:` blocks that write the entity's error: halts go up instead."""
    if halts(exc):
        raise exc


def token_refused(exc: BaseException) -> bool:
    from sync.intercom.errors import IntercomUnauthorized

    return isinstance(exc, IntercomUnauthorized) or (isinstance(exc, Halted) and exc.token_refused)


class Halted(Exception):
    """A batch stopped on a HALT error: the rest of the unit waits until `resume_at`.

    `resume_at` None with `token_refused` means: until Intercom is connected again.
    """

    def __init__(self, message: str, *, resume_at: datetime | None = None, token_refused: bool = False, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.resume_at = resume_at
        self.token_refused = token_refused
        self.cause = cause

    @property
    def retryable(self) -> bool:  # the older spelling (OutgoingHalted.retryable)
        return not self.token_refused


def halted_from(exc: BaseException, *, now: datetime | None = None) -> Halted:
    """The Halted that describes a HALT error, in words a support engineer reads on the unit."""
    from sync.intercom.errors import IntercomOutcomeUnknown, IntercomRateLimited

    if isinstance(exc, Halted):
        return exc
    when = resume_time(exc, now=now)
    if token_refused(exc):
        return Halted(f"Intercom refused the token: {exc}. Connect Intercom again.", token_refused=True, cause=exc)
    if isinstance(exc, IntercomRateLimited):
        return Halted(f"Intercom rate limit: {getattr(exc, 'message', exc)}", resume_at=when, cause=exc)
    if isinstance(exc, IntercomOutcomeUnknown):
        return Halted(f"Intercom's answer to a create was lost ({exc}); resuming once its search shows the contact", resume_at=when, cause=exc)
    return Halted(str(exc), resume_at=when, cause=exc)


def resume_time(exc: BaseException, *, attempts: int = 1, now: datetime | None = None) -> datetime | None:
    """When work stopped by `exc` runs again; None only when a person must resume it (token refused).

    `attempts` is the number of tries so far (the back-off of transient failures).
    """
    from sync.intercom.errors import IntercomOutcomeUnknown, IntercomRateLimited

    now = now or timezone.now()
    if token_refused(exc):
        return None
    if isinstance(exc, Halted):
        return exc.resume_at or now + RATE_LIMIT_FALLBACK
    if isinstance(exc, IntercomRateLimited):
        reset_at = getattr(exc, "reset_at", None)
        if isinstance(reset_at, datetime):
            return reset_at if reset_at.tzinfo else reset_at.replace(tzinfo=dt_timezone.utc)
        if isinstance(reset_at, (int, float)):
            return datetime.fromtimestamp(reset_at, tz=dt_timezone.utc)
        return now + RATE_LIMIT_FALLBACK
    if isinstance(exc, IntercomOutcomeUnknown):
        return now + SEARCH_SETTLE
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return now + DATABASE_RETRY_DELAY
    return now + min(RETRY_BASE * 2 ** max(0, attempts - 1), RETRY_MAX)


# --- the lease -------------------------------------------------------------------------------------


def new_owner() -> str:
    """Who runs a try: the host, the process and a random part (a lease owner, an attempt's owner)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


def _unit_fk(unit: Unit) -> dict[str, Any]:
    return {"delivery": unit} if isinstance(unit, WebhookDelivery) else {"notification": unit}


# --- attempts: one row per try, of every kind of unit ----------------------------------------------

LOST_ERROR = "The worker stopped; its lease expired."


def attempt_open(*, connector_id: int, owner: str, number: int, page: int | None = None, **unit: Any) -> WorkAttempt:
    """The row of a try that starts now; `unit` names what it tries (`notification=`, `delivery=` or `cursor=`).

    A row of the same unit still `running` belonged to a try whose worker died: it is closed as lost.
    """
    attempts_lost(timezone.now(), **unit)
    return WorkAttempt.objects.create(connector_id=connector_id, number=number, owner=owner, page=page, **unit)


def attempt_close(attempt: WorkAttempt, *, outcome: str, error: str = "", resume_at: datetime | None = None) -> None:
    """End a try's row: its outcome, the error in words, and when the unit resumes (if it does by itself)."""
    fields = {"outcome": outcome, "error": error[:5000], "finished_at": timezone.now(), "resume_at": resume_at}
    WorkAttempt.objects.filter(pk=attempt.pk).update(**fields)
    for name, value in fields.items():
        setattr(attempt, name, value)


def attempts_lost(now: datetime, **unit: Any) -> int:
    """Close the `running` rows of the given units (their workers died); returns how many."""
    return WorkAttempt.objects.filter(outcome=WorkAttempt.Outcome.RUNNING, **unit).update(
        outcome=WorkAttempt.Outcome.LOST, finished_at=now, error=LOST_ERROR
    )


def attempt_outcome(exc: BaseException) -> str:
    """The outcome of a try that `exc` ended (the classification, in the attempt's words)."""
    kind = classify(exc)
    if kind is Failure.HALT:
        return WorkAttempt.Outcome.HELD if token_refused(exc) else WorkAttempt.Outcome.HALTED
    return WorkAttempt.Outcome.RETRY if kind is Failure.TRANSIENT else WorkAttempt.Outcome.FAILED


@dataclass
class Run:
    """One try at one unit: holds the lease until `finish` or `wait`."""

    unit: Unit
    owner: str
    attempt: WorkAttempt
    released: bool = False
    _beat: threading.Event | None = field(default=None, repr=False)

    @contextmanager
    def guard(self) -> Iterator[Run]:
        """Whatever the try does, it ends released: an exception it did not handle fails the unit
        (never `processing` without an owner), and the heartbeat stops with the try."""
        try:
            yield self
        except Exception as exc:
            if not self.released:
                self.wait_or_fail(exc)
            raise
        finally:
            self._stop_heartbeat()

    @property
    def model(self) -> type[Unit]:
        return type(self.unit)

    def heartbeat(self) -> bool:
        """Extend the lease; False when the lease was lost (another worker owns the unit now)."""
        kept = self.model.objects.filter(pk=self.unit.pk, lease_owner=self.owner).update(lease_until=timezone.now() + lease_length())
        return kept == 1

    def _release(self, *, status: str, error: str, resume_at: datetime | None, outcome: str, extra: dict[str, Any] | None = None) -> None:
        self._stop_heartbeat()
        now = timezone.now()
        fields: dict[str, Any] = {
            "status": status,
            "error": error[:5000],
            "lease_owner": "",
            "lease_until": None,
            "resume_at": resume_at,
            "processed_at": None if status == DeliveryStatus.PENDING else now,
            **(extra or {}),
        }
        self.released = True
        released = self.model.objects.filter(pk=self.unit.pk, lease_owner=self.owner).update(**fields)
        if not released:
            logger.warning("work.lease.lost", extra={"unit": f"{self.model.__name__}:{self.unit.pk}", "owner": self.owner})
        for name, value in fields.items():
            setattr(self.unit, name, value)
        attempt_close(self.attempt, outcome=outcome, error=error, resume_at=resume_at)

    def finish(self, status: str, error: str = "", *, extra: dict[str, Any] | None = None) -> None:
        """A terminal state (done, ignored, unsupported, failed)."""
        outcome = WorkAttempt.Outcome.FAILED if status == DeliveryStatus.FAILED else WorkAttempt.Outcome.DONE
        self._release(status=status, error=error, resume_at=None, outcome=outcome, extra=extra)

    def wait(self, exc: BaseException, *, reason: str = "") -> datetime | None:
        """Back to pending after a HALT or TRANSIENT error; schedules the resume; returns when.

        A refused token holds the whole connector (no schedule: reconnecting resumes). A transient
        failure that kept coming for MAX_TRANSIENT_ATTEMPTS tries fails the unit (replayable).
        `reason` (a `SyncLog.Reason`) words the unit's error as "<reason>: retry at <when>".
        """
        halt = halted_from(exc) if classify(exc) is Failure.HALT else None
        if halt is None and self.unit.attempts >= MAX_TRANSIENT_ATTEMPTS:
            self.finish(DeliveryStatus.FAILED, f"{reason}: {type(exc).__name__}: {exc}" if reason else f"{type(exc).__name__}: {exc}")
            return None
        when = resume_time(halt or exc, attempts=self.unit.attempts)
        if when is None:  # the token was refused: no schedule, reconnecting Intercom resumes
            connector_token_refused(self.unit.connector, (halt and halt.cause) or exc)
            held = f"{reason}: held until Intercom is connected again" if reason else str(halt or exc)
            self._release(status=DeliveryStatus.PENDING, error=held, resume_at=None, outcome=WorkAttempt.Outcome.HELD)
            return None
        if reason:
            message = f"{reason}: retry at {when.isoformat()}"
        else:
            message = str(halt) if halt else f"{type(exc).__name__}: {exc}; retry at {when.isoformat()}"
        self._release(status=DeliveryStatus.PENDING, error=message, resume_at=when, outcome=attempt_outcome(exc))
        schedule_resume(unit_task(self.unit), (self.unit.pk,), name=resume_schedule_name(self.unit), at=when)
        logger.warning(
            "work.waiting",
            extra={"unit": f"{self.model.__name__}:{self.unit.pk}", "connector": self.unit.connector_id, "error": type(exc).__name__, "resume_at": when.isoformat()},
        )
        return when

    def wait_or_fail(self, exc: BaseException) -> bool:
        """End the try on `exc`: True when the unit waits (HALT, TRANSIENT), False when it failed (a BUG)."""
        if classify(exc) in (Failure.HALT, Failure.TRANSIENT):
            self.wait(exc)
            return True
        self.fail(exc)
        return False

    def fail(self, exc: BaseException) -> None:
        """A BUG: the unit ends failed (terminal, replayable), with the exception in its error."""
        logger.error("work.failed", exc_info=exc, extra={"unit": f"{self.model.__name__}:{self.unit.pk}", "connector": self.unit.connector_id})
        self.finish(DeliveryStatus.FAILED, f"{type(exc).__name__}: {exc}")

    # A thread extends the lease while a long try runs (an export streams for minutes). Not in an
    # atomic block or on in-memory SQLite: another connection would not see the row or would lock.
    def start_heartbeat(self) -> None:
        if connection.in_atomic_block or (connection.vendor == "sqlite" and cast(Any, connection).is_in_memory_db()):
            return
        stop = threading.Event()
        self._beat = stop
        interval = max(1.0, lease_length().total_seconds() / 3)

        def beat() -> None:
            try:
                while not stop.wait(interval):
                    if not self.heartbeat():
                        return
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                logger.warning("work.heartbeat.failed", exc_info=True)
            finally:
                connection.close()  # this thread's own connection

        threading.Thread(target=beat, name=f"lease-{self.unit.pk}", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        if self._beat is not None:
            self._beat.set()
            self._beat = None


def lease_take(unit: Unit) -> Run | None:
    """Start a try at `unit`: `processing`, owned, leased. None when it is final, held by another
    live try, paused, or its connector's Intercom token was refused (it stays pending)."""
    connector = unit.connector
    if unit.status in FINAL_STATUSES:
        return None
    if not connector.is_active or connector.is_intercom_token_refused:
        return None  # stays pending: resuming the connector or reconnecting Intercom enqueues it
    model = type(unit)
    now = timezone.now()
    owner = new_owner()
    free = Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.PROCESSING) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    taken = model.objects.filter(free, pk=unit.pk).update(
        status=DeliveryStatus.PROCESSING, lease_owner=owner, lease_until=now + lease_length(), resume_at=None, attempts=F("attempts") + 1
    )
    if not taken:
        logger.info("work.lease.busy", extra={"unit": f"{model.__name__}:{unit.pk}"})
        return None
    unit.refresh_from_db()
    attempt = attempt_open(connector_id=unit.connector_id, number=unit.attempts, owner=owner, **_unit_fk(unit))
    run = Run(unit=unit, owner=owner, attempt=attempt)
    run.start_heartbeat()
    return run


# --- the connector: token refused, resumed ----------------------------------------------------------


TOKEN_REFUSED_ACTION = "Connect Intercom again"


def connector_token_refused(connector: Connector, exc: BaseException) -> bool:
    """Intercom answered 401: mark the connector so every unit of it waits; True the first time."""
    now = timezone.now()
    message = f"{exc}"[:2000]
    marked = Connector.objects.filter(pk=connector.pk, intercom_token_refused_at__isnull=True).update(
        intercom_token_refused_at=now, intercom_token_refused_error=message
    )
    connector.intercom_token_refused_at = connector.intercom_token_refused_at or now
    connector.intercom_token_refused_error = connector.intercom_token_refused_error or message
    if marked:
        logger.error("work.connector.token-refused", extra={"connector": connector.pk})
        from sync.alerts import raise_alert  # the editors hear of it once, not once per unit

        raise_alert(connector, "token_lost", f"Intercom refused the access token: connect Intercom again. ({message})")
    return bool(marked)


def connector_token_accepted(*, connector: Connector) -> int:
    """A new token is stored (OAuth or pasted): lift the hold and resume what it held; returns how many."""
    Connector.objects.filter(pk=connector.pk).update(intercom_token_refused_at=None, intercom_token_refused_error="")
    connector.intercom_token_refused_at = None
    connector.intercom_token_refused_error = ""
    return connector_work_resume(connector=connector)


def connector_work_resume(*, connector: Connector) -> int:
    """Enqueue the connector's held work at once (after unpausing, or reconnecting Intercom).

    Pending notifications and deliveries are enqueued unless they wait for a scheduled resume
    that is still ahead (a rate-limit reset); fetch-all runs halted or interrupted continue.
    Returns how many units were enqueued.
    """
    if not connector.is_active or connector.is_intercom_token_refused:
        return 0
    now = timezone.now()
    due = Q(resume_at__isnull=True) | Q(resume_at__lte=now)
    count = 0
    for model in (HullNotification, WebhookDelivery):
        for unit in model.objects.filter(due, connector=connector, status=DeliveryStatus.PENDING):
            unit_enqueue(unit)
            count += 1
    for cursor in SyncCursor.objects.filter(
        connector=connector, kind=SyncCursor.Kind.FETCH_ALL, status__in=[SyncCursor.Status.RUNNING, SyncCursor.Status.HALTED]
    ):
        fetch_enqueue(connector.pk, str(cursor.kind) + FETCH_CONTINUATION, str(cursor.stream))
        count += 1
    logger.info("work.connector.resumed", extra={"connector": connector.pk, "enqueued": count})
    return count


# --- the sweep -------------------------------------------------------------------------------------


def stale_work_requeue(*, older_than: timedelta | None = None, now: datetime | None = None) -> tuple[int, int]:
    """Enqueue again the work a dead worker or a lost task left behind: (deliveries, notifications).

    Taken: `processing` whose lease expired (its worker died), and `pending` received more than
    `older_than` ago that no schedule will run (no `resume_at`, or one long past). Never taken:
    work with a live lease, work waiting for its resume, work of paused connectors or of connectors
    whose token Intercom refused (they resume when the connector does). Enqueueing is harmless
    even when the task was only slow: `lease_take` lets one try run at a time.
    """
    older_than = older_than if older_than is not None else timedelta(seconds=settings.STALE_WORK_AFTER_SECONDS)
    now = now or timezone.now()
    cutoff = now - older_than
    lost = Q(status=DeliveryStatus.PROCESSING) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    forgotten = Q(status=DeliveryStatus.PENDING, received_at__lte=cutoff) & (Q(resume_at__isnull=True) | Q(resume_at__lte=cutoff))
    live_connector = {"connector__is_active": True, "connector__intercom_token_refused_at__isnull": True}
    counts = []
    for model in (WebhookDelivery, HullNotification):
        units: list[Unit] = list(model.objects.filter(lost | forgotten, **live_connector))
        dead = [unit.pk for unit in units if unit.status == DeliveryStatus.PROCESSING]
        if dead:
            # Nothing stays `processing` without an owner: back to pending (only if still expired),
            # and the dead try's attempt row says what happened.
            model.objects.filter(lost, pk__in=dead).update(status=DeliveryStatus.PENDING, lease_owner="", lease_until=None)
            attempts_lost(now, **{"delivery_id__in" if model is WebhookDelivery else "notification_id__in": dead})
        for unit in units:
            unit_enqueue(unit)
        counts.append(len(units))
    if any(counts):
        logger.warning("recovery.requeued", extra={"deliveries": counts[0], "notifications": counts[1]})
    return counts[0], counts[1]


def attempts_of(units: Iterable[Unit]) -> list[WorkAttempt]:
    rows: list[WorkAttempt] = []
    for unit in units:
        rows.extend(WorkAttempt.objects.filter(**_unit_fk(unit)).order_by("started_at", "id"))
    return rows
