"""The Hull organization stand-in's core: identity resolution, operations, segments, reports.

Follows docs/hull-protocol.md#the-stand-in: users are found by id, external_id, email, then
anonymous_id (accounts by id, external_id, domain, anonymous_id) and created unless
`io.hull.create` is false; attribute keys are stored as Hull reports them (`traits_` on users
for ungrouped and grouped custom attributes, accounts unprefixed); every change is remembered as
`[old, new]` until the notifier delivers it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sandbox.hull.models import SandboxAccount, SandboxEvent, SandboxSegment, SandboxUser

# Top-level user attributes Hull keeps without the `traits_` prefix (docs/hull-protocol.md#traits).
RESERVED_USER_KEYS = {
    "email", "external_id", "name", "first_name", "last_name", "domain", "phone", "address", "picture",
    "image", "description", "accepts_marketing", "is_approved", "approved", "created_at",
}
MAX_VALUE_BYTES = 2048  # Hull's 2 KB per attribute value
MAX_ATTRIBUTES = 2000
OPERATIONS = {"set", "setIfNull", "increment", "inc", "decrement", "dec"}


class IngestionError(ValueError):
    """A record the platform would reject (recorded on the firehose record, never raised to the caller)."""


def new_hull_id() -> str:
    return secrets.token_hex(12)  # 24 hex characters, like a Mongo ObjectId


def user_storage_key(key: str) -> str:
    key = key.replace(".", "/", 1) if "/" not in key and "." in key else key
    if key in RESERVED_USER_KEYS or key.startswith("traits_"):
        return key
    return f"traits_{key}"


# --- identity resolution ------------------------------------------------------------------------


def _find(model: type[SandboxUser] | type[SandboxAccount], organization: str, claims: Mapping[str, Any], order: tuple[str, ...]) -> Any:
    rows = model.objects.filter(organization=organization)
    for claim in order:
        value = claims.get(claim)
        if not value:
            continue
        if claim == "id":
            found = rows.filter(hull_id=value).first()
        elif claim == "anonymous_id":
            found = next((r for r in _may_hold_anonymous_id(rows, value) if value in (r.anonymous_ids or [])), None)
        else:
            found = rows.filter(**{claim: value}).first()
        if found is not None:
            return found
    return None


def _may_hold_anonymous_id(rows: Any, value: Any) -> Any:
    """The rows whose stored anonymous ids may contain `value` (the exact test is the caller's).
    A LIKE on the stored JSON text narrows the scan when the value is stored as written (printable
    ASCII without quotes or backslashes); otherwise every row. Without it, each record of a
    10,000-company fetch decoded every account of the organization."""
    if isinstance(value, str) and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return rows.filter(anonymous_ids__icontains=value)
    return rows


def _attach_identifiers(entity: Any, claims: Mapping[str, Any], fields: tuple[str, ...]) -> None:
    for claim in fields:
        if claims.get(claim) and not getattr(entity, claim):
            setattr(entity, claim, claims[claim])
    anonymous_id = claims.get("anonymous_id")
    if anonymous_id and anonymous_id not in entity.anonymous_ids:
        entity.anonymous_ids = [*entity.anonymous_ids, anonymous_id]
        _record_change(entity, "anonymous_ids", None, anonymous_id, key=f"anonymous_ids[{len(entity.anonymous_ids) - 1}]")


def _resolve(model: type[SandboxUser] | type[SandboxAccount], organization: str, claims: Mapping[str, Any], order: tuple[str, ...], create: bool) -> Any:
    entity = _find(model, organization, claims, order)
    if entity is None:
        # A Hull id names an existing entity: the platform never creates one from it.
        if not create or claims.get("id"):
            return None
        entity = model(organization=organization, hull_id=new_hull_id(), pending_changes={"is_new": True})
    _attach_identifiers(entity, claims, tuple(c for c in order if c not in ("id", "anonymous_id")))
    entity.save()
    return entity


def resolve_user(organization: str, claims: Mapping[str, Any], *, create: bool = True) -> SandboxUser | None:
    return _resolve(SandboxUser, organization, claims, ("id", "external_id", "email", "anonymous_id"), create)


def resolve_account(organization: str, claims: Mapping[str, Any], *, create: bool = True) -> SandboxAccount | None:
    return _resolve(SandboxAccount, organization, claims, ("id", "external_id", "domain", "anonymous_id"), create)


# --- operations ---------------------------------------------------------------------------------


def _record_change(entity: Any, name: str, old: Any, new: Any, *, key: str | None = None) -> None:
    part = "user" if isinstance(entity, SandboxUser) else "account"
    changes = dict(entity.pending_changes or {})
    diff = dict(changes.get(part) or {})
    key = key or name
    first_old = diff[key][0] if key in diff else old
    diff[key] = [first_old, new]
    changes[part] = diff
    entity.pending_changes = changes


def apply_traits(entity: SandboxUser | SandboxAccount, traits: Mapping[str, Any]) -> list[str]:
    """Apply a traits body; returns the per-attribute errors (oversized values, bad operations)."""
    errors: list[str] = []
    is_user = isinstance(entity, SandboxUser)
    attributes = dict(entity.attributes or {})
    for raw_key, raw_value in traits.items():
        key = user_storage_key(raw_key) if is_user else raw_key
        operation: str | None
        operation, value = "set", raw_value
        if isinstance(raw_value, Mapping) and "operation" in raw_value:
            operation, value = raw_value.get("operation"), raw_value.get("value")
            if operation not in OPERATIONS:
                errors.append(f"{raw_key}: unknown operation {operation!r}")
                continue
        if len(json.dumps(value, default=str).encode()) > MAX_VALUE_BYTES:
            errors.append(f"{raw_key}: value larger than 2 KB")
            continue
        if key in ("email", "external_id") and is_user or key in ("domain", "external_id") and not is_user:
            current = getattr(entity, key) or None
        else:
            current = attributes.get(key)
        if operation == "setIfNull" and current not in (None, ""):
            continue
        if operation in ("increment", "inc"):
            value = (current or 0) + (value or 0)
        elif operation in ("decrement", "dec"):
            value = (current or 0) - (value or 0)
        if current == value:
            continue  # a no-op produces no change (docs/hull-protocol.md#loop-avoidance, 3)
        if key not in attributes and len(attributes) >= MAX_ATTRIBUTES:
            errors.append(f"{raw_key}: more than {MAX_ATTRIBUTES} attributes")
            continue
        if (is_user and key in ("email", "external_id")) or (not is_user and key in ("domain", "external_id")):
            setattr(entity, key, value or "")
        else:
            attributes[key] = value
        _record_change(entity, key, current, value)
    entity.attributes = attributes
    return errors


def link_user_to_account(user: SandboxUser, account: SandboxAccount) -> None:
    if user.account_id == account.pk:
        return
    old = user.account.hull_id if user.account is not None else None
    user.account = account
    changes = dict(user.pending_changes or {})
    changes["account"] = {**(changes.get("account") or {}), "id": [old, account.hull_id]}
    user.pending_changes = changes


def track_event(user: SandboxUser, body: Mapping[str, Any]) -> SandboxEvent:
    """Store an event; the same `event_id` again overwrites instead of duplicating (docs/hull-protocol.md#events)."""
    event_id = str(body.get("event_id") or secrets.token_hex(12))
    skip = {"event", "properties", "event_id", "created_at", "source"}
    event, _created = SandboxEvent.objects.update_or_create(
        user=user,
        event_id=event_id,
        defaults={
            "event": str(body.get("event") or ""),
            "properties": dict(body.get("properties") or {}),
            "context": {k: v for k, v in body.items() if k not in skip},
            "source": str(body.get("source") or ""),
            "created_at": str(body.get("created_at") or ""),
            "delivered": False,
        },
    )
    return event


# --- segments -----------------------------------------------------------------------------------


def segment_object(segment: SandboxSegment) -> dict[str, Any]:
    return {
        "id": segment.hull_id,
        "name": segment.name,
        "type": segment.kind,
        "stats": {},
        "created_at": segment.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": segment.updated_at.isoformat().replace("+00:00", "Z"),
    }


def _matches(segment: SandboxSegment, entity: Any, report: Mapping[str, Any]) -> bool:
    if entity.hull_id in (segment.member_ids or []):
        return True
    rule = segment.rule or {}
    if not rule.get("attribute"):
        return False
    value = report.get(rule["attribute"])
    if "equals" in rule:
        return value == rule["equals"]
    return value not in (None, "", [])


def recompute_segments(entity: SandboxUser | SandboxAccount) -> None:
    """Membership now; `entered`/`left` are added to the pending changes."""
    kind = SandboxSegment.Kind.USERS if isinstance(entity, SandboxUser) else SandboxSegment.Kind.ACCOUNTS
    report = user_report(entity) if isinstance(entity, SandboxUser) else account_report(entity)
    segments = list(SandboxSegment.objects.filter(organization=entity.organization, kind=kind))
    now = {s.hull_id for s in segments if _matches(s, entity, report)}
    before = set(entity.segment_ids or [])
    if now == before:
        return
    by_id = {s.hull_id: s for s in segments}
    part = "segments" if kind == SandboxSegment.Kind.USERS else "account_segments"
    changes = dict(entity.pending_changes or {})
    moves = dict(changes.get(part) or {})
    for move, ids in (("entered", now - before), ("left", before - now)):
        if ids:
            known = {s["id"]: s for s in moves.get(move) or []}
            known.update({i: segment_object(by_id[i]) for i in ids if i in by_id})
            moves[move] = list(known.values())
    changes[part] = moves
    entity.pending_changes = changes
    entity.segment_ids = sorted(now)


# --- reports (what notifications and exports carry) -------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def user_report(user: SandboxUser) -> dict[str, Any]:
    return {
        "id": user.hull_id,
        "email": user.email or None,
        "external_id": user.external_id or None,
        "anonymous_ids": list(user.anonymous_ids or []),
        **(user.attributes or {}),
        "segment_ids": list(user.segment_ids or []),
        "created_at": _iso(user.created_at),
        "indexed_at": _iso(user.indexed_at),
    }


def account_report(account: SandboxAccount) -> dict[str, Any]:
    return {
        "id": account.hull_id,
        "domain": account.domain or None,
        "external_id": account.external_id or None,
        "anonymous_ids": list(account.anonymous_ids or []),
        **(account.attributes or {}),
        "created_at": _iso(account.created_at),
        "indexed_at": _iso(account.indexed_at),
    }
