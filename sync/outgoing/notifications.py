"""The outgoing task body: one stored Hull notification (or export batch) -> Intercom.

Resumable: the indexes of the (deduplicated) messages already done are saved on
`HullNotification.processed_messages` as each one finishes, so a crash or a rate-limit halt
resumes with the unfinished ones and never redoes a finished one. A rate limit is a halt, not a
failure (docs/conventions.md "A rate limit is a halt"): the notification goes back to `pending`, the rest of the batch is
re-scheduled for the window's reset, and the task returns normally.

Messages of one notification run on a thread pool (`OUTGOING_CONCURRENCY`, default 32: enough
calls in flight to use Intercom's whole rate limit at its usual latency), each thread closing its
database connection when it ends; they share the workspace's Intercom budget through the client. Dedupe guarantees one message per entity, so two threads never push
the same contact. When the caller holds a database transaction (tests, an atomic admin action)
the messages run sequentially: other threads could not see its rows.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import connection

from sync.models import Connector, DeliveryStatus, HullNotification, HullSegment, SyncLog
from sync.outgoing.attributes import data_attributes_sync
from sync.outgoing.companies import account_sync
from sync.outgoing.consent import consent_after_push, consent_only
from sync.outgoing.contacts import contact_sync
from sync.outgoing.deletion import LEFT_SEGMENTS, contact_removal, deleted_user_messages, left_every_synced_segment, unarchive_returning
from sync.outgoing.context import OutgoingContext, build_context
from sync.outgoing.routing import COMPANY, SKIP, USER, message_field, route_message
from sync.outgoing.tags import BulkTags
from sync.transient import DATABASE_UNAVAILABLE
from sync.work import SEARCH_SETTLE, Halted, Run, halted_from, halts, lease_take  # noqa: F401 - SEARCH_SETTLE: its older home

if TYPE_CHECKING:
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper

logger = logging.getLogger("sync.outgoing")

# Threads per notification. Intercom's budget, not CPU, is the limit: at its default 1,666 calls per
# 10 s and ~150 ms a call, about 25 calls must be in flight to use it (bench/outgoing_rate.py).
DEFAULT_CONCURRENCY = 32

# The older name of the lifecycle's halt (sync/work.py): raised when Intercom says stop.
OutgoingHalted = Halted


def _stops_batch(exc: BaseException) -> bool:
    """A HALT (sync/work.py), or the database gone: the whole batch waits instead of one entity failing."""
    return halts(exc) or isinstance(exc, DATABASE_UNAVAILABLE)


# --- one message ---------------------------------------------------------------------------------


def _entity_fields(message: Any) -> dict[str, Any]:
    entity = message_field(message, "user") or message_field(message, "account") or {}
    return {
        "hull_id": str(entity.get("id") or ""),
        "email": str(entity.get("email") or ""),
        "external_id": str(entity.get("external_id") or ""),
    }


def message_sync(ctx: OutgoingContext, message: Any) -> str:
    """Route and sync one message; returns the decision's target. Rate limits propagate."""
    if message_field(message, "removal_cause"):
        contact_removal(ctx, message=message, cause=message_field(message, "removal_cause"))
        return SKIP
    decision = route_message(ctx.connector, message)
    if left_every_synced_segment(ctx.connector, message, decision):
        contact_removal(ctx, message=message, cause=LEFT_SEGMENTS)  # the removal policy's row replaces the skip
        return SKIP
    if decision.target == SKIP and consent_only(ctx, message=message, decision=decision):
        return SKIP  # only consent attributes changed: sent, and its row replaces the skip
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
    unarchive_returning(ctx, message=message, target=decision.target)
    outcome = contact_sync(ctx, message=message, target=decision.target)
    consent_after_push(
        ctx, message=message, target=decision.target, trigger=decision.trigger, intercom_id=outcome.intercom_id, status=outcome.status
    )
    return decision.target


def _run_guarded(ctx: OutgoingContext, message: Any) -> None:
    """Unexpected errors end in the entity's error row instead of failing the whole batch."""
    try:
        message_sync(ctx, message)
    except Exception as exc:  # noqa: BLE001 - one entity's bug must not lose the other messages
        if _stops_batch(exc):
            raise
        logger.exception("outgoing.message.crashed", extra={"connector": ctx.connector.pk})
        ctx.log(
            "account" if message_field(message, "user") is None else USER,
            SyncLog.Status.ERROR,
            reason=SyncLog.Reason.INTERNAL_ERROR,
            message=f"{type(exc).__name__}: {exc}",
            **_entity_fields(message),
        )


# --- a batch of messages -------------------------------------------------------------------------


def _concurrency() -> int:
    if connection.in_atomic_block:
        return 1
    if connection.vendor == "sqlite" and cast("SQLiteDatabaseWrapper", connection).is_in_memory_db():
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

    def __init__(self, notification: HullNotification | None, run: Run | None = None) -> None:
        self.notification = notification
        self.run = run
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
        if self.run is not None:
            self.run.heartbeat()  # progress is proof of life: the lease runs on
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
    run: Run | None = None,
) -> None:
    ctx = context or build_context(connector, notification)
    progress = _Progress(notification if resumable else None, run)
    pending = [(i, m) for i, m in enumerate(messages) if i not in progress.done]
    halt: BaseException | None = None
    bulk = ctx.bulk_tags = BulkTags(ctx)  # the threads' users share their tag calls
    try:
        workers = _concurrency()
        if workers == 1 or len(pending) <= 1:
            with bulk.running():
                for index, message in pending:
                    try:
                        _run_guarded(ctx, message)
                    except Exception as exc:  # noqa: BLE001 - _run_guarded lets only batch stoppers through
                        halt = exc
                        break
                    progress.mark(index)
        else:
            # One message alone first: its answers tell the shared budget the window's count
            # before 32 threads call at once (a cold budget lets every caller go).
            first_index, first = pending[0]
            try:
                with bulk.running():
                    _run_guarded(ctx, first)
                progress.mark(first_index)
            except BaseException as exc:  # a batch stopper (_stops_batch): _run_guarded catches the others
                halt = exc
            if halt is None:
                halt = _run_pool(ctx, pending[1:], progress, workers)
    finally:
        ctx.bulk_tags = None
        # Write-backs first: progress recorded for a message whose write-back never left would
        # hide it from the retry.
        ctx.firehose.flush()
        ctx.record_sent_payloads()
        progress.save()
    if halt is not None and halts(halt):
        raise halted_from(halt) from halt
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
    stopped: list[BaseException] = []

    bulk = getattr(ctx, "bulk_tags", None)

    def work() -> None:
        try:
            with bulk.running() if bulk is not None else contextlib.nullcontext():
                _work()
        finally:
            connection.close()  # this thread's own connection

    def _work() -> None:
        while not stopped:
            try:
                index, message = todo.get_nowait()
            except queue.Empty:
                return
            try:
                _run_guarded(ctx, message)
            except BaseException as exc:  # a batch stopper (_stops_batch): _run_guarded catches the others
                stopped.append(exc)
                return
            progress.mark(index)

    threads = [threading.Thread(target=work, name=f"outgoing-{n}", daemon=True) for n in range(min(workers, len(pending)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stopped[0] if stopped else None


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


def _parse(notification: HullNotification) -> tuple[Any, list[Any], list[tuple[int, Any, str]]]:
    """The notification's envelope and its readable messages, plus (index, raw, why) of the malformed
    ones: one bad message (`user: null`) gets its own error row instead of failing the others."""
    from sync.hull.messages import (
        ACCOUNT_CHANNEL,
        USER_CHANNEL,
        NotificationError,
        normalise_account_message,
        normalise_user_message,
        parse_notification,
    )

    payload = notification.full_payload() or {}
    raw_messages = payload.get("messages") if isinstance(payload, dict) else None
    channel = payload.get("channel") if isinstance(payload, dict) else None
    if channel not in (USER_CHANNEL, ACCOUNT_CHANNEL) or not isinstance(raw_messages, list):
        parsed = parse_notification(payload)
        return parsed, list(parsed.messages), []
    parsed = parse_notification({**payload, "messages": []})
    normalise = normalise_user_message if channel == USER_CHANNEL else normalise_account_message
    is_export = bool(payload.get("is_export"))
    messages: list[Any] = []
    malformed: list[tuple[int, Any, str]] = []
    for index, raw in enumerate(raw_messages):
        try:
            messages.append(normalise(raw, is_export=is_export))
        except NotificationError as exc:
            malformed.append((index, raw, str(exc)))
    return parsed, messages, malformed


def _log_malformed(connector: Connector, notification: HullNotification, malformed: list[tuple[int, Any, str]]) -> None:
    from sync.synclog import log_outcome
    from sync.models import Direction

    account = notification.channel.startswith("account")
    for index, raw, why in malformed:
        raw_id = raw.get("message_id") if isinstance(raw, dict) else None
        log_outcome(
            connector,
            direction=Direction.OUTGOING,
            entity=SyncLog.EntityType.ACCOUNT if account else SyncLog.EntityType.USER,
            status=SyncLog.Status.ERROR,
            action=f"outgoing.{'account' if account else 'user'}.error",
            reason=SyncLog.Reason.MALFORMED_MESSAGE,
            message=f"Message {index} of the notification could not be read and was not synced: {why}",
            data={"message_index": index, "message_id": str(raw_id or "")},
            notification=notification,
        )


def notification_process(*, notification: HullNotification) -> None:
    """Parse, refresh segments, dedupe, route and sync every message of a stored notification."""
    connector = notification.connector
    run = lease_take(notification)
    if run is None:
        # Final already (a replayed task), another worker holds it, or the connector is paused or
        # waits for Intercom to be connected again: it stays as it is.
        logger.info("outgoing.notification.not-taken", extra={"connector": connector.pk, "notification": notification.pk, "status": notification.status})
        return
    with run.guard():
        _notification_try(run, notification)


def _notification_try(run: Run, notification: HullNotification) -> None:
    from sync.hull.messages import ENTITY_CHANNELS, SEGMENT_CHANNELS, SHIP_CHANNEL, USER_DELETE_CHANNEL, NotificationError, dedupe_messages

    connector = notification.connector
    try:
        parsed, messages, malformed = _parse(notification)
    except (NotificationError, ValueError) as exc:
        run.finish(DeliveryStatus.FAILED, f"Unreadable notification: {exc}")
        return
    channel = parsed.channel or notification.channel

    try:
        if channel == SHIP_CHANNEL:
            data_attributes_sync(connector=connector)
            run.finish(DeliveryStatus.DONE)
            return
        if channel in SEGMENT_CHANNELS:
            segments_refresh(
                connector=connector,
                segments=parsed.messages,
                kind=_segment_kind(channel),
                deleted=channel.endswith(":delete"),
            )
            run.finish(DeliveryStatus.DONE)
            return
        if channel == USER_DELETE_CHANNEL:
            # Same halts, resumes and progress as user:update; each message ends in the removal policy.
            _messages_sync(connector=connector, messages=deleted_user_messages(messages), notification=notification, resumable=True, run=run)
            run.finish(DeliveryStatus.DONE)
            return
        if channel not in ENTITY_CHANNELS:
            run.finish(DeliveryStatus.UNSUPPORTED, f"Channel {channel!r} is not handled")
            return
        segments_refresh(connector=connector, segments=parsed.segments, kind=HullSegment.Kind.USER)
        segments_refresh(connector=connector, segments=parsed.account_segments, kind=HullSegment.Kind.ACCOUNT)
        if malformed and not notification.processed_messages:
            _log_malformed(connector, notification, malformed)
        messages = dedupe_messages(messages)
        if notification.message_count != len(messages):
            notification.message_count = len(messages)
            notification.save(update_fields=["message_count"])
        _messages_sync(connector=connector, messages=messages, notification=notification, resumable=True, run=run)
    except Exception as exc:
        if run.wait_or_fail(exc):
            return
        raise
    error = f"{len(malformed)} malformed message(s) not synced (see the sync log)" if malformed else ""
    run.finish(DeliveryStatus.DONE, error)
