"""The `flow_control` answer to Hull's notifier (docs/hull-protocol.md#flow-control): back-pressure.

`next` asks for the next batch; `retry` asks Hull to redeliver the same notification after `in`
milliseconds. We answer `retry` when our own queue for the connector is deep or Intercom's rate
budget is spent, so Hull slows down instead of us piling up work we cannot do yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings

from sync.models import Connector, DeliveryStatus, HullNotification

logger = logging.getLogger("sync.outgoing.flow_control")

# Pending or running notifications per connector above which Hull is asked to wait.
MAX_PENDING_NOTIFICATIONS = settings.HULL_MAX_PENDING_NOTIFICATIONS
# Intercom calls left in the current window at or below which Hull is asked to wait.
BUDGET_RESERVE = settings.HULL_FLOW_CONTROL_BUDGET_RESERVE
NEXT_SIZE = 100  # messages per notification we ask for
NEXT_IN_MS = 1  # ms before the next notification when all is well
QUEUE_RETRY_IN_MS = 30_000  # a deep queue drains in tens of seconds, not milliseconds
BUDGET_RETRY_IN_MS = 10_000  # Intercom's rate-limit window is 10 seconds
ERROR_RETRY_IN_MS = 1_000  # Hull's framework default for errors


def next_batch() -> dict[str, Any]:
    return {"type": "next", "size": NEXT_SIZE, "in": NEXT_IN_MS}


def retry_in(milliseconds: int) -> dict[str, Any]:
    return {"type": "retry", "size": 10, "in": milliseconds}


def pending_depth(connector: Connector) -> int:
    return HullNotification.objects.filter(
        connector=connector, status__in=[DeliveryStatus.PENDING, DeliveryStatus.PROCESSING]
    ).count()


def _budget_lookup() -> Callable[[str], int | None] | None:
    # sync/intercom/budget.py is written in parallel; without it there is no budget to respect.
    try:
        from sync.intercom.budget import budget_remaining
    except ImportError:
        return None
    return budget_remaining


def intercom_budget_remaining(connector: Connector) -> int | None:
    """Calls left in the workspace's window, or None when unknown (never blocks on errors)."""
    lookup = _budget_lookup()
    if lookup is None or not connector.is_intercom_connected:
        return None
    from sync.identity import workspace_key

    try:
        return lookup(workspace_key(connector))
    except Exception:  # noqa: BLE001 - flow control must answer even if the budget store is down
        logger.exception("hull.flow-control.budget-unavailable", extra={"connector": connector.pk})
        return None


def flow_control_for(connector: Connector, *, depth: int | None = None) -> dict[str, Any]:
    """What to tell Hull now: `retry` under a deep queue or a spent Intercom budget, else `next`."""
    depth = pending_depth(connector) if depth is None else depth
    if depth > MAX_PENDING_NOTIFICATIONS:
        logger.info("hull.flow-control.queue-deep", extra={"connector": connector.pk, "depth": depth})
        return retry_in(QUEUE_RETRY_IN_MS)
    remaining = intercom_budget_remaining(connector)
    if remaining is not None and remaining <= BUDGET_RESERVE:
        logger.info("hull.flow-control.budget-exhausted", extra={"connector": connector.pk, "remaining": remaining})
        return retry_in(BUDGET_RETRY_IN_MS)
    return next_batch()
