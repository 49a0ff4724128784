"""Hull segments mirrored as Intercom tags (docs/intercom-behaviour.md#segments-as-tags, docs/decisions.md#attributes-and-events).

- Added: the names of all segments the user/account is in now, minus the tags Hull already knows
  the Intercom entity has (`intercom_<type>/tags`, `intercom/tags`: our own write-back) and minus
  those on the contact Intercom just returned. Looked up by trimmed name; missing tags are created.
- Removed: names of the segments left (`changes.segments.left`), and only when a tag of exactly
  that name exists. A tag that is not a Hull segment name is never removed: only left segment
  names are candidates, and a name still carried by a current segment is kept.
A tag failure is that tag's problem: it is recorded on the entity's SyncLog row, and the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.intercom.errors import IntercomApiError, IntercomNotFound
from sync.mapping import mapping_rows
from sync.models import Direction, Entity
from sync.outgoing.context import OutgoingContext
from sync.work import reraise_halt


@dataclass
class TagChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def final_names(self, before: Iterable[str]) -> list[str]:
        names = [n for n in before if n not in self.removed]
        return names + [n for n in self.added if n not in names]


def _names(segments: Iterable[Any]) -> list[str]:
    return [str(s.get("name")) for s in segments or () if isinstance(s, Mapping) and s.get("name")]


def tags_attribute(ctx: OutgoingContext, entity: str) -> str:
    """The Hull attribute our incoming mapping writes the Intercom tag names to."""
    for row in mapping_rows(ctx.connector, entity, Direction.INCOMING):
        if row.intercom_attribute == "tags":
            return row.hull_attribute
    by_entity: dict[str, str] = {Entity.USER: "intercom_user/tags", Entity.LEAD: "intercom_lead/tags"}
    return by_entity.get(entity, "intercom/tags")


def planned_tag_changes(
    *, current_segments: Iterable[Any], left_segments: Iterable[Any], known_tags: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(names to add, names to remove), before any API call."""
    current = _names(current_segments)
    known = {str(t) for t in known_tags or ()}
    add = [n for n in current if n not in known and n.strip() not in known]
    remove = [n for n in _names(left_segments) if n not in current]
    return list(dict.fromkeys(add)), list(dict.fromkeys(remove))


def _contact_tag_ids(contact: Mapping[str, Any] | None) -> set[str] | None:
    """Tag ids on the contact Intercom returned, or None when unknown (no contact, or > 10 tags)."""
    tags = (contact or {}).get("tags")
    if not isinstance(tags, Mapping) or tags.get("has_more"):
        return None
    items = tags.get("data", tags.get("tags"))
    return {str(t.get("id")) for t in items or () if isinstance(t, Mapping)}


def contact_tags_sync(
    ctx: OutgoingContext, *, contact_id: str, entity: str, message: Any, contact: Mapping[str, Any] | None
) -> TagChanges:
    user = message.user or {}
    known = user.get(tags_attribute(ctx, entity)) or []
    if not isinstance(known, list):
        known = []
    left = ((message.changes or {}).get("segments") or {}).get("left") or []
    add, remove = planned_tag_changes(current_segments=message.segments, left_segments=left, known_tags=known)
    result = TagChanges()
    if not add and not remove:
        return result
    on_contact = _contact_tag_ids(contact)
    tag_id: str | None  # Intercom's id of the tag at hand (None: no such tag to remove)
    for name in add:
        try:
            tag_id = ctx.tags.ensure(name)
            if on_contact is None or tag_id not in on_contact:
                ctx.intercom.tag_contact(contact_id, tag_id)
            result.added.append(ctx.tags.name_for(tag_id) or name.strip())  # Intercom's spelling
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            result.errors.append(f"tag {name!r}: {exc.message}")
    for name in remove:
        tag_id = ctx.tags.id_for(name)
        if tag_id is None or (on_contact is not None and tag_id not in on_contact):
            continue  # no such tag, or Intercom says the contact does not carry it
        try:
            ctx.intercom.untag_contact(contact_id, tag_id)
            result.removed.append(name)
        except IntercomNotFound:
            result.removed.append(name)
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            result.errors.append(f"untag {name!r}: {exc.message}")
    return result


def company_tags_sync(
    ctx: OutgoingContext, *, company_id: str, account: Mapping[str, Any], account_segments: Iterable[Any], changes: Mapping[str, Any]
) -> TagChanges:
    known = account.get(tags_attribute(ctx, Entity.COMPANY)) or []
    if not isinstance(known, list):
        known = []
    left = (changes.get("account_segments") or {}).get("left") or []
    add, remove = planned_tag_changes(current_segments=account_segments, left_segments=left, known_tags=known)
    result = TagChanges()
    for name in add:
        try:
            ctx.intercom.tag_companies(name.strip(), [company_id])
            result.added.append(name.strip())
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            result.errors.append(f"tag {name!r}: {exc.message}")
    for name in remove:
        if ctx.tags.id_for(name) is None:
            continue
        try:
            ctx.intercom.tag_companies(name, [company_id], untag=True)
            result.removed.append(name)
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            result.errors.append(f"untag {name!r}: {exc.message}")
    return result
