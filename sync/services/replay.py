"""Replaying stored Hull notifications and Intercom webhook deliveries (admin "Replay" and its command twin).

Replay is safe because every handler is idempotent (ARCHITECTURE.md): the row goes back to
`pending` and the same task that processed it the first time runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from sync.models import Connector, DeliveryStatus, HullNotification, WebhookDelivery

logger = logging.getLogger(__name__)

# What "replay failed" picks up on a connector: failures, and unknown topics a newer version may handle.
REPLAYABLE_STATUSES = (DeliveryStatus.FAILED,)


def _enqueue(task: str, ids: list[int]) -> None:
    for pk in ids:
        transaction.on_commit(partial(async_task, task, pk))


@transaction.atomic
def webhook_deliveries_replay(*, deliveries: Iterable[WebhookDelivery]) -> int:
    """Reset the deliveries to pending and enqueue them again; returns how many."""
    ids = [delivery.pk for delivery in deliveries]
    WebhookDelivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, error="", processed_at=None)
    _enqueue("sync.tasks.process_webhook_delivery", ids)
    logger.info("replay.deliveries", extra={"count": len(ids)})
    return len(ids)


@transaction.atomic
def hull_notifications_replay(*, notifications: Iterable[HullNotification]) -> int:
    """Reset the notifications to pending and enqueue them again; returns how many.

    `processed_messages` is cleared so every message of the notification is synced again.
    """
    ids = [notification.pk for notification in notifications]
    HullNotification.objects.filter(pk__in=ids).update(
        status=DeliveryStatus.PENDING, error="", processed_at=None, processed_messages=[]
    )
    _enqueue("sync.tasks.process_notification", ids)
    logger.info("replay.notifications", extra={"count": len(ids)})
    return len(ids)


def connector_failures_replay(*, connector: Connector) -> tuple[int, int]:
    """Replay every failed delivery and notification of one connector: (deliveries, notifications)."""
    deliveries = WebhookDelivery.objects.filter(connector=connector, status__in=REPLAYABLE_STATUSES).only("pk")
    notifications = HullNotification.objects.filter(connector=connector, status__in=REPLAYABLE_STATUSES).only("pk")
    return webhook_deliveries_replay(deliveries=deliveries), hull_notifications_replay(notifications=notifications)


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING)


@transaction.atomic
def stale_work_requeue(*, older_than: timedelta | None = None, now: datetime | None = None) -> tuple[int, int]:
    """Enqueue again the deliveries and notifications still open long after they arrived: (deliveries, notifications).

    The broker's own redelivery does not cover every crash: django-q2's Redis broker has no
    acknowledgement, so a task held by a killed worker is gone while its row stays pending or
    processing. Enqueueing such a row again is safe (handlers are idempotent, notifications resume
    from `processed_messages`). Rows of paused connectors wait for the connector, not for this.
    """
    older_than = older_than if older_than is not None else timedelta(seconds=settings.STALE_WORK_AFTER_SECONDS)
    cutoff = (now or timezone.now()) - older_than
    stale = {"status__in": OPEN_STATUSES, "received_at__lte": cutoff, "connector__is_active": True}
    delivery_ids = list(WebhookDelivery.objects.filter(**stale).values_list("pk", flat=True))
    notification_ids = list(HullNotification.objects.filter(**stale).values_list("pk", flat=True))
    WebhookDelivery.objects.filter(pk__in=delivery_ids).update(status=DeliveryStatus.PENDING)
    HullNotification.objects.filter(pk__in=notification_ids).update(status=DeliveryStatus.PENDING)
    _enqueue("sync.tasks.process_webhook_delivery", delivery_ids)
    _enqueue("sync.tasks.process_notification", notification_ids)
    if delivery_ids or notification_ids:
        logger.warning("recovery.requeued", extra={"deliveries": len(delivery_ids), "notifications": len(notification_ids)})
    return len(delivery_ids), len(notification_ids)
