"""Which Intercom entity a Hull message goes to, or why it goes nowhere.

The decision order is Hull's `toSendMessage` (docs/intercom-behaviour.md#outgoing-routing) with
docs/decisions.md#routing's fixes and docs/hull-protocol.md#loop-avoidance's guard:

0. connector not configured (no Intercom token) -> skip;
1. deleted in Intercom with "ignore deleted" on -> skip (a deleted lead is caught too: docs/intercom-behaviour.md#guidance item 7);
2. exports/batches: "Send batch as" decides (filters bypassed);
3. segment filters, by segment id, `ALL`/`all_segments` matching everyone; a user in the lead
   filter goes as a lead even when also in the user filter; an empty filter sends nobody;
4. triggers: entered a synchronized segment, a whitelisted event, an account linked (when
   "link users in Intercom" is on);
5. no outgoing attributes mapped -> skip;
6. never synced (no Intercom id on the profile and no IdentityLink) -> send;
7. a mapped attribute changed -> send. Changes to the connector's own groups (`intercom_user/`,
   `intercom_lead/`, `intercom/`) never count, even when mapped: they are our own write-back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync.defaults import ACCOUNT_GROUP, LEAD_GROUP, OWN_GROUPS, USER_GROUP
from sync.mapping import outgoing_hull_attributes
from sync.models import Connector, Entity, IdentityLink, SyncLog
from sync.identity import OWN_ANONYMOUS_PREFIXES

ALL_SEGMENTS = frozenset({"ALL", "all_segments"})
ALL_EVENTS = "all_events"

USER, LEAD, COMPANY, SKIP = "user", "lead", "company", "skip"


# The outgoing skip reasons: members of the one enum of reasons, `SyncLog.Reason` (both directions).
SkipReason = SyncLog.Reason


# Hull's own skip texts (docs/intercom-behaviour.md#outgoing-routing), so support finds the familiar wording in the logs.
# Keyed by the reasons' str values: callers look reasons up as plain strings.
SKIP_MESSAGES: dict[str, str] = {
    SkipReason.NOT_CONFIGURED: "Connector is not configured: connect it to Intercom first",
    SkipReason.NOT_IN_SEGMENT: (
        "{Entity} is not present in any of the defined segments to send to service.  Please either add a new "
        "synchronized segment which the {entity} is present in the settings page, or add the {entity} to an "
        "existing synchronized segment"
    ),
    SkipReason.DELETED: "{Entity} has been deleted",
    SkipReason.NO_BATCH_TYPE: "Please set batch type in your connector settings",
    SkipReason.NO_OUTGOING_ATTRIBUTES: (
        "There are no outgoing attributes to synchronize for {entity}s.  Please go to the settings page and add "
        "outgoing {entity} attributes to synchronize"
    ),
    SkipReason.NO_CHANGES: "No changes on any of the attributes for this {entity}.",
    SkipReason.NO_MAPPED_CHANGES: (
        "No changes on any of the synchronized attributes for this {entity}.  If you think this is a mistake, "
        "please check the settings page for the synchronized {entity} attributes to ensure that the attribute "
        "which changed is in the synchronized outgoing attributes"
    ),
    SkipReason.OWN_CHANGES_ONLY: "Only attributes written by this connector changed (no echo back to Intercom)",
    SkipReason.IDENTICAL_PAYLOAD: "Identical to the last payload sent to Intercom",
    SkipReason.EVENTS_OFF: "Send Events is off or the Hull events whitelist is empty: no event goes to Intercom",
    SkipReason.EVENT_NOT_WHITELISTED: "The event is not in the Hull events whitelist (Events section of the settings)",
    SkipReason.EVENT_FROM_INTERCOM: "The event came from Intercom: sending it back would make a loop",
}


def skip_message(reason: str, entity: str) -> str:
    label = "account" if entity in (COMPANY, "account") else "user"
    return SKIP_MESSAGES.get(reason, reason).format(entity=label, Entity=label.capitalize())


@dataclass(frozen=True)
class Decision:
    """Where one message goes: `target` is user, lead, company or skip; `reason` says why."""

    target: str
    reason: str = ""
    trigger: str = ""  # what made it send (entered_segment, event, account_linked, never_synced, changed, export)
    entity: str = USER  # user or account: which skip texts apply

    @property
    def skipped(self) -> bool:
        return self.target == SKIP

    @property
    def message(self) -> str:
        return skip_message(self.reason, self.entity) if self.reason else ""


def _skip(reason: str, entity: str = USER) -> Decision:
    return Decision(SKIP, reason, entity=entity)


# --- helpers -------------------------------------------------------------------------------------


def segment_ids(segments: Iterable[Any]) -> set[str]:
    """Ids of a message's segment list (objects or bare ids)."""
    ids: set[str] = set()
    for segment in segments or ():
        if isinstance(segment, Mapping):
            if segment.get("id"):
                ids.add(str(segment["id"]))
        elif segment:
            ids.add(str(segment))
    return ids


def matches_filter(filter_ids: Iterable[str] | None, ids: set[str]) -> bool:
    """Segment whitelist: by id, `ALL` matches everyone, an empty filter nobody."""
    wanted = {str(s) for s in filter_ids or ()}
    if wanted & ALL_SEGMENTS:
        return True
    return bool(wanted & ids)


def event_whitelisted(connector: Connector, name: str) -> bool:
    whitelist = connector.outgoing_events or []
    return ALL_EVENTS in whitelist or name in whitelist


_INDEX_SUFFIX = re.compile(r"\[\d+\]$")




def _own_alias(key: str, diff: Any) -> bool:
    """An anonymous id we added ourselves (the write-back's claims) is our own change too."""
    if _INDEX_SUFFIX.sub("", key) != "anonymous_ids" or not isinstance(diff, (list, tuple)) or len(diff) != 2:
        return False
    return isinstance(diff[1], str) and diff[1].startswith(OWN_ANONYMOUS_PREFIXES)


def changed_keys(changes: Mapping[str, Any] | None, *, account_prefix: bool) -> set[str]:
    """Attribute names that changed: `changes.user` keys, or `account.<key>` for account changes.

    Our own anonymous ids appearing on the profile are left out: they come from our write-back.
    """
    changes = changes or {}
    keys: set[str] = set()
    for key, diff in (changes.get("user") or {}).items() if not account_prefix else ():
        if not _own_alias(key, diff):
            keys.add(_INDEX_SUFFIX.sub("", key))
    for key in changes.get("account") or {}:
        keys.add(("account." if account_prefix else "") + _INDEX_SUFFIX.sub("", key))
    return keys


def is_own_attribute(key: str) -> bool:
    bare = key[len("account.") :] if key.startswith("account.") else key
    return bare.startswith(OWN_GROUPS)


def _is_deleted(profile: Mapping[str, Any], groups: Iterable[str]) -> bool:
    return any(profile.get(f"{group}/deleted_at") not in (None, "") for group in groups)


def _has_intercom_id(connector: Connector, entity: str, hull_id: str, profile: Mapping[str, Any], group: str) -> bool:
    if profile.get(f"{group}/id") or profile.get(f"{ACCOUNT_GROUP}/id"):
        return True
    if not hull_id:
        return False
    # A link whose payload hash is still empty was pushed but its write-back never reached Hull
    # (halt, Hull down): not synced yet, so the retry pushes it and writes the ids back.
    return (
        IdentityLink.objects.filter(connector=connector, entity=entity, hull_id=hull_id).exclude(last_payload_hash="").exists()
    )


# --- user messages -------------------------------------------------------------------------------


def message_field(message: Any, name: str, default: Any = None) -> Any:
    if isinstance(message, Mapping):
        return message.get(name, default)
    return getattr(message, name, default)


def route_message(connector: Connector, message: Any) -> Decision:
    """Route a user or account message (sync.hull.messages dataclasses, or their dict shape)."""
    if message_field(message, "user") is None and message_field(message, "account") is not None:
        return route_account_message(connector, message)
    return route_user_message(connector, message)


def route_user_message(connector: Connector, message: Any) -> Decision:
    if not connector.is_intercom_connected:
        return _skip(SkipReason.NOT_CONFIGURED)
    user: Mapping[str, Any] = message_field(message, "user") or {}
    changes: Mapping[str, Any] = message_field(message, "changes") or {}
    events = message_field(message, "events") or []
    ids = segment_ids(message_field(message, "segments") or [])

    if message_field(message, "is_export", False):
        target = LEAD if connector.send_batch_as == connector.SendBatchAs.LEADS else USER
        if not connector.send_batch_as:
            return _skip(SkipReason.NO_BATCH_TYPE)
        if connector.ignore_deleted_users and _is_deleted(user, (ACCOUNT_GROUP, _group(target))):
            return _skip(SkipReason.DELETED)
        return Decision(target, trigger="export")

    if matches_filter(connector.synchronized_lead_segments, ids):
        target, filter_ids = LEAD, connector.synchronized_lead_segments
    elif matches_filter(connector.synchronized_user_segments, ids):
        target, filter_ids = USER, connector.synchronized_user_segments
    else:
        return _skip(SkipReason.NOT_IN_SEGMENT)

    if connector.ignore_deleted_users and _is_deleted(user, (ACCOUNT_GROUP, _group(target))):
        return _skip(SkipReason.DELETED)

    entered = segment_ids((changes.get("segments") or {}).get("entered") or [])
    if entered and matches_filter(filter_ids, entered):
        return Decision(target, trigger="entered_segment")
    if connector.send_events and any(
        isinstance(e, Mapping)
        and event_whitelisted(connector, str(e.get("event", "")))
        and e.get("event_source") != "intercom"
        for e in events
    ):
        return Decision(target, trigger="event")
    tagging = connector.tag_leads if target == LEAD else connector.tag_users
    if tagging and (entered or (changes.get("segments") or {}).get("left")):
        # Tags mirror every segment (not only the synchronized ones): a segment change is a push.
        return Decision(target, trigger="segments_changed")
    if connector.link_users_in_service:
        account_changes = changes.get("account") or {}
        if "id" in account_changes or f"{ACCOUNT_GROUP}/id" in account_changes:
            return Decision(target, trigger="account_linked")

    mapped = outgoing_hull_attributes(connector, target)
    if not mapped:
        return _skip(SkipReason.NO_OUTGOING_ATTRIBUTES)
    if not _has_intercom_id(connector, target, str(user.get("id") or ""), user, _group(target)):
        return Decision(target, trigger="never_synced")

    keys = changed_keys(changes, account_prefix=False) | changed_keys(changes, account_prefix=True)
    if not keys:
        return _skip(SkipReason.NO_CHANGES)
    foreign = {k for k in keys if not is_own_attribute(k)}
    if foreign & mapped:
        return Decision(target, trigger="changed")
    if not foreign:
        return _skip(SkipReason.OWN_CHANGES_ONLY)
    return _skip(SkipReason.NO_MAPPED_CHANGES)


def _group(target: str) -> str:
    return LEAD_GROUP if target == LEAD else USER_GROUP


# --- account messages ----------------------------------------------------------------------------


def route_account_message(connector: Connector, message: Any) -> Decision:
    if not connector.is_intercom_connected:
        return _skip(SkipReason.NOT_CONFIGURED, "account")
    account: Mapping[str, Any] = message_field(message, "account") or {}
    changes: Mapping[str, Any] = message_field(message, "changes") or {}
    if connector.ignore_deleted_accounts and _is_deleted(account, (ACCOUNT_GROUP,)):
        return _skip(SkipReason.DELETED, "account")
    if message_field(message, "is_export", False):
        return Decision(COMPANY, trigger="export")
    ids = segment_ids(message_field(message, "account_segments") or [])
    if not matches_filter(connector.synchronized_account_segments, ids):
        return _skip(SkipReason.NOT_IN_SEGMENT, "account")
    entered = segment_ids((changes.get("account_segments") or {}).get("entered") or [])
    if entered and matches_filter(connector.synchronized_account_segments, entered):
        return Decision(COMPANY, trigger="entered_segment")
    if connector.tag_companies and (entered or (changes.get("account_segments") or {}).get("left")):
        return Decision(COMPANY, trigger="segments_changed")
    mapped = outgoing_hull_attributes(connector, Entity.COMPANY)
    if not mapped:
        return _skip(SkipReason.NO_OUTGOING_ATTRIBUTES, "account")
    if not _has_intercom_id(connector, Entity.COMPANY, str(account.get("id") or ""), account, ACCOUNT_GROUP):
        return Decision(COMPANY, trigger="never_synced")
    keys = {_INDEX_SUFFIX.sub("", k) for k in (changes.get("account") or {})}
    if not keys:
        return _skip(SkipReason.NO_CHANGES, "account")
    foreign = {k for k in keys if not k.startswith(OWN_GROUPS)}
    if foreign & mapped:
        return Decision(COMPANY, trigger="changed")
    if not foreign:
        return _skip(SkipReason.OWN_CHANGES_ONLY, "account")
    return _skip(SkipReason.NO_MAPPED_CHANGES, "account")
