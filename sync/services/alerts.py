"""Alerts, the service half: the periodic check (error state, failure threshold) and acknowledgement.

Raising an alert and the hourly digest live in `sync/alerts.py` (so the sync directions can raise
one without importing services); this module is what the admin, the command and the schedule call.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from sync.alerts import Kind, acknowledge_alerts, digest_send_if_due, open_alerts, raise_alert
from sync.models import Connector, ConnectorAlert, SyncLog

__all__ = ["acknowledge_alerts", "alerts_check", "alerts_sweep", "open_alerts", "raise_alert"]

FAILURE_WINDOW = timedelta(hours=1)


def alerts_check(connector: Connector) -> list[ConnectorAlert]:
    """The periodic look: the connector's error state and its failure count, then a due digest."""
    from sync.services.status import ERROR, connector_status

    raised: list[ConnectorAlert] = []
    status = connector_status(connector=connector)
    if status.status == ERROR:
        alert = raise_alert(connector, Kind.ERROR_STATE, "Status is error: " + " ".join(status.messages))
        raised += [alert] if alert else []
    threshold = connector.alert_failure_threshold
    if threshold:
        errors = SyncLog.objects.filter(
            connector=connector, status=SyncLog.Status.ERROR, created_at__gte=timezone.now() - FAILURE_WINDOW
        ).count()
        if errors >= threshold:
            text = f"{errors} sync errors in the last hour (alert threshold {threshold}); see the sync log for Intercom's messages."
            alert = raise_alert(connector, Kind.FAILURES, text)
            raised += [alert] if alert else []
    digest_send_if_due(connector)
    return raised


def alerts_sweep() -> int:
    """Every connector that is active: `alerts_check`. Returns the number of alerts raised or repeated."""
    return sum(len(alerts_check(c)) for c in Connector.objects.filter(is_active=True))
