"""Operations services behind the admin actions and their `manage.py` twins.

- `sync_logs_prune`: retention of SyncLog / WebhookDelivery / HullNotification, in batches
  (`prune_sync_logs`, and a Schedule can call it).
- `failed_deliveries` / `failed_notifications`: what `replay` picks in a time range; the replay
  itself is sync/services/replay.py, shared with the admin's "Replay" actions.
- `connector_check`: is this connector able to work? (`check_connector`).
- `segment_push`: ask Hull for an export of one segment, delivered to our batch endpoint and
  synced like any export (`push_segment`).
- `fetch_all_cancel`: stop every running fetch-all of a connector (`cancel_fetch_all`).
- `data_attributes_create`: create in Intercom the custom attributes the outgoing mappings write
  (`sync_data_attributes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from sync.models import Connector, DeliveryStatus, HullNotification, SyncLog, WebhookDelivery

logger = logging.getLogger(__name__)

PRUNE_BATCH_SIZE = 1000  # rows per DELETE: short transactions, no long lock on SQLite
# Rows still waiting for a worker are never pruned: they were acknowledged, so they must be processed.
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING)
# More rows than this waiting for a worker is worth a warning (flow control slows Hull down earlier).
QUEUE_DEPTH_WARNING = 500

PRUNED_MODELS: tuple[tuple[type[SyncLog] | type[WebhookDelivery] | type[HullNotification], str], ...] = (
    # SyncLog first: its rows point at deliveries and notifications (SET_NULL), fewer updates.
    (SyncLog, "created_at"),
    (WebhookDelivery, "received_at"),
    (HullNotification, "received_at"),
)


def sync_logs_prune(
    *,
    older_than: timedelta | None = None,
    connector: Connector | None = None,
    batch_size: int = PRUNE_BATCH_SIZE,
    now: datetime | None = None,
    on_batch: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete log rows older than `older_than` (default: each model's RETENTION_PERIOD); counts per model.

    Deletes by primary-key batches so a large backlog never holds one huge transaction.
    """
    if older_than is not None and older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    now = now or timezone.now()
    deleted: dict[str, int] = {}
    for model, time_field in PRUNED_MODELS:
        cutoff = now - (older_than if older_than is not None else model.RETENTION_PERIOD)
        queryset: QuerySet = model.objects.filter(**{f"{time_field}__lt": cutoff})
        if model is not SyncLog:
            queryset = queryset.exclude(status__in=UNFINISHED)
        if connector is not None:
            queryset = queryset.filter(connector=connector)
        name = str(model._meta.verbose_name_plural)
        total = 0
        while True:
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            model.objects.filter(pk__in=ids).delete()
            total += len(ids)
            if on_batch:
                on_batch(name, total)
        deleted[name] = total
        logger.info("ops.prune", extra={"model": name, "deleted": total, "cutoff": cutoff.isoformat()})
    return deleted


def _in_range(queryset: QuerySet, since: datetime | None, until: datetime | None) -> QuerySet:
    if since is not None:
        queryset = queryset.filter(received_at__gte=since)
    if until is not None:
        queryset = queryset.filter(received_at__lt=until)
    return queryset


def failed_deliveries(*, connector: Connector, since: datetime | None = None, until: datetime | None = None) -> QuerySet:
    """The connector's failed Intercom webhook deliveries received in [since, until)."""
    queryset = WebhookDelivery.objects.filter(connector=connector, status=DeliveryStatus.FAILED)
    return _in_range(queryset, since, until).order_by("received_at", "pk")


def failed_notifications(*, connector: Connector, since: datetime | None = None, until: datetime | None = None) -> QuerySet:
    """The connector's failed Hull notifications (and export batches) received in [since, until)."""
    queryset = HullNotification.objects.filter(connector=connector, status=DeliveryStatus.FAILED)
    return _in_range(queryset, since, until).order_by("received_at", "pk")


# --- check_connector ----------------------------------------------------------------------------

OK, WARN, FAIL = "ok", "warning", "fail"


@dataclass
class CheckItem:
    name: str
    level: str  # ok | warning | fail
    message: str

    @property
    def label(self) -> str:
        """The check's name as the admin and `manage.py check_connector` print it."""
        return CHECK_LABELS.get(self.name, self.name.capitalize())


@dataclass
class ConnectorCheck:
    connector: Connector
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Warnings are worth reading; only a failure means the connector cannot work."""
        return all(item.level != FAIL for item in self.items)

    @property
    def failures(self) -> list[CheckItem]:
        return [item for item in self.items if item.level == FAIL]

    def add(self, name: str, level: str, message: str) -> None:
        self.items.append(CheckItem(name, level, message))


def connector_webhook_url(connector: Connector) -> str:
    """The URL Intercom must call for this connector's webhooks."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("intercom-webhooks", kwargs={"slug": connector.slug})


CHECK_LABELS = {"active": "Active", "hull": "Hull", "intercom": "Intercom", "webhook": "Webhook address", "rate budget": "Intercom rate limit", "queue": "Queue"}


def connector_check(*, connector: Connector, intercom_client: Any = None, hull_client: Any = None) -> ConnectorCheck:
    """Check Hull credentials (`GET /api/v1/app`), Intercom access (`GET /me`), the webhook URL, the rate
    budget and the queue."""
    result = ConnectorCheck(connector=connector)
    if not connector.is_active:
        result.add("active", WARN, "The connector is paused: it stores what it receives but syncs nothing.")

    missing = [
        label
        for label, value in (
            ("organization", connector.hull_organization),
            ("connector id", connector.hull_id),
            ("secret", connector.hull_secret),
        )
        if not value
    ]
    if missing:
        result.add("hull", FAIL, "Hull credentials missing: " + ", ".join(missing) + ".")
    else:
        _check_hull(result, connector, hull_client)

    _check_intercom(result, connector, intercom_client)
    _check_webhook_url(result, connector)
    _check_budget(result, connector)
    _check_queue(result, connector)
    return result


def _check_hull(result: ConnectorCheck, connector: Connector, client: Any) -> None:
    from sync.hull.client import HullApiError, HullClient, HullOrganizationInvalid, HullUnauthorized, HullUnavailable

    org = connector.hull_organization
    try:
        (client or HullClient.for_connector(connector)).get_app()
    except HullOrganizationInvalid as error:
        result.add("hull", FAIL, f"{error}. Correct the Hull organization on the connector's settings page.")
        return
    except HullUnauthorized as error:
        result.add("hull", FAIL, f"Hull refused the connector's credentials for {org} (HTTP {error.status}): check the connector id and secret.")
        return
    except HullUnavailable:
        result.add("hull", FAIL, f"Hull is unreachable at {org}: no answer came back. Try again later, or check this server's network.")
        return
    except HullApiError as error:
        status = f" (HTTP {error.status})" if getattr(error, "status", None) else ""
        result.add("hull", FAIL, f"Hull answered with an error for {org}{status}: {error}")
        return
    result.add("hull", OK, f"Hull accepts the connector's credentials for {connector.hull_organization}.")


def _check_intercom(result: ConnectorCheck, connector: Connector, client: Any) -> None:
    if not connector.is_intercom_connected:
        result.add("intercom", FAIL, "Intercom is not connected: no access token (connect it from the admin).")
        return
    from sync.intercom.errors import IntercomApiError

    try:
        if client is None:
            from sync.intercom.client import IntercomClient

            client = IntercomClient.for_connector(connector, max_retries=0)
        me = client.me()
    except IntercomApiError as error:
        status = f" (HTTP {error.status})" if getattr(error, "status", None) else ""
        result.add("intercom", FAIL, f"Intercom refused GET /me{status}: {error}")
        return
    app = me.get("app") if isinstance(me, dict) else None
    workspace = (app or {}).get("name") or (app or {}).get("id_code") or connector.intercom_workspace_name or "?"
    result.add("intercom", OK, f"Intercom answers GET /me as {me.get('email') or me.get('name') or 'admin'} (workspace {workspace}).")


def _check_webhook_url(result: ConnectorCheck, connector: Connector) -> None:
    try:
        url = connector_webhook_url(connector)
    except NoReverseMatch:
        result.add("webhook", FAIL, "This deployment has no Intercom webhook endpoint.")
        return
    if not connector.receive_events:
        result.add("webhook", WARN, f"Receive Events is off: Intercom webhooks to {url} are ignored.")
    elif not url.startswith("https://") and "localhost" not in url and "127.0.0.1" not in url:
        result.add("webhook", WARN, f"Webhook URL {url} is not HTTPS: Intercom only calls HTTPS URLs (set PUBLIC_BASE_URL).")
    else:
        result.add("webhook", OK, f"Webhook URL {url}")


def _check_budget(result: ConnectorCheck, connector: Connector) -> None:
    from sync.intercom.budget import budget_remaining

    from sync.identity import workspace_key

    key = workspace_key(connector)
    remaining = budget_remaining(key)
    if remaining is None:
        result.add("rate budget", OK, "Intercom rate budget: no call recorded in the current window.")
    elif remaining <= 0:
        result.add("rate budget", WARN, "Intercom rate budget exhausted: calls wait for the window to reset.")
    else:
        result.add("rate budget", OK, f"Intercom rate budget: {remaining} calls left in the current window.")


def _check_queue(result: ConnectorCheck, connector: Connector) -> None:
    waiting = (
        WebhookDelivery.objects.filter(connector=connector, status__in=UNFINISHED).count()
        + HullNotification.objects.filter(connector=connector, status__in=UNFINISHED).count()
    )
    failed = (
        WebhookDelivery.objects.filter(connector=connector, status=DeliveryStatus.FAILED).count()
        + HullNotification.objects.filter(connector=connector, status=DeliveryStatus.FAILED).count()
    )
    level = WARN if waiting > QUEUE_DEPTH_WARNING else OK
    message = f"Queue: {waiting} waiting, {failed} failed"
    if failed:
        message += " (replay them with `manage.py replay` or the admin's Replay action)"
    result.add("queue", WARN if failed and level == OK else level, message + ".")


# --- push_segment -------------------------------------------------------------------------------


class SegmentPushRefused(Exception):
    """The push cannot be requested; the message says why."""


@dataclass
class SegmentPush:
    segment_id: str
    segment_name: str
    batch_url: str  # where Hull will deliver the export (credentials masked)


def connector_batch_url(connector: Connector, *, segment_id: str = "", mask_secret: bool = False) -> str:
    """The `/batch` URL Hull posts an export to, with the credentials in the query (Hull's convention)."""
    from urllib.parse import urlencode

    query = {
        "ship": connector.hull_id,
        "organization": connector.hull_organization,
        "secret": "********" if mask_secret else connector.hull_secret,
        "source": "connector",
    }
    if segment_id:
        query["segment_id"] = segment_id
    path = reverse("hull-batch", kwargs={"slug": connector.slug})
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}?{urlencode(query)}"


def segment_push(*, connector: Connector, segment_id: str, hull_client: Any = None) -> SegmentPush:
    """Ask Hull for an export of one user segment, delivered to our `/batch` endpoint.

    Hull answers at once and later POSTs the export there; it is then synced like any batch
    (sync/outgoing/exports.py -> outgoing_messages_sync): segment filters bypassed, "Send Batch As"
    decides users or leads (docs/hull-protocol.md#exports, requesting an extract).
    """
    if not connector.is_hull_configured:
        raise SegmentPushRefused("Hull credentials are incomplete: organization, connector id and secret are required.")
    if not connector.is_intercom_connected:
        raise SegmentPushRefused("Intercom is not connected: the exported users would have nowhere to go.")
    if not connector.is_active:
        raise SegmentPushRefused("The connector is paused: an export would be stored but not synced.")
    from sync.hull.client import HullClient, HullNotFound

    client = hull_client or HullClient.for_connector(connector)
    try:
        segment = client.get(segment_id)
    except HullNotFound as error:
        raise SegmentPushRefused(f"Hull has no segment {segment_id!r}.") from error
    if not isinstance(segment, dict):
        raise SegmentPushRefused(f"Hull answered {segment!r} for segment {segment_id!r}.")
    body: dict[str, Any] = {
        "query": segment.get("query") or {},
        "format": "json",
        "url": connector_batch_url(connector, segment_id=segment_id),
        "fields": [],
    }
    client.post("extract/user_reports", body)
    logger.info("ops.segment_push.requested", extra={"connector": connector.pk, "segment_id": segment_id})
    return SegmentPush(
        segment_id=segment_id,
        segment_name=str(segment.get("name") or segment_id),
        batch_url=connector_batch_url(connector, segment_id=segment_id, mask_secret=True),
    )


def fetch_all_cancel(*, connector: Connector) -> list[Any]:
    """Ask every running fetch-all of the connector to stop after its page in progress; returns the cursors.

    The admin's "Cancel running fetch-all" and `manage.py cancel_fetch_all` both call this.
    """
    from sync.incoming.fetch import fetch_cancel
    from sync.models import SyncCursor

    cursors = [fetch_cancel(connector=connector, stream=stream) for stream in SyncCursor.Stream.values]
    return [cursor for cursor in cursors if cursor is not None]


def data_attributes_create(*, connector: Connector) -> list[tuple[str, str]]:
    """Create the missing Intercom custom attributes of the outgoing mappings; returns (model, name) created.

    The admin's "Sync data attributes" and `manage.py sync_data_attributes` both call this.
    """
    from sync.outgoing.attributes import data_attributes_sync

    created = list(data_attributes_sync(connector=connector) or [])
    try:
        # The admin's attribute pickers cache Intercom's schema: drop it so they show the new ones.
        from settings_ui.schema import forget_data_attributes
    except ImportError:  # a deployment without the admin app
        return created
    forget_data_attributes(connector)
    return created
