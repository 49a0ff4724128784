"""The one place SyncLog rows are written: every entity the connector touches ends in exactly one."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from sync.models import Connector, HullNotification, SyncLog, WebhookDelivery

logger = logging.getLogger("sync.outcome")


def log_outcome(
    connector: Connector,
    *,
    direction: str,
    entity: str,
    status: str,
    action: str,
    reason: str = "",
    message: str = "",
    hull_id: str = "",
    intercom_id: str = "",
    email: str = "",
    external_id: str = "",
    data: dict[str, Any] | None = None,
    notification: HullNotification | None = None,
    delivery: WebhookDelivery | None = None,
) -> SyncLog:
    """Record one entity's outcome (Hull's message names: `outgoing.user.success`, ...) and log it.

    A notification or delivery run again (after a crash, a database outage, a replay) redoes the
    entities whose progress was not saved: their row from the earlier attempt is replaced, so an
    entity still ends in exactly one row per notification or delivery. A success is not replaced
    by a skip: the redo found the work already done, and the success says more.
    """
    fields: dict[str, Any] = {
        "status": status,
        "action": action,
        "reason": reason,
        "message": message[:5000],
        "hull_id": hull_id or "",
        "intercom_id": intercom_id or "",
        "email": (email or "")[:255],
        "external_id": (external_id or "")[:255],
        "data": data or {},
    }
    row = _earlier_attempt_row(direction, entity, fields, notification, delivery)
    if row is None:
        row = SyncLog.objects.create(
            connector=connector, direction=direction, entity=entity, notification=notification, delivery=delivery, **fields
        )
    elif not (row.status == SyncLog.Status.SUCCESS and status == SyncLog.Status.SKIPPED):
        for name, value in fields.items():
            setattr(row, name, value)
        row.created_at = timezone.now()  # listed with this attempt, not the earlier one
        row.save(update_fields=[*fields, "created_at"])
    logger.info(
        action,
        extra={"connector": connector.pk, "reason": reason, "hull_id": hull_id, "intercom_id": intercom_id, "status": status},
    )
    return row


def _earlier_attempt_row(
    direction: str,
    entity: str,
    fields: dict[str, Any],
    notification: HullNotification | None,
    delivery: WebhookDelivery | None,
) -> SyncLog | None:
    """The same entity's row from an earlier attempt at the same notification or delivery."""
    source = notification or delivery
    if source is None or source.attempts <= 1:
        return None  # a first attempt (the common case) costs no query
    rows = SyncLog.objects.filter(direction=direction, entity=entity, notification=notification, delivery=delivery)
    if fields["hull_id"]:
        rows = rows.filter(hull_id=fields["hull_id"])
    elif fields["intercom_id"]:
        rows = rows.filter(intercom_id=fields["intercom_id"])
    elif "message_index" in fields["data"]:
        # A malformed message has no id: its place in the notification names it.
        rows = rows.filter(data__message_index=fields["data"]["message_index"])
    else:
        return None
    if entity == SyncLog.EntityType.EVENT:
        event_id = fields["data"].get("event_id")
        if not event_id:
            return None
        rows = rows.filter(data__event_id=event_id)
    return rows.order_by("-pk").first()
