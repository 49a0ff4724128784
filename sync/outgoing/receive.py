"""Receiving a Hull notification: store it once, refresh segments, enqueue, decide flow control.

Persist before acknowledging (docs/conventions.md): a notification answered 200 is in the database.
Replays of the same `notification_id` hit the unique constraint and are stored once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from sync.outgoing.flow_control import flow_control_for, pending_depth
from sync.hull.messages import SUPPORTED_CHANNELS, NotificationError, notification_segments, validate_notification
from sync.outgoing.segments import hull_segments_refresh
from sync.ids import delivery_key
from sync.json_values import loads_json_body
from sync.models import Connector, DeliveryStatus, HullNotification
from sync.work import unit_enqueue

logger = logging.getLogger("sync.outgoing.receive")

SEGMENT_DELETE_CHANNELS = {"users_segment:delete": "user", "accounts_segment:delete": "account"}
SEGMENT_UPDATE_CHANNELS = {"users_segment:update": "user", "accounts_segment:update": "account"}


@dataclass
class NotificationReceipt:
    notification: HullNotification
    created: bool
    flow_control: dict[str, Any]


# What of Hull's envelope is kept: `configuration` is the credentials (only id and organization
# are kept); `connector`/`ship` carry the connector's settings and private_settings, where Hull
# keeps tokens (access_token, refresh_token, secret...): every key that names a credential is
# dropped, at any depth. The users' and accounts' own data (`messages` of user/account channels,
# segments) is never touched: traits and event properties reach Intercom unchanged.
_CONFIGURATION_KEPT = ("id", "organization")
_CREDENTIAL_KEY = re.compile(r"(?i)(secret|token|password|passwd|credential|api[_-]?key|private[_-]?key|auth)")
_ENVELOPE_KEEP_AS_IS = ("notification_id", "channel", "is_export", "messages", "segments", "accounts_segments", "account_segments", "users_segments")
_SETTINGS_CHANNELS = ("ship:update", "connector:update")


def _mask_credentials(value: Any) -> Any:
    if isinstance(value, Mapping):
        # Dropped rather than masked: the stored payload keeps no trace of a credential.
        return {k: _mask_credentials(v) for k, v in value.items() if not _CREDENTIAL_KEY.search(str(k))}
    if isinstance(value, list):
        return [_mask_credentials(v) for v in value]
    return value


def redact_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as stored: Hull's envelope without credentials (secrets are encrypted at rest,
    never in JSON columns), the users' own data untouched."""
    stored: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "configuration" and isinstance(value, Mapping):
            stored[key] = {k: value[k] for k in _CONFIGURATION_KEPT if k in value}
        elif key in _ENVELOPE_KEEP_AS_IS:
            stored[key] = value
        else:  # connector, ship, kraken, anything Hull adds to the envelope later
            stored[key] = _mask_credentials(value)
    if payload.get("channel") in _SETTINGS_CHANNELS and isinstance(stored.get("messages"), list):
        stored["messages"] = _mask_credentials(stored["messages"])  # ship objects, not people
    return stored


def _refresh_segments(connector: Connector, payload: Mapping[str, Any]) -> None:
    users, accounts = notification_segments(payload)
    channel = payload.get("channel")
    messages = payload.get("messages") or []
    if channel in SEGMENT_UPDATE_CHANNELS or channel in SEGMENT_DELETE_CHANNELS:
        kind = SEGMENT_UPDATE_CHANNELS.get(channel) or SEGMENT_DELETE_CHANNELS[channel]
        target = users if kind == "user" else accounts
        if channel in SEGMENT_DELETE_CHANNELS:
            hull_segments_refresh(
                connector=connector,
                user_segments=messages if kind == "user" else (),
                account_segments=messages if kind == "account" else (),
                deleted=True,
            )
        else:
            target = [*target, *messages]
        if kind == "user":
            users = target
        else:
            accounts = target
    elif not users and not accounts:
        # No top-level lists (minihull-style bodies): take what the messages carry.
        seen_users: dict[str, Any] = {}
        seen_accounts: dict[str, Any] = {}
        for message in messages:
            if isinstance(message, Mapping):
                for segment in message.get("segments") or message.get("users_segments") or []:
                    if isinstance(segment, Mapping):
                        seen_users[str(segment.get("id"))] = segment
                for segment in message.get("account_segments") or message.get("accounts_segments") or []:
                    if isinstance(segment, Mapping):
                        seen_accounts[str(segment.get("id"))] = segment
        users, accounts = list(seen_users.values()), list(seen_accounts.values())
    hull_segments_refresh(connector=connector, user_segments=users, account_segments=accounts)


def hull_notification_receive(
    *,
    connector: Connector,
    payload: Mapping[str, Any],
    raw_messages: bytes | None = None,
    message_count: int | None = None,
) -> NotificationReceipt:
    """Store (once), enqueue `sync.tasks.process_notification`, answer the flow control.

    `raw_messages`: the `messages` array as raw JSON, not parsed here (the worker does it, see
    `HullNotification.full_payload`); `payload` then holds the rest of the body.
    Raises `sync.hull.messages.NotificationError` for a body Hull would not send (the view's 400).
    """
    if raw_messages is not None:
        validate_notification({**payload, "messages": []})
    else:
        validate_notification(payload)
    channel = payload["channel"]
    supported = channel in SUPPORTED_CHANNELS
    if raw_messages is not None and not notification_segments(payload)[0] and not notification_segments(payload)[1]:
        # Minihull-style bodies carry their segments only in the messages: read them after all.
        try:
            # Checked for depth here: these messages are stored inside `payload`, encoded whole.
            payload = {**payload, "messages": loads_json_body(bytes(raw_messages))}
        except ValueError as exc:
            raise NotificationError(f"Malformed messages: {exc}") from exc
        raw_messages = None
    messages = payload.get("messages") or []
    count = message_count if raw_messages is not None and message_count is not None else len(messages)
    depth = pending_depth(connector)
    with transaction.atomic():
        notification, created = HullNotification.objects.get_or_create(
            connector=connector,
            notification_id=delivery_key(payload["notification_id"]),
            defaults={
                "channel": channel[:64],
                "is_export": bool(payload.get("is_export")),
                "payload": redact_payload(payload),
                "raw_messages": raw_messages,
                "message_count": count,
                "status": DeliveryStatus.PENDING if supported else DeliveryStatus.IGNORED,
            },
        )
        if created:
            _refresh_segments(connector, payload)
        if created and supported:
            unit_enqueue(notification)
    log_key = "hull.notification.stored" if created else "hull.notification.duplicate"
    if not supported:
        log_key = "hull.notification.unsupported-channel"
    logger.info(log_key, extra={"connector": connector.pk, "channel": channel, "messages": count})
    # The queue depth counted before this one: a notification is not back-pressure against itself.
    flow = flow_control_for(connector, depth=depth)
    return NotificationReceipt(notification=notification, created=created, flow_control=flow)
