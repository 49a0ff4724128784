"""Batch exports (`/batch`, `/batch-accounts`, docs/hull-protocol.md#exports).

Hull posts `{url, format, object_type}`; we answer at once, then a task streams the file (bounded
memory, size limit) and hands its lines, 100 at a time, to the outgoing sync as export messages
(`is_export=True`: segment filters bypassed, "send batch as" applies).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction

from sync.hull.client import HullApiError, stream_export_lines
from sync.hull.messages import NotificationError, export_line_message, notification_segments
from sync.outgoing.segments import hull_segments_refresh, segments_by_id
from sync.models import Connector, DeliveryStatus, HullNotification, HullSegment
from sync.work import lease_take, unit_enqueue

logger = logging.getLogger("sync.outgoing.exports")

EXPORT_CHUNK_MESSAGES = 100  # messages per outgoing_messages_sync call (Hull's maxSize default)
MAX_EXPORT_BYTES = settings.HULL_MAX_EXPORT_BYTES
OBJECT_TYPES = {"user_report": "user", "account_report": "account"}
CHANNEL_FOR = {"user": "user:update", "account": "account:update"}


def validate_export_request(body: Any, *, default_object_type: str) -> dict[str, Any]:
    """The export request's fields, checked; raises NotificationError (the view's 400)."""
    if not isinstance(body, Mapping):
        raise NotificationError("The body must be a JSON object.")
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise NotificationError("`url` must be an http(s) URL of the export file.")
    export_format = body.get("format") or "json"
    if export_format != "json":
        raise NotificationError(f"Unsupported export format {export_format!r}: only json is accepted.")
    object_type = body.get("object_type") or default_object_type
    if object_type not in OBJECT_TYPES:
        raise NotificationError(f"Unknown object_type {object_type!r}.")
    return {"url": url, "format": export_format, "object_type": object_type}


def hull_export_receive(
    *, connector: Connector, body: Mapping[str, Any], segment_id: str = "", default_object_type: str = "user_report"
) -> tuple[HullNotification, bool]:
    """Store the export request once (keyed by its URL) and enqueue `sync.tasks.process_export`."""
    request = validate_export_request(body, default_object_type=default_object_type)
    entity = OBJECT_TYPES[request["object_type"]]
    users, accounts = notification_segments(body)
    payload = {**request, "segment_id": segment_id or "", "entity": entity}
    key = "export:" + hashlib.sha256(f"{request['url']}|{segment_id}".encode()).hexdigest()[:40]
    with transaction.atomic():
        notification, created = HullNotification.objects.get_or_create(
            connector=connector,
            notification_id=key,
            defaults={"channel": CHANNEL_FOR[entity], "is_export": True, "payload": payload},
        )
        if created:
            hull_segments_refresh(connector=connector, user_segments=users, account_segments=accounts)
            unit_enqueue(notification)
    logger.info(
        "hull.export.stored" if created else "hull.export.duplicate",
        extra={"connector": connector.pk, "entity": entity, "notification": notification.pk},
    )
    return notification, created


def export_download_limits(connector: Connector) -> dict[str, Any]:
    """Where and how long an export download may go (docs/security.md "Export downloads"): the
    deployment's HULL_EXPORT_HOSTS, deadline and line limit; in the demo (sandbox on), the
    connector's own Hull sandbox files, which are on this very host."""
    from sync.hull.client import SANDBOX_FIREHOSE_SUFFIX

    trusted = ""
    firehose = (connector.hull_firehose_url or "").rstrip("/")
    if settings.SANDBOX_ENABLED and firehose.endswith(SANDBOX_FIREHOSE_SUFFIX):
        trusted = firehose[: -len("/firehose")] + "/api/v1/_exports/"
    return {
        "allowed_hosts": settings.HULL_EXPORT_HOSTS or None,
        "deadline_seconds": settings.HULL_EXPORT_DEADLINE_SECONDS,
        "max_line_bytes": settings.HULL_EXPORT_MAX_LINE_BYTES,
        "trusted_prefix": trusted,
    }


def _sync_chunk(connector: Connector, messages: list[Any], notification: HullNotification) -> None:
    # Written in parallel by the outgoing work; imported here so this module loads without it.
    from sync.outgoing.notifications import outgoing_messages_sync

    outgoing_messages_sync(connector=connector, messages=messages, notification=notification)


def export_process(*, notification: HullNotification, max_bytes: int | None = None) -> int:
    """Stream the export file and sync it chunk by chunk; returns the number of messages handed on.

    Each finished chunk's index is saved in `processed_messages`, so a resume (after a rate-limit
    halt, a lost answer, the database going away, a killed worker) streams the file again but syncs
    only the chunks not finished; a replay clears them and syncs everything again.
    """
    # Imported here: the outgoing sync imports the Hull side, not the other way round.


    run = lease_take(notification)
    if run is None:
        return 0  # final already (a late duplicate), owned by a live try, or the connector is on hold
    with run.guard():
        return _export_try(run, notification, max_bytes)


def _export_try(run: Any, notification: HullNotification, max_bytes: int | None) -> int:

    connector = notification.connector
    payload = notification.payload or {}
    entity = payload.get("entity") or OBJECT_TYPES.get(payload.get("object_type", ""), "user")
    kind = HullSegment.Kind.USER if entity == "user" else HullSegment.Kind.ACCOUNT
    known = segments_by_id(connector, kind)
    segment_id = payload.get("segment_id") or ""
    done_chunks = set(notification.processed_messages or [])
    total = 0
    bad_lines = 0
    chunk: list[Any] = []

    def sync_chunk() -> None:
        nonlocal total, chunk
        index = total // EXPORT_CHUNK_MESSAGES
        if index not in done_chunks:
            _sync_chunk(connector, chunk, notification)
            done_chunks.add(index)
            notification.processed_messages = sorted(done_chunks)
            HullNotification.objects.filter(pk=notification.pk).update(processed_messages=notification.processed_messages)
            run.heartbeat()
        total += len(chunk)
        chunk = []

    try:
        for raw in stream_export_lines(payload["url"], max_bytes=max_bytes or MAX_EXPORT_BYTES, **export_download_limits(connector)):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                bad_lines += 1
                continue
            if not isinstance(line, dict):
                bad_lines += 1
                continue
            if segment_id and segment_id not in (line.get("segment_ids") or []):
                # The dashboard pushed one segment: Hull's framework adds it to every line.
                line = {**line, "segment_ids": [*(line.get("segment_ids") or []), segment_id]}
            chunk.append(export_line_message(line, object_type=entity, segments_by_id=known))
            if len(chunk) >= EXPORT_CHUNK_MESSAGES:
                sync_chunk()
        if chunk:
            sync_chunk()
    except HullApiError as exc:
        run.finish(DeliveryStatus.FAILED, str(exc), extra={"message_count": total})
        logger.warning("hull.export.failed", extra={"connector": connector.pk, "messages": total, "error": type(exc).__name__})
        return total
    except Exception as exc:  # noqa: BLE001 - halts wait, anything else ends the export failed (never processing forever)
        run.wait_or_fail(exc)
        return total
    error = f"{bad_lines} malformed line(s) skipped" if bad_lines else ""
    run.finish(DeliveryStatus.DONE, error, extra={"message_count": total})
    logger.info("hull.export.done", extra={"connector": connector.pk, "messages": total, "bad_lines": bad_lines})
    return total
