"""Hull notifications, parsed and normalised into the values the outgoing sync works on.

Hull sends user reports with the platform's `traits_` prefixes, two spellings of the segment
lists, two date formats, and sometimes several messages for one entity in one notification
(docs/hull-protocol.md#notifications, #user-and-account-attributes). Everything downstream sees one shape: the framework's
(prefix trimmed, `segments`/`account_segments`, one message per entity with all its events).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sync.json_values import gc_paused

TRAITS_PREFIX = "traits_"

USER_CHANNEL = "user:update"
ACCOUNT_CHANNEL = "account:update"
SHIP_CHANNEL = "ship:update"
USER_DELETE_CHANNEL = "user:delete"  # the removal policy (sync/outgoing/deletion.py)
SEGMENT_CHANNELS = ("users_segment:update", "users_segment:delete", "accounts_segment:update", "accounts_segment:delete")
ENTITY_CHANNELS = (USER_CHANNEL, ACCOUNT_CHANNEL)
SUPPORTED_CHANNELS = (USER_CHANNEL, ACCOUNT_CHANNEL, SHIP_CHANNEL, *SEGMENT_CHANNELS, USER_DELETE_CHANNEL)

# Events are captured as "2018-03-30 14:38:02 UTC", attributes as ISO-8601 (docs/hull-protocol.md#user-update-messages).
_HULL_EVENT_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*UTC$")


class NotificationError(ValueError):
    """The notification body is not something Hull would send (missing or mistyped fields)."""


# --- values ------------------------------------------------------------------------------------


def _ids(segments: list[dict[str, Any]]) -> list[str]:
    return [str(s["id"]) for s in segments if isinstance(s, Mapping) and s.get("id")]


@dataclass
class UserMessage:
    """One `user:update` message (or one line of a user export), normalised."""

    user: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    account: dict[str, Any] = field(default_factory=dict)
    account_segments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    message_id: str = ""
    is_export: bool = False

    @property
    def segment_ids(self) -> list[str]:
        return _ids(self.segments)

    @property
    def account_segment_ids(self) -> list[str]:
        return _ids(self.account_segments)

    @property
    def hull_id(self) -> str:
        return str(self.user.get("id") or "")

    @property
    def indexed_at(self) -> datetime | None:
        return parse_hull_datetime(self.user.get("indexed_at"))


@dataclass
class AccountMessage:
    """One `account:update` message (or one line of an account export), normalised."""

    account: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    account_segments: list[dict[str, Any]] = field(default_factory=list)
    message_id: str = ""
    is_export: bool = False

    @property
    def account_segment_ids(self) -> list[str]:
        return _ids(self.account_segments)

    @property
    def hull_id(self) -> str:
        return str(self.account.get("id") or "")

    @property
    def indexed_at(self) -> datetime | None:
        return parse_hull_datetime(self.account.get("indexed_at"))


HullMessage = UserMessage | AccountMessage


@dataclass
class ParsedNotification:
    """A whole notification: entity channels carry dataclasses, the others their raw messages."""

    channel: str
    notification_id: str
    messages: list[Any]
    segments: list[dict[str, Any]] = field(default_factory=list)
    connector_config: dict[str, Any] = field(default_factory=dict)
    account_segments: list[dict[str, Any]] = field(default_factory=list)
    is_export: bool = False
    connector: dict[str, Any] = field(default_factory=dict)

    @property
    def is_supported(self) -> bool:
        return self.channel in SUPPORTED_CHANNELS


# --- small normalisers -------------------------------------------------------------------------


def strip_traits_prefix(name: str) -> str:
    """`traits_coconuts` -> `coconuts`; used for user keys, change keys and mapping settings.

    Only one prefix goes, as in Hull's framework: real data has `traits_traits_outreach/title`.
    """
    return name[len(TRAITS_PREFIX) :] if name.startswith(TRAITS_PREFIX) else name


def trim_traits_keys(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Strip `traits_` from every key. On a collision (`traits_email` vs `email`) the top-level,
    unprefixed attribute wins: it is the platform's identity field, the prefixed one a custom trait."""
    trimmed: dict[str, Any] = {}
    for key, value in attributes.items():
        if key.startswith(TRAITS_PREFIX):
            short = key[len(TRAITS_PREFIX) :]
            if short in attributes:
                continue
            trimmed[short] = value
        else:
            trimmed[key] = value
    return trimmed


def parse_hull_datetime(value: Any) -> datetime | None:
    """ISO-8601 (`Z` or offset), Hull's event format `YYYY-MM-DD HH:MM:SS UTC`, or unix seconds/ms."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds are common in JS payloads
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (ValueError, OverflowError, OSError):  # out of datetime's range: not a date we can use
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _HULL_EVENT_DATE.match(text) if text.endswith("UTC") else None
    if match:
        text = f"{match.group(1)}T{match.group(2)}+00:00"
    elif text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def iso_datetime(value: Any) -> str | None:
    """The ISO-8601 UTC form (`...Z`) of any date Hull sends, or None when it is not a date."""
    parsed = parse_hull_datetime(value)
    if parsed is None:
        return None
    return parsed.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _first_list(raw: Mapping[str, Any], *names: str) -> list[Any]:
    for name in names:
        value = raw.get(name)
        if isinstance(value, list):
            return value
    return []


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def normalise_event(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An event with `created_at` in ISO-8601 whatever format Hull used (the raw one is kept)."""
    event = dict(raw)
    created = event.get("created_at")
    iso = iso_datetime(created)
    if iso is not None and iso != created:
        event["created_at_raw"] = created
        event["created_at"] = iso
    return event


def _normalise_changes(raw: Any, *, trim_user: bool) -> dict[str, Any]:
    changes = _dict(raw)
    if trim_user and isinstance(changes.get("user"), Mapping):
        changes["user"] = trim_traits_keys(changes["user"])
    for name in ("segments", "account_segments"):
        if name in changes and not isinstance(changes[name], Mapping):
            changes[name] = {}
    if "accounts_segments" in changes and "account_segments" not in changes:
        changes["account_segments"] = _dict(changes.pop("accounts_segments"))
    return changes


def normalise_user_message(raw: Mapping[str, Any], *, is_export: bool = False) -> UserMessage:
    """A raw `user:update` message -> UserMessage (prefix trimmed, spellings unified, dates parsed)."""
    if not isinstance(raw, Mapping):
        raise NotificationError("A user:update message must be an object.")
    user = raw.get("user")
    if not isinstance(user, Mapping):
        raise NotificationError("A user:update message needs a `user` object.")
    events = [normalise_event(e) for e in _first_list(raw, "events") if isinstance(e, Mapping)]
    return UserMessage(
        user=trim_traits_keys(user),
        changes=_normalise_changes(raw.get("changes"), trim_user=True),
        segments=_first_list(raw, "segments", "users_segments", "user_segments"),
        account=_dict(raw.get("account")),
        account_segments=_first_list(raw, "account_segments", "accounts_segments"),
        events=events,
        message_id=str(raw.get("message_id") or ""),
        is_export=bool(is_export or raw.get("is_export")),
    )


def normalise_account_message(raw: Mapping[str, Any], *, is_export: bool = False) -> AccountMessage:
    """A raw `account:update` message -> AccountMessage (accounts are never `traits_`-prefixed)."""
    if not isinstance(raw, Mapping):
        raise NotificationError("An account:update message must be an object.")
    account = raw.get("account")
    if not isinstance(account, Mapping):
        raise NotificationError("An account:update message needs an `account` object.")
    return AccountMessage(
        account=dict(account),
        changes=_normalise_changes(raw.get("changes"), trim_user=False),
        account_segments=_first_list(raw, "account_segments", "accounts_segments"),
        message_id=str(raw.get("message_id") or ""),
        is_export=bool(is_export or raw.get("is_export")),
    )


# --- dedupe ------------------------------------------------------------------------------------


def _entity_key(message: HullMessage) -> str:
    entity = message.user if isinstance(message, UserMessage) else message.account
    for claim in ("id", "external_id", "email", "domain"):
        if entity.get(claim):
            return f"{claim}:{entity[claim]}"
    return f"message:{message.message_id or id(message)}"


def _merge_changes(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """Attribute diffs keep the first old value and the last new one; segment moves are unioned."""
    merged = dict(newer)
    for part in ("user", "account"):
        before, after = older.get(part) or {}, newer.get(part) or {}
        if not before:
            continue
        combined = dict(before)
        for key, diff in after.items():
            if key in before and isinstance(before[key], list) and isinstance(diff, list) and len(diff) == 2:
                combined[key] = [before[key][0], diff[1]]
            else:
                combined[key] = diff
        merged[part] = combined
    for part in ("segments", "account_segments"):
        before, after = older.get(part) or {}, newer.get(part) or {}
        if not before:
            continue
        combined = {}
        for move in ("entered", "left"):
            seen: dict[str, Any] = {}
            for segment in [*(before.get(move) or []), *(after.get(move) or [])]:
                if isinstance(segment, Mapping):
                    seen[str(segment.get("id"))] = segment
            if seen:
                combined[move] = list(seen.values())
        merged[part] = combined
    if older.get("is_new"):
        merged["is_new"] = True
    return merged


def dedupe_messages(messages: Iterable[HullMessage]) -> list[HullMessage]:
    """One message per entity: the one with the latest `indexed_at`, carrying every message's events.

    Hull can put several messages for one user in one notification (docs/hull-protocol.md#user-update-messages); each event is
    delivered only once, so dropping the older message's events would lose them.
    """
    kept: dict[str, HullMessage] = {}
    for message in messages:
        key = _entity_key(message)
        current = kept.get(key)
        if current is None:
            kept[key] = message
            continue
        older, newer = current, message
        current_at, message_at = current.indexed_at, message.indexed_at
        if current_at is not None and (message_at is None or message_at < current_at):
            older, newer = message, current
        newer.changes = _merge_changes(older.changes, newer.changes)
        if isinstance(newer, UserMessage) and isinstance(older, UserMessage):
            events: dict[str, dict[str, Any]] = {}
            for event in [*older.events, *newer.events]:
                events[str(event.get("event_id") or id(event))] = event
            newer.events = sorted(events.values(), key=lambda e: str(e.get("created_at") or ""))
        newer.is_export = newer.is_export or older.is_export
        kept[key] = newer
    return list(kept.values())


# --- whole notifications -----------------------------------------------------------------------


def notification_segments(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The org's user and account segments, whichever spelling Hull (or minihull) used."""
    users = _first_list(payload, "segments", "users_segments", "user_segments")
    accounts = _first_list(payload, "accounts_segments", "account_segments")
    return [s for s in users if isinstance(s, dict)], [s for s in accounts if isinstance(s, dict)]


def validate_notification(payload: Any) -> None:
    """The fields the endpoint requires before it stores anything; raises NotificationError."""
    if not isinstance(payload, Mapping):
        raise NotificationError("The notification must be a JSON object.")
    missing = [name for name in ("notification_id", "channel") if not payload.get(name)]
    if missing:
        raise NotificationError(f"Missing field(s): {', '.join(missing)}.")
    if not isinstance(payload["channel"], str) or not isinstance(payload["notification_id"], (str, int)):
        raise NotificationError("`channel` and `notification_id` must be strings.")
    if "messages" in payload and not isinstance(payload["messages"], list):
        raise NotificationError("`messages` must be a list.")
    if "configuration" in payload and not isinstance(payload["configuration"], Mapping):
        raise NotificationError("`configuration` must be an object.")


def parse_notification(payload: Mapping[str, Any]) -> ParsedNotification:
    """A notification body -> ParsedNotification (messages normalised, not yet deduped)."""
    validate_notification(payload)
    channel = payload["channel"]
    is_export = bool(payload.get("is_export"))
    raw_messages = payload.get("messages") or []
    messages: list[Any]
    if channel == USER_CHANNEL:
        with gc_paused():  # 10,000 messages: the collector's scans doubled the time
            messages = [normalise_user_message(m, is_export=is_export) for m in raw_messages]
    elif channel == ACCOUNT_CHANNEL:
        with gc_paused():
            messages = [normalise_account_message(m, is_export=is_export) for m in raw_messages]
    else:
        # ship:update and the segment channels: Hull's own framework hands these over untouched.
        messages = list(raw_messages)
    users, accounts = notification_segments(payload)
    return ParsedNotification(
        channel=channel,
        notification_id=str(payload["notification_id"]),
        messages=messages,
        segments=users,
        connector_config=_dict(payload.get("configuration")),
        account_segments=accounts,
        is_export=is_export,
        connector=_dict(payload.get("connector")),
    )


def export_line_message(line: Mapping[str, Any], *, object_type: str, segments_by_id: Mapping[str, dict[str, Any]]) -> HullMessage:
    """One line of an export file (a bare report, docs/hull-protocol.md#exports) -> an export message (`is_export=True`)."""
    ids = line.get("segment_ids") or line.get("segments_id") or []  # minihull spells it segments_id
    segments = [segments_by_id.get(str(i)) or {"id": str(i)} for i in ids if i]
    if object_type == "account":
        account = {k: v for k, v in line.items() if k not in ("segment_ids", "segments_id")}
        return AccountMessage(account=account, account_segments=segments, is_export=True)
    user = {k: v for k, v in line.items() if k not in ("account", "segment_ids", "segments_id")}
    return UserMessage(
        user=trim_traits_keys(user),
        segments=segments,
        account=_dict(line.get("account")),
        is_export=True,
        message_id=str(line.get("id") or ""),
    )
