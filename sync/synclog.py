"""The one place SyncLog rows are written: every entity the connector touches ends in exactly one."""

from __future__ import annotations

import logging
from typing import Any

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
    """Record one entity's outcome (Hull's message names: `outgoing.user.success`, ...) and log it."""
    row = SyncLog.objects.create(
        connector=connector,
        direction=direction,
        entity=entity,
        status=status,
        action=action,
        reason=reason,
        message=message[:5000],
        hull_id=hull_id or "",
        intercom_id=intercom_id or "",
        email=(email or "")[:255],
        external_id=(external_id or "")[:255],
        data=data or {},
        notification=notification,
        delivery=delivery,
    )
    logger.info(
        action,
        extra={"connector": connector.pk, "reason": reason, "hull_id": hull_id, "intercom_id": intercom_id, "status": status},
    )
    return row
