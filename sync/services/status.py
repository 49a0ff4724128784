"""The connector's health in Hull's vocabulary: `ok`, `warning`, `error` or `setupRequired`, with messages.

One selector shared by Hull's `/status` endpoint and the admin dashboard, so both tell the same story
(docs/hull-protocol.md#status: `{"status": ..., "messages": [...]}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from sync.models import Connector, DeliveryStatus, HullNotification, SyncCursor, SyncLog, WebhookDelivery

# Errors counted over this window decide between ok / warning / error.
STATUS_WINDOW = timedelta(hours=1)
# More errors than this in the window (and no success at all) is an error, fewer a warning.
ERROR_THRESHOLD = 10
# Notifications/deliveries still pending after this long mean no worker is running.
STALE_QUEUE_AFTER = timedelta(minutes=15)
# Reasons that mean Intercom refuses our token: the connection has to be redone.
UNAUTHORIZED_REASONS = {SyncLog.Reason.INTERCOM_UNAUTHORIZED}

OK = "ok"
WARNING = "warning"
ERROR = "error"
SETUP_REQUIRED = "setupRequired"
_SEVERITY = {OK: 0, WARNING: 1, ERROR: 2, SETUP_REQUIRED: 3}


@dataclass
class ConnectorStatus:
    status: str = OK
    messages: list[str] = field(default_factory=list)

    def add(self, status: str, message: str) -> None:
        """Keep every message; the overall status is the worst one seen."""
        self.messages.append(message)
        if _SEVERITY[status] > _SEVERITY[self.status]:
            self.status = status

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "messages": self.messages}


def connector_status(*, connector: Connector) -> ConnectorStatus:
    """Work out the connector's status from its settings and what happened recently."""
    result = ConnectorStatus()
    # Hull's own connector answers exactly this while no token is stored.
    if not connector.is_intercom_connected:
        result.add(SETUP_REQUIRED, "Connector has not been authenticated with Intercom.")
    if not connector.is_hull_configured:
        result.add(SETUP_REQUIRED, "Hull credentials are incomplete: organization, connector id and secret are required.")
    if result.status == SETUP_REQUIRED:
        return result

    if connector.is_intercom_token_refused:
        # sync.work.connector_token_refused: every unit of work waits for a new token.
        result.add(
            ERROR,
            "Intercom refused the access token (revoked, or the app was uninstalled): all syncing is on hold. "
            "Connect Intercom again (Getting started) and the held work resumes.",
        )
    if not connector.is_active:
        result.add(WARNING, "Connector is paused: what Hull and Intercom send is stored but nothing is synced.")
    if not (connector.synchronized_user_segments or connector.synchronized_lead_segments):
        result.add(WARNING, "No user or lead segments are selected: no Hull users will be sent to Intercom.")

    since = timezone.now() - STATUS_WINDOW
    recent = SyncLog.objects.filter(connector=connector, created_at__gte=since)
    errors = recent.filter(status=SyncLog.Status.ERROR)
    if not connector.is_intercom_token_refused and errors.filter(reason__in=UNAUTHORIZED_REASONS).exists():
        result.add(ERROR, "Intercom rejected the access token: connect Intercom again.")
    error_count = errors.count()
    if error_count:
        succeeded = recent.filter(status=SyncLog.Status.SUCCESS).exists()
        level = ERROR if error_count > ERROR_THRESHOLD and not succeeded else WARNING
        result.add(level, f"{error_count} sync error(s) in the last hour; see the sync log.")

    for cursor in SyncCursor.objects.filter(connector=connector, status=SyncCursor.Status.FAILED):
        result.add(ERROR, f"{cursor.get_kind_display()} of {cursor.stream} failed: {cursor.last_error or 'no details'}")
    for cursor in SyncCursor.objects.filter(connector=connector, status=SyncCursor.Status.HALTED):
        result.add(WARNING, f"{cursor.get_kind_display()} of {cursor.stream} is waiting for Intercom's rate limit to reset.")

    stale = timezone.now() - STALE_QUEUE_AFTER
    stuck = (
        HullNotification.objects.filter(connector=connector, status=DeliveryStatus.PENDING, received_at__lt=stale).count()
        + WebhookDelivery.objects.filter(connector=connector, status=DeliveryStatus.PENDING, received_at__lt=stale).count()
    )
    if stuck:
        result.add(WARNING, f"{stuck} notification(s) waiting for more than 15 minutes: is the worker (qcluster) running?")
    failed = (
        HullNotification.objects.filter(connector=connector, status=DeliveryStatus.FAILED, received_at__gte=since).count()
        + WebhookDelivery.objects.filter(connector=connector, status=DeliveryStatus.FAILED, received_at__gte=since).count()
    )
    if failed:
        result.add(WARNING, f"{failed} notification(s) or webhook(s) failed in the last hour; they can be replayed.")
    return result
