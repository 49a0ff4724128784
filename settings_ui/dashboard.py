"""What the connector dashboard shows, read in one place (a selector: it only reads)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import CharField, Count, Value
from django.db.models.functions import Cast, Coalesce, NullIf
from django.urls import reverse
from django.utils import timezone

from sync.intercom.regions import intercom_api_base
from sync.models import Connector, Direction, DeliveryStatus, HullNotification, RateBudget, SyncCursor, SyncLog, WebhookDelivery
from sync.services.status import ConnectorStatus, connector_status
from settings_ui.features import features_dashboard

LATEST_ERRORS = 20


@dataclass
class EntityCounts:
    entity: str
    success: int = 0
    skip: int = 0
    halted: int = 0
    error: int = 0


def webhook_url(connector: Connector) -> str:
    """The URL to paste into the Intercom app's webhook settings."""
    return f"{settings.PUBLIC_BASE_URL}/intercom/{connector.slug}/webhooks"


def rate_budget(connector: Connector) -> RateBudget | None:
    # The Intercom client keys the budget by workspace id, or by connector before one is known.
    keys = [key for key in (connector.intercom_workspace_id, f"connector-{connector.pk}") if key]
    return RateBudget.objects.filter(workspace_key__in=keys).order_by("-updated_at").first()


def queue_depth() -> int | None:
    """Tasks waiting in django-q2's ORM broker (None with the Redis broker, which the admin can't count)."""
    if "orm" not in settings.Q_CLUSTER:
        return None
    from django_q.models import OrmQ

    return OrmQ.objects.count()


def counts_last_day(connector: Connector) -> list[EntityCounts]:
    """People and companies (not log rows) per outcome: someone synced 40 times counts once.

    An entity is known by its Intercom id, else its Hull id, else its email; a row with none of
    them counts alone.
    """
    since = timezone.now() - timedelta(hours=24)
    who = Coalesce(
        NullIf("intercom_id", Value("")), NullIf("hull_id", Value("")), NullIf("email", Value("")), Cast("id", CharField())
    )
    rows = (
        SyncLog.objects.filter(connector=connector, created_at__gte=since)
        .values("entity", "direction", "status")
        .annotate(n=Count(who, distinct=True))
    )
    table: dict[tuple[str, str], EntityCounts] = {}
    for row in rows:
        key = (row["entity"], row["direction"])
        label = f"{SyncLog.EntityType(row['entity']).label} ({Direction(row['direction']).label})"
        counts = table.setdefault(key, EntityCounts(entity=label))
        setattr(counts, row["status"], getattr(counts, row["status"], 0) + row["n"])
    return [table[key] for key in sorted(table)]


STATUS_WORDS = {
    "ok": "Working",
    "warning": "Needs attention",
    "error": "Failing",
    "setupRequired": "Set-up needed",
}


def eta_text(cursor: SyncCursor | None, now: datetime | None = None) -> str:
    """About how long a running fetch-all still needs, from its pace so far; "" when unknown."""
    if cursor is None or cursor.status != SyncCursor.Status.RUNNING or not cursor.started_at:
        return ""
    if not cursor.total_estimate or not cursor.entities:
        return ""
    elapsed = ((now or timezone.now()) - cursor.started_at).total_seconds()
    left = max(cursor.total_estimate - cursor.entities, 0)
    if elapsed <= 0:
        return ""
    seconds = left * elapsed / cursor.entities
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    return f"about {minutes} minute{'s' if minutes != 1 else ''} left" if minutes < 120 else f"about {round(minutes / 60)} hours left"


def dashboard_context(connector: Connector) -> dict[str, Any]:
    """Everything the dashboard shows; the live part (dashboard_live.html) is refreshed from the same."""
    from settings_ui.background import background_results

    status: ConnectorStatus = connector_status(connector=connector)
    cursors = {(c.kind, c.stream): c for c in SyncCursor.objects.filter(connector=connector)}
    streams = [
        {
            "stream": stream,
            "label": label,
            "incremental": cursors.get((SyncCursor.Kind.INCREMENTAL, stream)),
            "fetch_all": cursors.get((SyncCursor.Kind.FETCH_ALL, stream)),
            "enabled": getattr(connector, f"fetch_{stream}"),
            "interval": getattr(connector, f"fetch_{stream}_interval"),
            "eta": eta_text(cursors.get((SyncCursor.Kind.FETCH_ALL, stream))),
        }
        for stream, label in SyncCursor.Stream.choices
    ]
    errors = SyncLog.objects.filter(connector=connector, status=SyncLog.Status.ERROR).defer("data")[:LATEST_ERRORS]
    budget = rate_budget(connector)
    return {
        "connector": connector,
        "status": status,
        "status_words": STATUS_WORDS.get(status.status, status.status),
        "background": background_results(connector),
        "webhook_url": webhook_url(connector),
        "intercom_api_host": intercom_api_base(connector),
        "streams": streams,
        "pending_notifications": HullNotification.objects.filter(connector=connector, status=DeliveryStatus.PENDING).count(),
        "failed_notifications": HullNotification.objects.filter(connector=connector, status=DeliveryStatus.FAILED).count(),
        "pending_deliveries": WebhookDelivery.objects.filter(connector=connector, status=DeliveryStatus.PENDING).count(),
        "failed_deliveries": WebhookDelivery.objects.filter(connector=connector, status=DeliveryStatus.FAILED).count(),
        "queue_depth": queue_depth(),
        "budget": budget,
        "budget_fresh": bool(budget and budget.reset_at and budget.reset_at > timezone.now()),
        "counts": counts_last_day(connector),
        "latest_errors": errors,
        "synclog_url": reverse("admin:sync_synclog_changelist") + f"?connector__id__exact={connector.pk}",
        **features_dashboard(connector),  # alerts, event-name count, erase link
    }
