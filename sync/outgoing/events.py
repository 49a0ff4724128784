"""Hull user events -> Intercom data events (docs/intercom-behaviour.md#outgoing-events, docs/decisions.md#attributes-and-events).

Sent after the contact is known to Intercom, addressed by the contact's Intercom `id` (leads can
only be addressed that way). Fixes over Hull's connector: `created_at` falls back to the Hull
event's own time (Intercom requires it), metadata is trimmed to Intercom's limits (10 keys, string
values per the 2.15 contract) with the trim logged, and every event ends in a
SyncLog row (Hull's failures were invisible). Intercom ignores an event with the same contact,
name and `created_at` (docs/intercom-api.md#data-events), so a replay does not duplicate events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.intercom.errors import IntercomApiError
from sync.mapping import to_unix_seconds
from sync.models import SyncLog
from sync.outgoing.context import OutgoingContext
from sync.outgoing.event_names import event_name_sent, event_name_skip
from sync.outgoing.routing import SKIP_MESSAGES, SkipReason, event_whitelisted
from sync.work import reraise_halt

METADATA_MAX_KEYS = 10  # Intercom silently drops keys past the tenth; we choose and log instead
EVENT_NAME_LIMIT = 255


@dataclass
class EventPayload:
    body: dict[str, Any]
    trimmed: list[str] = field(default_factory=list)  # metadata keys dropped or re-encoded


def event_created_at(event: Mapping[str, Any]) -> int | None:
    """`properties.created` when present (Hull's rule), else the Hull event's own `created_at`."""
    properties = event.get("properties") or {}
    for candidate in (properties.get("created"), event.get("created_at")):
        seconds = to_unix_seconds(candidate)
        if seconds is not None:
            return seconds
    return None


def _metadata_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), default=str)
    if isinstance(value, Mapping):
        # Nested arrays stringified first (Hull's shape), then the object as JSON text.
        inner = {k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in value.items()}
        return json.dumps(inner, default=str, sort_keys=True)
    return str(value)


def event_metadata(properties: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Intercom metadata from Hull properties, and the names of the keys trimmed or re-encoded.

    Intercom's 2.15 contract types every metadata value as a string (`additionalProperties:
    {type: string}`), so numbers and booleans are sent as text and objects as JSON text; at most
    10 keys are kept (Intercom would silently drop the rest: we choose, and log, which).
    """
    metadata: dict[str, str] = {}
    trimmed: list[str] = []
    for key, value in (properties or {}).items():
        if value is None:
            continue
        if len(metadata) >= METADATA_MAX_KEYS:
            trimmed.append(str(key))
            continue
        if isinstance(value, Mapping):
            trimmed.append(str(key))  # re-encoded: Intercom keeps no nested objects
        metadata[str(key)] = _metadata_text(value)
    return metadata, trimmed


def build_event_payload(event: Mapping[str, Any], *, contact_id: str) -> EventPayload:
    metadata, trimmed = event_metadata(event.get("properties") or {})
    body: dict[str, Any] = {"event_name": str(event.get("event", ""))[:EVENT_NAME_LIMIT], "id": contact_id}
    created_at = event_created_at(event)
    # Intercom requires created_at; Hull events always carry one, so "now" is a last resort.
    body["created_at"] = created_at if created_at is not None else int(time.time())
    if metadata:
        body["metadata"] = metadata
    return EventPayload(body=body, trimmed=trimmed)


def _skip_reason(ctx: OutgoingContext, event: Mapping[str, Any]) -> str:
    if not ctx.connector.send_events or not ctx.connector.outgoing_events:
        return SkipReason.EVENTS_OFF
    if event.get("event_source") == "intercom":
        return SkipReason.EVENT_FROM_INTERCOM  # never echo Intercom's own events back
    if not event_whitelisted(ctx.connector, str(event.get("event", ""))):
        return SkipReason.EVENT_NOT_WHITELISTED
    return ""


def events_send(
    ctx: OutgoingContext, *, message: Any, contact_id: str | None, hull_id: str, email: str = "", external_id: str = ""
) -> list[SyncLog]:
    """Send the message's whitelisted events; one SyncLog row per event. Returns the rows."""
    rows = []
    for event in message.events or []:
        if not isinstance(event, Mapping):
            continue
        name = str(event.get("event", ""))
        data = {"event": name, "event_id": event.get("event_id"), "event_source": event.get("event_source")}
        common = {"hull_id": hull_id, "email": email, "external_id": external_id}
        reason = _skip_reason(ctx, event)
        if reason:
            rows.append(ctx.log("event", SyncLog.Status.SKIPPED, reason=reason, message=SKIP_MESSAGES[reason], data=data, **common))
            continue
        if not contact_id:
            rows.append(
                ctx.log(
                    "event",
                    SyncLog.Status.SKIPPED,
                    reason=SkipReason.CONTACT_NOT_SYNCED,
                    message="The contact could not be synced to Intercom, so its event was not sent",
                    data=data,
                    **common,
                )
            )
            continue
        payload = build_event_payload(event, contact_id=contact_id)
        limited = event_name_skip(ctx, payload.body["event_name"])
        if limited:  # a new name past Intercom's event-name limit (event_names.py)
            rows.append(ctx.log("event", SyncLog.Status.SKIPPED, reason=limited.reason, message=limited.message, data=data, **common))
            continue
        data["payload"] = payload.body
        if payload.trimmed:
            data["trimmed_metadata"] = payload.trimmed
        try:
            ctx.intercom.create_event(payload.body)
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            rows.append(
                ctx.log("event", SyncLog.Status.ERROR, reason=SyncLog.Reason.INTERCOM_ERROR, message=exc.message, intercom_id=contact_id, data=data, **common)
            )
            continue
        event_name_sent(ctx, payload.body["event_name"])
        message_text = f"Metadata trimmed to Intercom's limits: {', '.join(payload.trimmed)}" if payload.trimmed else ""
        rows.append(ctx.log("event", SyncLog.Status.SUCCESS, message=message_text, intercom_id=contact_id, data=data, **common))
    return rows
