"""Intercom webhook deliveries: store on receipt (the view), process in a task (the registry's handler).

Receipt decides, once, what a delivery is: `ping` and topics outside the connector's whitelist are
stored as ignored; topics in no table are stored as unsupported; the rest wait for the task. A
redelivery (same notification id) hits the unique constraint and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from sync.incoming.context import IncomingContext
from sync.incoming.handlers import Outcome
from sync.incoming.payloads import IntercomNotification, notification_from_payload
from sync.incoming.queue import enqueue_task
from sync.incoming.topics import handler_for, ignored_reason, topic_is_whitelisted
from sync.models import Connector, DeliveryStatus, Direction, SyncLog, WebhookDelivery
from sync.synclog import log_outcome
from sync.transient import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

PROCESS_TASK = "sync.tasks.process_webhook_delivery"
# Transient Intercom/Hull trouble: retried by our own schedule, base * 2**attempt seconds, capped.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600
MAX_TRANSIENT_ATTEMPTS = 5
FINAL_STATUSES = (DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.UNSUPPORTED)


def delivery_classify(connector: Connector, topic: str) -> tuple[str, str]:
    """(status, reason) for a new delivery of `topic`."""
    if topic == "ping":
        return DeliveryStatus.IGNORED, "ping"
    if handler_for(topic) is None:
        reason = ignored_reason(topic)
        return (DeliveryStatus.IGNORED, f"ignored topic: {reason}") if reason else (DeliveryStatus.UNSUPPORTED, "unknown topic")
    if not connector.receive_events:
        return DeliveryStatus.IGNORED, "receive_events is off"
    if not topic_is_whitelisted(connector, topic):
        return DeliveryStatus.IGNORED, "not in the Intercom Events Whitelist"
    return DeliveryStatus.PENDING, ""


def webhook_delivery_receive(
    *, connector: Connector, payload: Mapping[str, Any], raw_body: bytes | None = None
) -> tuple[WebhookDelivery, bool]:
    """Persist one delivery (before the 200) and enqueue its processing on commit.

    Returns (delivery, created); `created` is False for a redelivery, which changes nothing.
    """
    note = notification_from_payload(payload, raw_body)
    status, reason = delivery_classify(connector, note.topic)
    now = timezone.now()
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                connector=connector,
                notification_id=note.notification_id,
                topic=note.topic,
                payload=dict(payload),
                delivery_attempts=note.delivery_attempts,
                status=status,
                error=reason,
                processed_at=now if status != DeliveryStatus.PENDING else None,
            )
    except IntegrityError:
        existing = WebhookDelivery.objects.get(connector=connector, notification_id=note.notification_id)
        logger.info("intercom.webhook.redelivery", extra={"connector": connector.pk, "delivery": existing.pk})
        return existing, False
    if status == DeliveryStatus.PENDING:
        if connector.is_active:
            transaction.on_commit(lambda: _enqueue(delivery.pk))
        else:
            logger.info("intercom.webhook.paused", extra={"connector": connector.pk, "delivery": delivery.pk})
    else:
        logger.info(f"intercom.webhook.{status}", extra={"connector": connector.pk, "topic": note.topic, "reason": reason})
    return delivery, True


def _enqueue(delivery_id: int) -> None:
    enqueue_task(PROCESS_TASK, delivery_id, group="intercom-webhooks")


def webhook_delivery_process(*, delivery: WebhookDelivery) -> None:
    """Run the topic's handler once; safe to call again (final deliveries are left alone)."""
    from sync.intercom.errors import IntercomRateLimited, IntercomServerError, IntercomUnavailable

    connector = delivery.connector
    if delivery.status in FINAL_STATUSES:
        return
    if not connector.is_active:
        # Paused: the delivery stays pending; resuming the connector replays pending deliveries.
        return
    handler = handler_for(delivery.topic)
    if handler is None:
        _finish(delivery, Outcome(DeliveryStatus.UNSUPPORTED, "unknown topic"))
        return
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PROCESSING, attempts=delivery.attempts + 1)
    delivery.attempts += 1
    note = notification_from_payload(delivery.payload)
    note = IntercomNotification(**{**note.__dict__, "notification_id": delivery.notification_id})
    ctx = IncomingContext(connector=connector, delivery=delivery)
    try:
        outcome = handler(ctx, note)
    except IntercomRateLimited as exc:
        _retry_later(delivery, reason="rate_limited", message=str(exc), at=_reset_time(exc), halted=True)
        return
    except (IntercomServerError, IntercomUnavailable) + DATABASE_UNAVAILABLE as exc:
        # Not the delivery's fault: retried with back-off (if the database lets us write that
        # down; if not, the exception fails the task and the stale-work sweep re-runs it).
        reason = "database_unavailable" if isinstance(exc, DATABASE_UNAVAILABLE) else "intercom_unavailable"
        if delivery.attempts >= MAX_TRANSIENT_ATTEMPTS:
            _fail(delivery, reason=reason, message=str(exc))
            return
        delay = min(RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1), RETRY_MAX_SECONDS)
        _retry_later(delivery, reason=reason, message=str(exc), at=timezone.now() + timedelta(seconds=delay))
        return
    except Exception as exc:
        # A bug or a Hull failure: recorded, then raised so django-q2 retries (handlers are idempotent).
        _fail(delivery, reason="unexpected_error", message=f"{type(exc).__name__}: {exc}")
        raise
    _finish(delivery, outcome)


def _finish(delivery: WebhookDelivery, outcome: Outcome) -> None:
    delivery.status = outcome.status
    delivery.error = outcome.reason if not outcome.message else f"{outcome.reason}: {outcome.message}"
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["status", "error", "processed_at"])


def _fail(delivery: WebhookDelivery, *, reason: str, message: str) -> None:
    _finish(delivery, Outcome(DeliveryStatus.FAILED, reason, message))
    log_outcome(
        delivery.connector,
        direction=Direction.INCOMING,
        entity=SyncLog.EntityType.USER,
        status=SyncLog.Status.ERROR,
        action="incoming.user.error",
        reason=reason,
        message=message,
        data={"topic": delivery.topic, "notification_id": delivery.notification_id},
        delivery=delivery,
    )


def _retry_later(delivery: WebhookDelivery, *, reason: str, message: str, at: datetime, halted: bool = False) -> None:
    """Back to pending, processed again by a one-off schedule (a halt, not a failure: STYLE.md 7)."""
    from django_q.models import Schedule
    from django_q.tasks import schedule

    delivery.status = DeliveryStatus.PENDING
    delivery.error = f"{reason}: retry at {at.isoformat()}"
    delivery.save(update_fields=["status", "error"])
    if halted:
        log_outcome(
            delivery.connector,
            direction=Direction.INCOMING,
            entity=SyncLog.EntityType.USER,
            status=SyncLog.Status.HALTED,
            action="incoming.user.halted",
            reason=reason,
            message=message,
            data={"topic": delivery.topic, "retry_at": at.isoformat()},
            delivery=delivery,
        )
    schedule(
        PROCESS_TASK,
        delivery.pk,
        name=f"intercom-webhook-retry:{delivery.pk}:{delivery.attempts}",
        schedule_type=Schedule.ONCE,
        next_run=at,
    )


def _reset_time(exc: Any) -> datetime:
    reset_at = getattr(exc, "reset_at", None)
    if isinstance(reset_at, datetime):
        return reset_at if reset_at.tzinfo else reset_at.replace(tzinfo=dt_timezone.utc)
    if isinstance(reset_at, (int, float)):
        return datetime.fromtimestamp(reset_at, tz=dt_timezone.utc)
    return timezone.now() + timedelta(seconds=RETRY_BASE_SECONDS)
