"""Intercom webhook deliveries: store on receipt (the view), process in a task (the registry's handler).

Receipt decides, once, what a delivery is: `ping` and topics outside the connector's whitelist are
stored as ignored; topics in no table are stored as unsupported; the rest wait for the task. A
redelivery (same notification id) hits the unique constraint and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from sync.incoming.context import IncomingContext
from sync.incoming.payloads import IntercomNotification, notification_from_payload
from sync.incoming.topics import handler_for, ignored_reason, topic_is_whitelisted
from sync.models import Connector, DeliveryStatus, Direction, SyncLog, WebhookDelivery
from sync.synclog import log_outcome
from sync.transient import DATABASE_UNAVAILABLE
from sync.work import (
    MAX_TRANSIENT_ATTEMPTS,  # noqa: F401 - its older home
    Failure,
    Run,
    classify,
    halted_from,
    lease_take,
    token_refused,
    unit_enqueue,
)

logger = logging.getLogger(__name__)

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
    *,
    connector: Connector,
    payload: Mapping[str, Any],
    raw_body: bytes | None = None,
    enqueue: Callable[[int], None] | None = None,
) -> tuple[WebhookDelivery, bool]:
    """Persist one delivery (before the 200) and enqueue its processing on commit.

    `enqueue` takes the stored delivery's id instead of a task per delivery (the web process's
    batch queue, webhooks/delivery_queue.py). Returns (delivery, created); `created` is False for
    a redelivery, which changes nothing.
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
            if enqueue is None:
                unit_enqueue(delivery)
            else:
                transaction.on_commit(lambda: enqueue(delivery.pk))
        else:
            logger.info("intercom.webhook.paused", extra={"connector": connector.pk, "delivery": delivery.pk})
    else:
        logger.info(f"intercom.webhook.{status}", extra={"connector": connector.pk, "topic": note.topic, "reason": reason})
    return delivery, True


def webhook_delivery_process(*, delivery: WebhookDelivery) -> None:
    """Run the topic's handler once; safe to call again (final deliveries are left alone).

    The lifecycle is sync/work.py's: a HALT (rate limit, token refused) or a TRANSIENT failure
    (Intercom 5xx/timeouts, the database) sends the delivery back to pending with its resume
    scheduled (transient ones fail after MAX_TRANSIENT_ATTEMPTS tries); a bug fails it.
    """
    handler = handler_for(delivery.topic)
    if handler is None and delivery.status not in FINAL_STATUSES:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.UNSUPPORTED, error="unknown topic", processed_at=timezone.now())
        return
    run = lease_take(delivery)
    if run is None:
        return  # final, owned by a live try, paused, or waiting for Intercom to be connected again
    with run.guard():
        _delivery_try(run, delivery, handler)


def _delivery_try(run: Run, delivery: WebhookDelivery, handler: Any) -> None:
    connector = delivery.connector
    note = notification_from_payload(delivery.payload)
    note = IntercomNotification(**{**note.__dict__, "notification_id": delivery.notification_id})
    ctx = IncomingContext(connector=connector, delivery=delivery)
    try:
        outcome = handler(ctx, note)
    except Exception as exc:
        kind = classify(exc)
        if kind in (Failure.HALT, Failure.TRANSIENT):
            _wait(run, exc)
            return
        # A bug or a Hull failure: recorded, then raised so django-q2 logs it (replayable).
        _fail(run, reason=SyncLog.Reason.UNEXPECTED_ERROR, message=f"{type(exc).__name__}: {exc}")
        raise
    run.finish(outcome.status, outcome.reason if not outcome.message else f"{outcome.reason}: {outcome.message}")


def _reason_for(exc: BaseException) -> str:
    if token_refused(exc):
        return SyncLog.Reason.INTERCOM_UNAUTHORIZED
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return SyncLog.Reason.DATABASE_UNAVAILABLE
    if classify(exc) is Failure.HALT:
        return SyncLog.Reason.RATE_LIMITED
    return SyncLog.Reason.INTERCOM_UNAVAILABLE


def _wait(run: Run, exc: BaseException) -> None:
    delivery = run.unit
    assert isinstance(delivery, WebhookDelivery)  # this module runs Intercom's deliveries only
    reason = _reason_for(exc)
    halted = classify(exc) is Failure.HALT
    resume_at = run.wait(exc, reason=reason)
    if delivery.status == DeliveryStatus.FAILED:  # transient failures kept coming: given up
        _log_row(delivery, status=SyncLog.Status.ERROR, reason=reason, message=str(exc))
    elif halted:
        _log_row(
            delivery,
            status=SyncLog.Status.HALTED,
            reason=reason,
            message=str(halted_from(exc)),
            extra={"retry_at": resume_at.isoformat()} if resume_at else {},
        )


def _fail(run: Run, *, reason: str, message: str) -> None:
    run.finish(DeliveryStatus.FAILED, f"{reason}: {message}")
    assert isinstance(run.unit, WebhookDelivery)  # this module runs Intercom's deliveries only
    _log_row(run.unit, status=SyncLog.Status.ERROR, reason=reason, message=message)


def _log_row(delivery: WebhookDelivery, *, status: str, reason: str, message: str, extra: dict[str, Any] | None = None) -> None:
    log_outcome(
        delivery.connector,
        direction=Direction.INCOMING,
        entity=SyncLog.EntityType.USER,
        status=status,
        action=f"incoming.user.{status}",
        reason=reason,
        message=message,
        data={"topic": delivery.topic, "notification_id": delivery.notification_id, **(extra or {})},
        delivery=delivery,
    )
