"""Handing transformed contacts and companies to Hull, then recording what reached it.

Order matters for crash safety: the firehose batch is flushed first; only then, in one
transaction, are the IdentityLinks (with the `updated_at` ingested) and the SyncLog rows written.
A crash between the two re-sends the same records on retry (idempotent for Hull), never loses them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.db import transaction
from django.utils import timezone

from sync.incoming.context import IncomingContext
from sync.incoming.transforms import HullAccountUpdate, HullUserUpdate
from sync.models import Direction, IdentityLink, SyncLog, WebhookDelivery
from sync.synclog import log_outcome

logger = logging.getLogger(__name__)
outcome_logger = logging.getLogger("sync.outcome")  # the logger sync.synclog writes to

ENTITY_FOR_ROLE = {"user": "user", "lead": "lead"}


# Records per firehose call while fetching: a whole page of contacts (150, with their aliases and
# account links) goes in one call instead of two (1.35 calls per 100 contacts at 100 records).
INGEST_FLUSH_AT = 500


def open_firehose(connector: Any) -> Any:
    """A FirehoseBatch for the connector (flushes on exit, auto-flushes every INGEST_FLUSH_AT records).

    No idle-flush timer: every incoming unit flushes on exit, and the checkpoint must follow the
    flush, not a background thread (the timer also cost a thread start per record).
    """
    from sync.hull.client import HullClient
    from sync.hull.firehose import FirehoseBatch

    return FirehoseBatch(HullClient.for_connector(connector), flush_at=INGEST_FLUSH_AT, flush_after=None)


def send_user_update(batch: Any, update: HullUserUpdate) -> None:
    batch.traits(update.claims, update.traits)
    for anonymous_id in update.aliases:
        batch.alias(update.claims, anonymous_id)
    if update.account_link:
        batch.link_account(update.claims, update.account_link)


def send_account_update(batch: Any, update: HullAccountUpdate) -> None:
    batch.account_traits(update.claims, update.traits)


def unix_to_datetime(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=dt_timezone.utc) if value is not None else None


@dataclass
class IngestedEntity:
    """One entity that reached Hull, for its IdentityLink and SyncLog row."""

    entity: str  # user | lead | company
    intercom_id: str
    updated_at: int | None = None
    email: str = ""
    external_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_user(cls, update: HullUserUpdate, **data: Any) -> IngestedEntity:
        if update.not_enriched:
            # Written from the payload alone: say which lists Intercom could no longer give.
            data["not_enriched"] = list(update.not_enriched)
        return cls(update.role, update.intercom_id, update.updated_at, update.email, update.external_id, data)

    @classmethod
    def of_account(cls, update: HullAccountUpdate, **data: Any) -> IngestedEntity:
        return cls("company", update.intercom_id, update.updated_at, "", update.external_id, data)


def links_for(connector: Any, entity: str, intercom_ids: Iterable[str]) -> dict[str, IdentityLink]:
    ids = list(intercom_ids)
    if not ids:
        return {}
    rows = IdentityLink.objects.filter(connector=connector, entity=entity, intercom_id__in=ids)
    return {row.intercom_id: row for row in rows}


def record_ingested(
    ctx: IncomingContext,
    entities: Sequence[IngestedEntity],
    *,
    source: str,
    delivery: WebhookDelivery | None = None,
) -> None:
    """After Hull has the records: remember the `updated_at` ingested per entity, log one success each."""
    rows = []
    for item in entities:
        is_account = item.entity == "company"
        rows.append(
            SyncLog(
                connector=ctx.connector,
                direction=Direction.INCOMING,
                entity=SyncLog.EntityType.ACCOUNT if is_account else item.entity,
                status=SyncLog.Status.SUCCESS,
                action="incoming.account.success" if is_account else "incoming.user.success",
                intercom_id=item.intercom_id,
                email=item.email[:255],
                external_id=item.external_id[:255],
                data={"type": "Company" if is_account else item.entity.capitalize(), "source": source, **item.data},
                delivery=delivery,
            )
        )
    with transaction.atomic():
        _upsert_links(ctx, entities)
        log_outcomes(rows)


def log_outcomes(rows: Sequence[SyncLog]) -> None:
    """Adapter: `sync.synclog.log_outcome` for a whole page at once.

    A fetch page is 150 entities; one INSERT each made the SyncLog writes 60% of a fetch's time
    (bench/incoming.py). Same rows and log keys as `log_outcome`, in one `bulk_create`.
    """
    if len(rows) == 1:
        row = rows[0]
        log_outcome(
            row.connector, direction=row.direction, entity=row.entity, status=row.status, action=row.action,
            intercom_id=row.intercom_id, email=row.email, external_id=row.external_id, data=row.data, delivery=row.delivery,
        )
        return
    SyncLog.objects.bulk_create(rows, batch_size=500)
    for row in rows:
        outcome_logger.info(
            row.action, extra={"connector": row.connector_id, "reason": row.reason, "hull_id": row.hull_id,
                               "intercom_id": row.intercom_id, "status": row.status},
        )


def _upsert_links(ctx: IncomingContext, entities: Sequence[IngestedEntity]) -> None:
    by_entity: dict[str, dict[str, IngestedEntity]] = {}
    for item in entities:
        by_entity.setdefault(item.entity, {})[item.intercom_id] = item
    for entity, items in by_entity.items():
        existing = links_for(ctx.connector, entity, items)
        now = timezone.now()
        changed, created = [], []
        for intercom_id, item in items.items():
            ingested = unix_to_datetime(item.updated_at)
            link = existing.get(intercom_id)
            if link is None:
                created.append(
                    IdentityLink(
                        connector=ctx.connector,
                        entity=entity,
                        intercom_id=intercom_id,
                        email=item.email[:255],
                        external_id=item.external_id[:255],
                        last_ingested_updated_at=ingested,
                    )
                )
                continue
            link.email = item.email[:255] or link.email
            link.external_id = item.external_id[:255] or link.external_id
            if ingested and (link.last_ingested_updated_at is None or ingested > link.last_ingested_updated_at):
                link.last_ingested_updated_at = ingested
            link.updated_at = now  # bulk_update skips auto_now; fetch-all reads it ("ingested in this run")
            changed.append(link)
        if created:
            # A webhook may have created the same link meanwhile: the unique constraint keeps one row.
            IdentityLink.objects.bulk_create(created, ignore_conflicts=True)
        if changed:
            IdentityLink.objects.bulk_update(changed, ["email", "external_id", "last_ingested_updated_at", "updated_at"])


def incoming_action(entity: str, outcome: str) -> str:
    """Hull's message name for an incoming outcome: users and leads log as `incoming.user.*`."""
    kind = entity if entity in ("account", "event") else "user"
    return f"incoming.{kind}.{outcome}"


def _log_incoming(
    ctx: IncomingContext,
    *,
    status: str,
    entity: str,
    reason: str,
    message: str,
    intercom_id: str = "",
    data: Mapping[str, Any] | None = None,
    delivery: WebhookDelivery | None = None,
) -> None:
    log_outcome(
        ctx.connector,
        direction=Direction.INCOMING,
        entity=entity,
        status=status,
        action=incoming_action(entity, status),
        reason=reason,
        message=message,
        intercom_id=intercom_id,
        data=dict(data or {}),
        delivery=delivery,
    )


def log_incoming_skip(ctx: IncomingContext, **fields: Any) -> None:
    """A skipped incoming entity, with its reason."""
    _log_incoming(ctx, status=SyncLog.Status.SKIPPED, **fields)


def log_incoming_error(ctx: IncomingContext, **fields: Any) -> None:
    """An incoming entity that failed, with the remote system's message."""
    _log_incoming(ctx, status=SyncLog.Status.ERROR, **fields)
