"""The outgoing task body: one stored Hull notification (or export batch) -> Intercom.

Resumable: the indexes of the (deduplicated) messages already done are saved on
`HullNotification.processed_messages` as each one finishes, so a crash or a rate-limit halt
resumes with the unfinished ones and never redoes a finished one. A rate limit is a halt, not a
failure (STYLE.md convention 7): the notification goes back to `pending`, the rest of the batch is
re-scheduled for the window's reset, and the task returns normally.

Messages of one notification run on a thread pool (`OUTGOING_CONCURRENCY`, default 32: enough
calls in flight to use Intercom's whole rate limit at its usual latency), each thread closing its
database connection when it ends; they share the workspace's Intercom budget through the client. Dedupe guarantees one message per entity, so two threads never push
the same contact. When the caller holds a database transaction (tests, an atomic admin action)
the messages run sequentially: other threads could not see its rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from sync.intercom.errors import BATCH_HALTING_ERRORS, IntercomOutcomeUnknown, IntercomRateLimited, IntercomUnauthorized
from sync.models import Connector, DeliveryStatus, HullNotification, HullSegment, SyncLog
from sync.outgoing.attributes import data_attributes_sync
from sync.outgoing.companies import account_sync
from sync.outgoing.contacts import contact_sync
from sync.outgoing.context import OutgoingContext, build_context
from sync.outgoing.routing import COMPANY, SKIP, USER, message_field, route_message
from sync.transient import DATABASE_RETRY_DELAY, DATABASE_UNAVAILABLE

logger = logging.getLogger("sync.outgoing")

# Threads per notification. Intercom's budget, not CPU, is the limit: at its default 1,666 calls per
# 10 s and ~150 ms a call, about 25 calls must be in flight to use it (bench/outgoing_rate.py).
DEFAULT_CONCURRENCY = 32
HALT_FALLBACK = timedelta(seconds=60)  # when Intercom gave no reset time
# After a create whose answer was lost: Intercom's search shows new contacts "within a few minutes".
SEARCH_SETTLE = timedelta(minutes=5)
# What stops the whole batch instead of ending in one entity's error row.
HALTING_ERRORS = (*BATCH_HALTING_ERRORS, *DATABASE_UNAVAILABLE)


class OutgoingHalted(Exception):
    """Intercom said stop (rate limit, or the token no longer works): the rest waits."""

    def __init__(self, message: str, *, resume_at: datetime | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.resume_at = resume_at
        self.retryable = retryable


# --- one message ---------------------------------------------------------------------------------


def _entity_fields(message: Any) -> dict[str, str]:
    entity = message_field(message, "user") or message_field(message, "account") or {}
    return {
        "hull_id": str(entity.get("id") or ""),
        "email": str(entity.get("email") or ""),
        "external_id": str(entity.get("external_id") or ""),
    }


def message_sync(ctx: OutgoingContext, message: Any) -> str:
    """Route and sync one message; returns the decision's target. Rate limits propagate."""
    decision = route_message(ctx.connector, message)
    if decision.target == SKIP:
        is_account = message_field(message, "user") is None
        data: dict[str, Any] = {}
        events = message_field(message, "events") or []
        if events:
            data["events_not_sent"] = len(events)  # the user's skip covers its events
        ctx.log(
            "account" if is_account else USER,
            SyncLog.Status.SKIPPED,
            reason=decision.reason,
            message=decision.message,
            data=data,
            **_entity_fields(message),
        )
        return SKIP
    if decision.target == COMPANY:
        account_sync(
            ctx,
            account=message_field(message, "account") or {},
            account_segments=message_field(message, "account_segments") or [],
            changes=message_field(message, "changes") or {},
        )
        return COMPANY
    contact_sync(ctx, message=message, target=decision.target)
    return decision.target


def _run_guarded(ctx: OutgoingContext, message: Any) -> None:
    """Unexpected errors end in the entity's error row instead of failing the whole batch."""
    try:
        message_sync(ctx, message)
    except HALTING_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - one entity's bug must not lose the other messages
        logger.exception("outgoing.message.crashed", extra={"connector": ctx.connector.pk})
        ctx.log(
            "account" if message_field(message, "user") is None else USER,
            SyncLog.Status.ERROR,
            reason="internal_error",
            message=f"{type(exc).__name__}: {exc}",
            **_entity_fields(message),
        )


# --- a batch of messages -------------------------------------------------------------------------


def _concurrency() -> int:
    if connection.in_atomic_block:
        return 1
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return 1  # shared-cache in-memory SQLite locks whole tables: threads would only collide
    return max(1, int(getattr(settings, "OUTGOING_CONCURRENCY", DEFAULT_CONCURRENCY)))


class _Progress:
    """The processed-message indexes, saved in small batches as messages finish.

    Saving after every message would rewrite an ever-growing JSON list (quadratic on a
    10,000-message notification); a crash loses at most SAVE_EVERY messages of progress, and
    redoing those is cheap (identical payloads are not re-sent).
    """

    SAVE_EVERY = 25  # messages
    SAVE_AFTER = 2.0  # seconds

    def __init__(self, notification: HullNotification | None) -> None:
        self.notification = notification
        self.done: set[int] = set(int(i) for i in (notification.processed_messages or [])) if notification else set()
        self._lock = threading.Lock()
        self._unsaved = 0
        self._saved_at = time.monotonic()

    def mark(self, index: int) -> None:
        with self._lock:
            self.done.add(index)
            self._unsaved += 1
            if self._unsaved >= self.SAVE_EVERY or time.monotonic() - self._saved_at >= self.SAVE_AFTER:
                self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        if self.notification is not None and self._unsaved:
            self.notification.processed_messages = sorted(self.done)
            HullNotification.objects.filter(pk=self.notification.pk).update(
                processed_messages=self.notification.processed_messages
            )
        self._unsaved = 0
        self._saved_at = time.monotonic()


def outgoing_messages_sync(
    *,
    connector: Connector,
    messages: Sequence[Any],
    notification: HullNotification | None = None,
    context: OutgoingContext | None = None,
) -> None:
    """Sync messages to Intercom, each ending in its SyncLog rows (linked to `notification`).

    The entry point of export batches too (`is_export=True` messages: filters bypassed, "Send
    batch as" decides). Exports hand over one chunk at a time and record finished chunks in
    `processed_messages` themselves, so nothing is recorded here; a chunk redone after a halt is
    made cheap by the idempotent push. Raises OutgoingHalted when Intercom stops us.
    """
    _messages_sync(connector=connector, messages=messages, notification=notification, context=context, resumable=False)


def _messages_sync(
    *,
    connector: Connector,
    messages: Sequence[Any],
    notification: HullNotification | None,
    context: OutgoingContext | None = None,
    resumable: bool,
) -> None:
    ctx = context or build_context(connector, notification)
    progress = _Progress(notification if resumable else None)
    pending = [(i, m) for i, m in enumerate(messages) if i not in progress.done]
    halt: BaseException | None = None
    try:
        workers = _concurrency()
        if workers == 1 or len(pending) <= 1:
            for index, message in pending:
                try:
                    _run_guarded(ctx, message)
                except HALTING_ERRORS as exc:
                    halt = exc
                    break
                progress.mark(index)
        else:
            # One message alone first: its answers tell the shared budget the window's count
            # before 32 threads call at once (a cold budget lets every caller go).
            first_index, first = pending[0]
            try:
                _run_guarded(ctx, first)
                progress.mark(first_index)
            except HALTING_ERRORS as exc:
                halt = exc
            if halt is None:
                halt = _run_pool(ctx, pending[1:], progress, workers)
    finally:
        # Write-backs first: progress recorded for a message whose write-back never left would
        # hide it from the retry.
        ctx.firehose.flush()
        ctx.record_sent_payloads()
        progress.save()
    if isinstance(halt, IntercomRateLimited):
        raise OutgoingHalted(f"Intercom rate limit: {halt.message}", resume_at=halt.reset_at) from halt
    if isinstance(halt, IntercomUnauthorized):
        raise OutgoingHalted(f"Intercom refused the token: {halt}", retryable=False) from halt
    if isinstance(halt, IntercomOutcomeUnknown):
        resume_at = timezone.now() + SEARCH_SETTLE
        raise OutgoingHalted(f"Intercom's answer to a create was lost ({halt}); resuming once its search shows the contact", resume_at=resume_at) from halt
    if halt is not None:
        raise halt


def _run_pool(ctx: OutgoingContext, pending: list[tuple[int, Any]], progress: _Progress, workers: int) -> BaseException | None:
    """`workers` threads take messages from one queue until it is empty or one of them halts.

    Each thread keeps its database connection for all its messages and closes it when it ends
    (a connection per message cost a reconnect each on PostgreSQL). Intercom's latency, not CPU,
    bounds a message, so the thread count is sized for the calls in flight (settings).
    """
    todo: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    for item in pending:
        todo.put(item)
    halts: list[BaseException] = []

    def work() -> None:
        try:
            while not halts:
                try:
                    index, message = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    _run_guarded(ctx, message)
                except BaseException as exc:  # a HALTING_ERRORS one: _run_guarded catches the others
                    halts.append(exc)
                    return
                progress.mark(index)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=work, name=f"outgoing-{n}", daemon=True) for n in range(min(workers, len(pending)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return halts[0] if halts else None


# --- segments and settings -----------------------------------------------------------------------


def segments_refresh(*, connector: Connector, segments: Sequence[Any], kind: str, deleted: bool = False) -> int:
    """Remember segment names Hull told us about (filters' pickers, tag names)."""
    count = 0
    for segment in segments or ():
        if not isinstance(segment, dict) or not segment.get("id"):
            continue
        HullSegment.objects.update_or_create(
            connector=connector,
            kind=kind,
            hull_id=str(segment["id"]),
            defaults={"name": str(segment.get("name") or segment["id"])[:255], "deleted": deleted},
        )
        count += 1
    return count


def _segment_kind(channel: str) -> str:
    return HullSegment.Kind.ACCOUNT if channel.startswith("accounts_segment") else HullSegment.Kind.USER


# --- the task body -------------------------------------------------------------------------------


def _finish(notification: HullNotification, status: str, error: str = "") -> None:
    notification.status = status
    notification.error = error[:5000]
    notification.processed_at = timezone.now() if status != DeliveryStatus.PENDING else None
    notification.save(update_fields=["status", "error", "processed_at"])


def _schedule_resume(notification: HullNotification, resume_at: datetime | None) -> None:
    """Run the task again when Intercom's window resets (a ONCE schedule deletes itself)."""
    from django_q.models import Schedule

    when = resume_at or timezone.now() + HALT_FALLBACK
    Schedule.objects.update_or_create(
        name=f"hull-notification-resume:{notification.pk}",
        defaults={
            "func": "sync.tasks.process_notification",
            "args": repr((notification.pk,)),
            "schedule_type": Schedule.ONCE,
            "next_run": when,
            "repeats": -1,
        },
    )


# What sends a notification (or an export) back to wait instead of failing it.
WAITING_ERRORS = (OutgoingHalted, *DATABASE_UNAVAILABLE)


def notification_wait_or_fail(notification: HullNotification, exc: BaseException) -> None:
    """After a WAITING_ERRORS one: back to pending with its resume scheduled, or failed when Intercom
    refused the token. The database going away is not the notification's fault either (if the database
    cannot even record the wait, this raises, the task fails and the stale-work sweep re-runs it)."""
    if isinstance(exc, OutgoingHalted) and not exc.retryable:
        _finish(notification, DeliveryStatus.FAILED, str(exc))
    elif isinstance(exc, OutgoingHalted):
        _finish(notification, DeliveryStatus.PENDING, str(exc))
        _schedule_resume(notification, exc.resume_at)
    else:
        _finish(notification, DeliveryStatus.PENDING, f"Database unavailable, retrying: {exc}")
        _schedule_resume(notification, timezone.now() + DATABASE_RETRY_DELAY)
    logger.warning(
        "outgoing.notification.halted",
        extra={"connector": notification.connector_id, "notification": notification.pk, "error": type(exc).__name__},
    )


def notification_process(*, notification: HullNotification) -> None:
    """Parse, refresh segments, dedupe, route and sync every message of a stored notification."""
    from sync.hull.messages import (
        ENTITY_CHANNELS,
        SEGMENT_CHANNELS,
        SHIP_CHANNEL,
        NotificationError,
        dedupe_messages,
        parse_notification,
    )

    connector = notification.connector
    if notification.status in (DeliveryStatus.DONE, DeliveryStatus.IGNORED):
        return  # a replayed task: everything was done already
    if not connector.is_active:
        logger.info("outgoing.notification.paused", extra={"connector": connector.pk, "notification": notification.pk})
        return  # stays pending: paused connectors store what they receive and sync nothing
    notification.status = DeliveryStatus.PROCESSING
    notification.attempts += 1
    notification.save(update_fields=["status", "attempts"])

    try:
        parsed = parse_notification(notification.full_payload())
    except (NotificationError, ValueError) as exc:
        _finish(notification, DeliveryStatus.FAILED, f"Unreadable notification: {exc}")
        return
    channel = parsed.channel or notification.channel

    try:
        if channel == SHIP_CHANNEL:
            data_attributes_sync(connector=connector)
            _finish(notification, DeliveryStatus.DONE)
            return
        if channel in SEGMENT_CHANNELS:
            segments_refresh(
                connector=connector,
                segments=parsed.messages,
                kind=_segment_kind(channel),
                deleted=channel.endswith(":delete"),
            )
            _finish(notification, DeliveryStatus.DONE)
            return
        if channel not in ENTITY_CHANNELS:
            _finish(notification, DeliveryStatus.UNSUPPORTED, f"Channel {channel!r} is not handled")
            return
        segments_refresh(connector=connector, segments=parsed.segments, kind=HullSegment.Kind.USER)
        segments_refresh(connector=connector, segments=parsed.account_segments, kind=HullSegment.Kind.ACCOUNT)
        messages = dedupe_messages(parsed.messages)
        if notification.message_count != len(messages):
            notification.message_count = len(messages)
            notification.save(update_fields=["message_count"])
        _messages_sync(connector=connector, messages=messages, notification=notification, resumable=True)
    except WAITING_ERRORS as exc:
        notification_wait_or_fail(notification, exc)
        return
    except Exception as exc:
        _finish(notification, DeliveryStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    _finish(notification, DeliveryStatus.DONE)
