"""django-q2 entry points: ids in, refetch, call one service. Names are stable (Schedule.func stores them).

Each body imports its service lazily so the worker starts fast and import cycles stay impossible.
Enqueue with `sync.work.enqueue(<constant>, id, group=...)`: the task names are sync/work.py's constants.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def process_notification(notification_id: int) -> None:
    """A stored Hull notification (user:update, account:update, segments, ship:update, or an export)."""
    from sync.models import HullNotification
    from sync.outgoing.notifications import notification_process

    notification = HullNotification.objects.filter(pk=notification_id).select_related("connector").first()
    if notification is None:
        logger.warning("task.notification.vanished", extra={"notification_id": notification_id})
        return
    if notification.is_export:
        # Resumes, replays and the stale-work sweep enqueue every kind of notification here.
        from sync.outgoing.exports import export_process

        export_process(notification=notification)
        return
    notification_process(notification=notification)


def process_webhook_delivery(delivery_id: int) -> None:
    """A stored Intercom webhook delivery."""
    from sync.incoming.webhooks import webhook_delivery_process
    from sync.models import WebhookDelivery

    delivery = WebhookDelivery.objects.filter(pk=delivery_id).select_related("connector").first()
    if delivery is None:
        logger.warning("task.delivery.vanished", extra={"delivery_id": delivery_id})
        return
    webhook_delivery_process(delivery=delivery)


def process_webhook_deliveries(delivery_ids: list[int]) -> None:
    """Deliveries one web process received together (webhooks/delivery_queue.py), one after the other.

    Each is independent: one that raises is logged and the others still run; the first error is
    raised at the end, so django-q2 records the task as failed (a redelivery redoes only the
    deliveries not final yet).
    """
    first_error: Exception | None = None
    for delivery_id in delivery_ids:
        try:
            process_webhook_delivery(delivery_id)
        except Exception as exc:  # noqa: BLE001 - the batch's other deliveries must still run
            logger.exception("task.delivery.failed", extra={"delivery_id": delivery_id})
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


def fetch_step(connector_id: int, kind: str, stream: str) -> None:
    """One page of a fetch (incremental or fetch-all); enqueues the next page itself."""
    from sync.incoming.fetch import fetch_step as fetch_step_service
    from sync.models import Connector

    connector = Connector.objects.filter(pk=connector_id).first()
    if connector is None:
        logger.warning("task.fetch.vanished", extra={"connector_id": connector_id})
        return
    fetch_step_service(connector=connector, kind=kind, stream=stream)


def process_export(notification_id: int) -> None:
    """A stored Hull batch export (`/batch`, `/batch-accounts`): stream the file, sync its lines."""
    from sync.outgoing.exports import export_process
    from sync.models import HullNotification

    notification = HullNotification.objects.filter(pk=notification_id, is_export=True).select_related("connector").first()
    if notification is None:
        logger.warning("task.export.vanished", extra={"notification_id": notification_id})
        return
    export_process(notification=notification)


def prune_sync_logs() -> None:
    """Daily retention: delete log rows past each model's RETENTION_PERIOD (twin of `manage.py prune_sync_logs`)."""
    from sync.services.ops import sync_logs_prune

    counts = sync_logs_prune()
    # The counts are keyed by verbose names (lazy strings): a JSON log line needs plain str keys.
    logger.info("task.prune.done", extra={"deleted": {str(name): count for name, count in counts.items()}})


def report_statuses() -> None:
    """Every 5 minutes, as Hull's own scheduler would call /status: PUT each connector's status to Hull."""
    from sync.services.hull_status import hull_status_report
    from sync.models import Connector

    for connector in Connector.objects.filter(is_active=True):
        hull_status_report(connector=connector)


def requeue_stale_work() -> None:
    """Every 5 minutes: enqueue again what a dead worker left pending or processing."""
    from sync.services.replay import stale_work_requeue

    stale_work_requeue()


def check_alerts() -> None:
    """Every 10 minutes: raise alerts for connectors in error or past their failure threshold, send due digests."""
    from sync.services.alerts import alerts_sweep

    alerts_sweep()
