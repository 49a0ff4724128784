"""Replaying stored Hull notifications and Intercom webhook deliveries (admin "Replay" and its command twin).

Replay is safe because every handler is idempotent (docs/conventions.md): the row goes back to
`pending` and the same task that processed it the first time runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction

from sync.models import Connector, DeliveryStatus, HullNotification, WebhookDelivery
from sync import work

logger = logging.getLogger(__name__)

# What "replay failed" picks up on a connector: failures, and unknown topics a newer version may handle.
REPLAYABLE_STATUSES = (DeliveryStatus.FAILED,)


def _enqueue(task: str, ids: list[int], group: str) -> None:
    for pk in ids:
        work.enqueue(task, pk, group=group)


# A replay starts the unit afresh; its attempt rows (sync.models.WorkAttempt) keep the history.
_RESET = {"status": DeliveryStatus.PENDING, "error": "", "processed_at": None, "lease_owner": "", "lease_until": None, "resume_at": None}


@transaction.atomic
def webhook_deliveries_replay(*, deliveries: Iterable[WebhookDelivery]) -> int:
    """Reset the deliveries to pending and enqueue them again; returns how many."""
    ids = [delivery.pk for delivery in deliveries]
    WebhookDelivery.objects.filter(pk__in=ids).update(**_RESET)
    _enqueue(work.PROCESS_WEBHOOK_DELIVERY, ids, "intercom-webhooks")
    logger.info("replay.deliveries", extra={"count": len(ids)})
    return len(ids)


@transaction.atomic
def hull_notifications_replay(*, notifications: Iterable[HullNotification]) -> int:
    """Reset the notifications to pending and enqueue them again; returns how many.

    `processed_messages` is cleared so every message of the notification is synced again.
    """
    ids = [notification.pk for notification in notifications]
    HullNotification.objects.filter(pk__in=ids).update(**_RESET, processed_messages=[])
    for notification in HullNotification.objects.filter(pk__in=ids):
        work.unit_enqueue(notification)
    logger.info("replay.notifications", extra={"count": len(ids)})
    return len(ids)


def connector_failures_replay(*, connector: Connector) -> tuple[int, int]:
    """Replay every failed delivery and notification of one connector: (deliveries, notifications)."""
    deliveries = WebhookDelivery.objects.filter(connector=connector, status__in=REPLAYABLE_STATUSES).only("pk")
    notifications = HullNotification.objects.filter(connector=connector, status__in=REPLAYABLE_STATUSES).only("pk")
    return webhook_deliveries_replay(deliveries=deliveries), hull_notifications_replay(notifications=notifications)


OPEN_STATUSES = work.OPEN_STATUSES


def stale_work_requeue(*, older_than: timedelta | None = None, now: datetime | None = None) -> tuple[int, int]:
    """The stale-work sweep: `sync.work.stale_work_requeue` (leases, scheduled resumes respected)."""
    return work.stale_work_requeue(older_than=older_than, now=now)
