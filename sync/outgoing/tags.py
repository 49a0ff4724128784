"""Hull segments mirrored as Intercom tags (docs/intercom-behaviour.md#segments-as-tags, docs/decisions.md#attributes-and-events).

- Added: the names of all segments the user/account is in now, minus the tags Hull already knows
  the Intercom entity has (`intercom_<type>/tags`, `intercom/tags`: our own write-back) and minus
  those on the contact Intercom just returned. Looked up by trimmed name; missing tags are created.
- Removed: names of the segments left (`changes.segments.left`), and only when a tag of exactly
  that name exists. A tag that is not a Hull segment name is never removed: only left segment
  names are candidates, and a name still carried by a current segment is kept.
A tag failure is that tag's problem: it is recorded on the entity's SyncLog row, and the rest go on.

Users' adds in a batch of messages go out in bulk (`BulkTags`): the threads of one notification
that need the same tag at about the same time share one `POST /tags {name, users: [{id}, ...]}`
instead of a call per contact. Each message still waits for its own tags and ends as before (its
write-back, its SyncLog row, its progress): a bulk call is a shared step inside the messages, not
work left for later. Leads and removals stay one call per contact: Intercom documents neither
leads in the users list nor a bulk untag for contacts (docs/intercom-api.md#tags).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync.intercom.errors import IntercomApiError, IntercomNotFound
from sync.mapping import mapping_rows
from sync.models import Direction, Entity
from sync.work import reraise_halt

if TYPE_CHECKING:
    from sync.outgoing.context import OutgoingContext

# Contacts per bulk call: Intercom recommends tagging no more than 50 users at a time (larger
# calls may time out; its 1.x "Tag or Untag Users" reference, the last to give a figure).
BULK_TAG_USERS = 50
# How long a contact waits for other threads' contacts to join its tag's call: about one Intercom
# answer, the time in which the other threads' pushes come back. Never waited when every thread of
# the batch is waiting already (nobody else can join), e.g. messages run one at a time.
BULK_TAG_LINGER = 0.2  # seconds


@dataclass
class TagChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def final_names(self, before: Iterable[str]) -> list[str]:
        names = [n for n in before if n not in self.removed]
        return names + [n for n in self.added if n not in names]


@dataclass
class TagSlot:
    """One contact's add of one tag in a shared call; `error` once it is answered (None: tagged)."""

    contact_id: str
    name: str  # the tag's name as Intercom spells it when known, else the trimmed segment name
    tag_id: str | None = None
    error: str | None = None


class _Group:
    """The contacts of one tag waiting for the same call."""

    def __init__(self, key: str, opened: float) -> None:
        self.key = key
        self.opened = opened
        self.slots: list[TagSlot] = []
        self.closed = False  # taken by a sender: nobody joins any more
        self.done = threading.Event()
        self.failure: BaseException | None = None  # a halt or a bug: raised in every waiting message


class BulkTags:
    """Group commit of the users' tag adds of one batch (a notification, an export chunk).

    A message's thread puts its contact in its tags' open groups and waits until they are sent:
    a group is sent by the thread that fills it (`size` contacts), by the first waiter whose
    `linger` is over, or at once when every thread working off the batch is waiting (nobody else
    can join: messages run one at a time are never delayed). A group of one goes the old way (the tag
    looked up or created, then `POST /contacts/<id>/tags`).

    Failures: a halt (rate limit, refused token, lost answer) or a batch stopper is raised in every
    message of the group, which then stops like a message whose own call halted (redone when the
    batch resumes). Any other refusal of a bulk call (Intercom fails the whole call when one
    contact is unknown, e.g. deleted or merged since its push) is retried one contact at a time,
    so each error is recorded on its own entity's SyncLog row and the others are tagged.
    """

    def __init__(self, ctx: OutgoingContext, *, size: int = BULK_TAG_USERS, linger: float = BULK_TAG_LINGER) -> None:
        self.ctx = ctx
        self.size = max(1, size)
        self.linger = linger
        self._cond = threading.Condition()
        self._open: dict[str, _Group] = {}  # trimmed lower-cased name (Intercom's are case-insensitive) -> group
        self._running = 0  # threads working off the batch's messages now
        self._waiting = 0  # of which waiting for a group

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count a thread working off the batch's messages (one that might still join a group)."""
        with self._cond:
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()  # the waiters may be all that is left

    def add(self, contact_id: str, wanted: list[tuple[str, str | None]]) -> list[TagSlot]:
        """Tag the contact with each (name, id or None when Intercom has no such tag yet) together
        with the other threads' contacts; returns the answered slots, in order."""
        slots = [TagSlot(contact_id=contact_id, name=name, tag_id=tag_id) for name, tag_id in wanted]
        mine: list[_Group] = []
        to_send: list[_Group] = []
        try:
            self._join(slots, mine, to_send)
        finally:
            for group in to_send:  # even when the wait was interrupted: the others wait for these calls
                self._send(group)
        for group in dict.fromkeys(mine):
            group.done.wait()
            if group.failure is not None:
                raise group.failure
        return slots

    def _join(self, slots: list[TagSlot], mine: list[_Group], to_send: list[_Group]) -> None:
        """Put the slots in their groups and wait until each group is closed; `to_send`: those this thread closed."""
        with self._cond:
            for slot in slots:
                key = slot.name.strip().lower()
                group = self._open.get(key)
                if group is None:
                    group = self._open[key] = _Group(key, time.monotonic())
                group.slots.append(slot)
                mine.append(group)
                if len(group.slots) >= self.size:
                    to_send.append(self._close(group))
            self._cond.notify_all()  # a waiter may now see everyone waiting
            self._waiting += 1
            try:
                while True:
                    waiting_for = [g for g in mine if not g.closed]
                    if not waiting_for:
                        break
                    if self._waiting >= self._running:  # every thread of the batch waits: send every group
                        to_send += [self._close(g) for g in list(self._open.values())]
                        break
                    now = time.monotonic()
                    expired = [g for g in waiting_for if g.opened + self.linger <= now]
                    if expired:
                        to_send += [self._close(g) for g in expired]
                        continue
                    self._cond.wait(min(g.opened + self.linger for g in waiting_for) - now)
            finally:
                self._waiting -= 1

    def _close(self, group: _Group) -> _Group:
        group.closed = True
        if self._open.get(group.key) is group:
            del self._open[group.key]
        return group

    def _send(self, group: _Group) -> None:
        try:
            if len(group.slots) == 1:
                self._one_by_one(group.slots)
            else:
                self._bulk(group.slots)
        except BaseException as exc:  # noqa: BLE001 - handed to every message of the group
            group.failure = exc
        finally:
            group.done.set()

    def _bulk(self, slots: list[TagSlot]) -> None:
        try:
            # "created if not found": the call creates a missing tag itself.
            tag = self.ctx.intercom.tag_users(slots[0].name, [slot.contact_id for slot in slots])
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the messages wait with the batch
            self._one_by_one(slots)  # one unknown contact fails the whole call: find out which
            return
        self.ctx.tags.remember(tag)
        for slot in slots:
            slot.tag_id, slot.name = str(tag.get("id") or slot.tag_id or ""), str(tag.get("name") or slot.name)

    def _one_by_one(self, slots: list[TagSlot]) -> None:
        try:
            tag_id = self.ctx.tags.ensure(slots[0].name)
        except IntercomApiError as exc:
            reraise_halt(exc)
            for slot in slots:
                slot.error = exc.message
            return
        name = self.ctx.tags.name_for(tag_id) or slots[0].name.strip()  # Intercom's spelling
        for slot in slots:
            slot.tag_id, slot.name = tag_id, name
            try:
                self.ctx.intercom.tag_contact(slot.contact_id, tag_id)
            except IntercomApiError as exc:
                reraise_halt(exc)
                slot.error = exc.message


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
    bulk = ctx.bulk_tags if entity == Entity.USER else None
    if bulk is not None and add:
        _bulk_adds(ctx, bulk, contact_id=contact_id, add=add, on_contact=on_contact, result=result)
        add = []
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


def _bulk_adds(
    ctx: OutgoingContext, bulk: BulkTags, *, contact_id: str, add: list[str], on_contact: set[str] | None, result: TagChanges
) -> None:
    """The adds through the batch's shared calls; those the contact carries already need none.
    A halt of a shared call is raised here, as the contact's own call would have raised it."""
    errors: dict[str, str] = {}
    names: dict[str, str] = {}  # segment name -> the tag's name as recorded (Intercom's spelling when known)
    wanted: dict[str, tuple[str, str | None]] = {}
    for name in add:
        try:
            tag_id = ctx.tags.id_for_trimmed(name)
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            errors[name] = exc.message
            continue
        names[name] = (ctx.tags.name_for(tag_id) if tag_id is not None else None) or name.strip()
        if tag_id is None or on_contact is None or tag_id not in on_contact:
            wanted[name] = (names[name], tag_id)
    if wanted:
        for name, slot in zip(wanted, bulk.add(contact_id, list(wanted.values())), strict=True):
            names[name] = slot.name
            if slot.error is not None:
                errors[name] = slot.error
    for name in add:
        if name in errors:
            result.errors.append(f"tag {name!r}: {errors[name]}")
        else:
            result.added.append(names[name])


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
