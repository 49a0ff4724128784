"""Hull users -> Intercom contacts (users or leads): resolve, push, events, tags, convert, write back.

Per message, in this order (docs/intercom-behaviour.md#outgoing-contacts, with docs/decisions.md#identity):
1. Resolve the contact: IdentityLink -> the `intercom_<type>/id` attribute -> search by the
   identity claims one at a time in priority order, each with `role = <type>`. One match is
   updated, none creates, several for a claim is an error naming the candidates (nothing written).
   A stored id Intercom no longer knows (404) is forgotten and the search runs instead.
2. Build the payload (docs/intercom-behaviour.md#outgoing-contacts: mapped attributes, then claims, then `role`). If it is identical to
   the last one sent to that contact, it is not sent again.
3. Create or update. A 409 on create names the contact holding those details: update that one.
   An unknown custom attribute is created and the push retried once.
4. Events, tags, lead conversion (merge the lead into this user), write-back of the returned
   contact to Hull (ids + incoming-mapped attributes), then the company link when "link users in
   Intercom" is on.
The contact ends in one SyncLog row (`outgoing.user.success|skip|error`, entity user or lead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sync.defaults import LEAD_GROUP, USER_GROUP
from sync.legacy import legacy_contact_update
from sync.intercom.errors import (
    IntercomApiError,
    IntercomConflict,
    IntercomNotFound,
)
from sync.mapping import OutgoingAttributes, build_outgoing_attributes, claim_rows, coerce_standard_value, map_incoming
from sync.models import Entity, IdentityLink, SyncLog
from sync.outgoing.companies import account_sync
from sync.outgoing.context import OutgoingContext
from sync.outgoing.events import events_send
from sync.outgoing.memberships import company_moves, moved_text
from sync.outgoing.links import call_with_attribute_retry, link_for, link_forget, link_save, payload_hash
from sync.outgoing.locks import UNSETTLED_FOR, IdentityLockTimeout, identity_keys, identity_lock, normalise_email
from sync.outgoing.routing import LEAD, USER, SkipReason, matches_filter, message_field, segment_ids, skip_message
from sync.outgoing.tags import TagChanges, contact_tags_sync, tags_attribute
from sync.identity import contact_anonymous_id
from sync.work import reraise_halt

GROUP_FOR_TARGET = {USER: USER_GROUP, LEAD: LEAD_GROUP}
# The anonymous ids Hull's connector gives Intercom contacts (docs/decisions.md "Identity").
SEARCH_PAGE = 5  # enough to tell one match from several, and to name a few candidates


class AmbiguousContact(Exception):
    """Several Intercom contacts of the role match the top claim that matched at all."""

    def __init__(self, *, field_name: str, candidates: list[str]) -> None:
        super().__init__(f"Several Intercom contacts match {field_name}: {', '.join(candidates)}")
        self.field_name = field_name
        self.candidates = candidates


@dataclass(frozen=True)
class Resolution:
    intercom_id: str | None
    source: str  # link | attribute | search | none
    link: IdentityLink | None = None


@dataclass
class ContactOutcome:
    status: str
    intercom_id: str = ""
    contact: dict | None = None
    data: dict[str, Any] = field(default_factory=dict)


# --- 1. resolve ----------------------------------------------------------------------------------


def search_query(field_name: str, value: Any, role: str) -> dict:
    return {
        "operator": "AND",
        "value": [
            {"field": field_name, "operator": "=", "value": value},
            {"field": "role", "operator": "=", "value": role},
        ],
    }


def _claim_values(ctx: OutgoingContext, target: str, user: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(Intercom field, value) of the user's identity claims, in priority order; emails normalised."""
    values: list[tuple[str, Any]] = []
    for claim in claim_rows(ctx.connector, target):
        if claim.intercom_attribute == "id":
            continue
        value = user.get(claim.hull_attribute)
        if value in (None, ""):
            continue
        value = coerce_standard_value(claim.intercom_attribute, value)
        if claim.intercom_attribute == "email":
            value = normalise_email(value)
        elif isinstance(value, str):
            value = value.strip()
        if value not in (None, ""):
            values.append((claim.intercom_attribute, value))
    return values


def _from_identity_map(ctx: OutgoingContext, target: str, claims: list[tuple[str, Any]]) -> IdentityLink | None:
    """The contact our own records join to these claims (pushed or ingested before): no API call,
    and right even while Intercom's search does not show a contact made a moment ago."""
    external_id = next((str(v) for f, v in claims if f == "external_id"), "")
    rows = IdentityLink.objects.filter(connector=ctx.connector, entity=target)
    if external_id:
        link = rows.filter(external_id=external_id).first()
        if link is not None:
            return link
    email = next((str(v) for f, v in claims if f == "email"), "")
    if email:
        # Several users may share an email when their external_ids differ: only one without
        # another external_id is ours.
        candidates = [
            link for link in rows.filter(email__iexact=email)[:3] if not link.external_id or link.external_id == external_id
        ]
        if len(candidates) == 1:
            return candidates[0]
    return None


def resolve_contact(ctx: OutgoingContext, *, target: str, user: Mapping[str, Any], use_stored: bool = True) -> Resolution:
    """Which Intercom contact this Hull user is, as a `target` (user or lead); None: create one.

    Cheapest and freshest first (Intercom's search lags writes by seconds to minutes):
    1. our IdentityLink of the Hull user, then its `intercom_<type>/id` attribute, then our identity
       map by external_id / normalised email (links of contacts pushed or ingested before);
    2. for a user with an external_id, `GET /contacts/find_by_external_id` (a direct read, never
       lagged; external_id is unique among users): found is updated, absent is created: one lookup;
    3. otherwise search by each claim with the role (leads cannot be read by a key).
    """
    hull_id = str(user.get("id") or "")
    link = link_for(ctx.connector, target, hull_id)
    claims = _claim_values(ctx, target, user)
    if use_stored:
        if link is not None:
            return Resolution(link.intercom_id, "link", link)
        stored = user.get(f"{GROUP_FOR_TARGET[target]}/id")
        if stored:
            return Resolution(str(stored), "attribute", None)
        known = _from_identity_map(ctx, target, claims)
        if known is not None:
            return Resolution(known.intercom_id, "map", None)
    external_id = next((str(v) for f, v in claims if f == "external_id"), "")
    if target == USER and external_id:
        try:
            found = ctx.intercom.find_contact_by_external_id(external_id)
        except IntercomNotFound:
            return Resolution(None, "none", None)
        found_id = str(found.get("id") or "")
        if found_id and found.get("role", USER) == USER:
            return Resolution(found_id, "external_id", link if link is not None and link.intercom_id == found_id else None)
    for field_name, value in claims:
        if target == USER and field_name == "external_id":
            continue  # read directly above
        page = ctx.intercom.search_contacts_page(search_query(field_name, value, target), per_page=SEARCH_PAGE)
        found_ids = [str(c["id"]) for c in page.get("data") or [] if c.get("id")]
        total = page.get("total_count", len(found_ids))
        if len(found_ids) > 1 or (total or 0) > 1:
            raise AmbiguousContact(field_name=f"{field_name}={value}", candidates=found_ids)
        if found_ids:
            return Resolution(found_ids[0], "search", None if link is None or link.intercom_id != found_ids[0] else link)
    return Resolution(None, "none", None)


# --- 2. payload ----------------------------------------------------------------------------------


def build_contact_payload(ctx: OutgoingContext, *, target: str, message: Any, creating: bool) -> tuple[dict, OutgoingAttributes]:
    """Mapped attributes, then the claims (they win, as in Hull's connector), then the role."""
    user = message_field(message, "user") or {}
    attrs = build_outgoing_attributes(
        ctx.connector,
        target,
        user,
        account=message_field(message, "account") or {},
        segments=message_field(message, "segments") or [],
        account_segments=message_field(message, "account_segments") or [],
        creating=creating,
    )
    payload = dict(attrs.payload)
    for claim in claim_rows(ctx.connector, target):
        value = user.get(claim.hull_attribute)
        if value is not None and claim.intercom_attribute != "id":
            payload[claim.intercom_attribute] = coerce_standard_value(claim.intercom_attribute, value)
    for key in ("email", "external_id"):
        if isinstance(payload.get(key), str):
            # " Jane@x.com " is refused as invalid by Intercom; case is kept (Intercom compares without it).
            payload[key] = payload[key].strip()
    payload["role"] = target
    return payload, attrs


# --- 3. push -------------------------------------------------------------------------------------


def _push(ctx: OutgoingContext, *, intercom_id: str | None, payload: dict, attrs: OutgoingAttributes, data: dict) -> dict:
    target_id = intercom_id

    def call() -> dict:
        nonlocal target_id
        if target_id:
            return ctx.intercom.update_contact(target_id, payload)
        try:
            return ctx.intercom.create_contact(payload)
        except IntercomConflict as exc:
            if not exc.existing_id:
                raise
            # Intercom names the contact that already holds these details: that one is ours.
            target_id = exc.existing_id
            data["conflict_resolved_to"] = target_id
            if "archived" in (exc.message or "").lower():
                # An archived contact is invisible in Intercom's lists and search, yet it blocks the
                # create: the Hull user is still synced, so bring it back (docs/outgoing-identity.md).
                ctx.intercom.unarchive_contact(target_id)
                data["unarchived"] = target_id
            return ctx.intercom.update_contact(target_id, payload)

    return call_with_attribute_retry(ctx, model="contact", call=call, custom_sources=attrs.custom_sources)


# --- 4. after the push ---------------------------------------------------------------------------


def _convert_lead(ctx: OutgoingContext, *, target: str, intercom_id: str, user: Mapping[str, Any]) -> dict | None:
    """Merge the Hull user's Intercom lead into the Intercom user just pushed ("Convert Leads").

    Only when pushing as a user: merging right after pushing a lead would delete the lead we just
    wrote and re-create it on the next notification.
    """
    if not ctx.connector.convert_leads or target != USER:
        return None
    if user.get(f"{LEAD_GROUP}/lead_converted") is True:
        return None
    lead_link = link_for(ctx.connector, Entity.LEAD, str(user.get("id") or ""))
    lead_id = str(user.get(f"{LEAD_GROUP}/id") or (lead_link.intercom_id if lead_link else "") or "")
    if not lead_id or lead_id == intercom_id:
        return None
    try:
        ctx.intercom.merge_contacts(lead_id=lead_id, user_id=intercom_id)
    except IntercomApiError as exc:
        reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
        # Not marked converted (Hull's connector did, even on failure): the next push tries again.
        return {"converted": False, "lead_id": lead_id, "error": exc.message}
    link_forget(ctx.connector, Entity.LEAD, intercom_id=lead_id)
    return {"converted": True, "lead_id": lead_id, "user_id": intercom_id}


def contact_claims(ctx: OutgoingContext, *, target: str, intercom_id: str, user: Mapping[str, Any], contact: Mapping[str, Any] | None) -> dict:
    """Hull identity for the write-back: the Hull id we know, plus Intercom's claims and anonymous id."""
    claims: dict[str, Any] = {"anonymous_id": contact_anonymous_id(target, intercom_id)}
    if user.get("id"):
        claims["id"] = user["id"]
    source = contact if contact is not None else {}
    for claim in claim_rows(ctx.connector, target):
        if claim.hull_attribute in ("email", "external_id") and source.get(claim.intercom_attribute) not in (None, ""):
            claims[claim.hull_attribute] = source[claim.intercom_attribute]
    return claims


def contact_write_back(
    ctx: OutgoingContext,
    *,
    target: str,
    intercom_id: str,
    user: Mapping[str, Any],
    contact: Mapping[str, Any] | None,
    tags: TagChanges | None = None,
    conversion: dict | None = None,
) -> dict:
    """Send Hull the Intercom ids and the incoming-mapped attributes of the contact; returns the traits."""
    traits: dict[str, Any] = {}
    if contact is not None:
        traits = map_incoming(ctx.connector, target, contact, tag_names=ctx.tags.name_for)
    if tags is not None and (tags.added or tags.removed):
        # The contact came back before we tagged it: write the tags it carries now.
        attribute = tags_attribute(ctx, target)
        before = traits.get(attribute, user.get(attribute))
        before = before.get("value") if isinstance(before, dict) else before
        traits[attribute] = tags.final_names(before if isinstance(before, list) else [])
    if conversion and conversion.get("converted"):
        traits[f"{LEAD_GROUP}/lead_converted"] = True
    if not traits:
        return traits
    claims = contact_claims(ctx, target=target, intercom_id=intercom_id, user=user, contact=contact)
    aliases: list[str] = []
    if ctx.connector.legacy_attribute_mode:
        legacy = legacy_contact_update(
            target=target, group_traits=traits, intercom_id=intercom_id, existing_anonymous_ids=user.get("anonymous_ids")
        )
        traits.update(legacy.traits)
        aliases = legacy.anonymous_ids
    ctx.firehose.traits(claims, traits)
    for anonymous_id in aliases:
        ctx.firehose.alias(claims, anonymous_id)
    return traits


def _company_ids(contact: Mapping[str, Any] | None) -> set[str] | None:
    companies = (contact or {}).get("companies")
    if not isinstance(companies, Mapping) or companies.get("has_more"):
        return None
    return {str(c.get("id")) for c in companies.get("data") or [] if isinstance(c, Mapping)}


def _link_company(ctx: OutgoingContext, *, message: Any, target: str, intercom_id: str, contact: dict | None) -> dict | None:
    """Upsert the user's account as a company and attach the contact ("link users in Intercom", docs/intercom-behaviour.md#company-linking)."""
    account = message_field(message, "account") or {}
    if not account or not account.get("id"):
        return None
    account_segments = message_field(message, "account_segments")
    if account_segments and not matches_filter(ctx.connector.synchronized_account_segments, segment_ids(account_segments)):
        return None
    outcome = account_sync(
        ctx, account=account, account_segments=account_segments or [], changes=message_field(message, "changes") or {}
    )
    if not outcome.intercom_id:
        return {"company": None, "status": outcome.status}
    attached = _company_ids(contact)
    user = message_field(message, "user") or {}
    already = (attached is not None and outcome.intercom_id in attached) or (
        contact is None
        and str(account.get("intercom/id") or "") == outcome.intercom_id
        and bool(user.get(f"{GROUP_FOR_TARGET[target]}/companies"))
    )
    if already:
        return {"company": outcome.intercom_id, "attached": "already"}
    try:
        ctx.intercom.attach_company(intercom_id, outcome.intercom_id)
    except IntercomApiError as exc:
        reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
        return {"company": outcome.intercom_id, "error": exc.message}
    return {"company": outcome.intercom_id, "attached": True}


# --- the whole pipeline --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Early:
    """A push that ends before anything was sent (skip or error), with its reason."""

    status: str
    reason: str
    text: str


def _link_contact(
    ctx: OutgoingContext, *, target: str, hull_id: str, contact: Mapping[str, Any], payload: Mapping[str, Any], current: IdentityLink | None
) -> IdentityLink | None:
    """Record which Intercom contact the Hull user is (the payload digest comes after the write-back)."""
    return link_save(
        ctx.connector,
        entity=target,
        hull_id=hull_id,
        intercom_id=str(contact["id"]),
        email=normalise_email(contact.get("email") or payload.get("email")),
        external_id=str(contact.get("external_id") or payload.get("external_id") or ""),
        payload_digest="",  # recorded after the write-back is flushed (OutgoingContext.record_sent_payloads)
        current=current,
    )


def _resolve_and_push(
    ctx: OutgoingContext,
    *,
    target: str,
    message: Any,
    user: Mapping[str, Any],
    hull_id: str,
    create_guard: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> _Early | tuple[dict | None, str, str, dict, str, str, str]:
    """Resolve, create or update, and record the link: the part that runs under the identity lock.

    `create_guard`: for a push that started without the lock (a linked contact, an update), the
    lock around the one path that can still create: the linked contact is gone from Intercom.
    """
    resolution = resolve_contact(ctx, target=target, user=user)
    payload, attrs = build_contact_payload(ctx, target=target, message=message, creating=resolution.intercom_id is None)
    if target == USER and not payload.get("email") and not payload.get("external_id"):
        return _Early(SyncLog.Status.SKIPPED, SkipReason.MISSING_IDENTITY, "Intercom users need an email or an external_id")
    digest = payload_hash(payload)
    data: dict[str, Any] = {"data": payload, "type": target.capitalize(), "resolved_by": resolution.source}
    if attrs.truncated:
        data["truncated"] = attrs.truncated

    link = resolution.link
    if link is not None and link.intercom_id == resolution.intercom_id and link.last_payload_hash == digest:
        status, reason, text = SyncLog.Status.SKIPPED, SkipReason.IDENTICAL_PAYLOAD, skip_message(SkipReason.IDENTICAL_PAYLOAD, target)
        return None, link.intercom_id, digest, data, status, reason, text
    try:
        try:
            contact = _push(ctx, intercom_id=resolution.intercom_id, payload=payload, attrs=attrs, data=data)
        except IntercomNotFound:
            if resolution.source not in ("link", "attribute", "map"):
                raise
            # The stored id is gone (deleted, merged away): forget it and find the contact again.
            with create_guard():
                relinked = link_for(ctx.connector, target, hull_id)
                if relinked is not None and relinked.intercom_id != str(resolution.intercom_id):
                    # Another push met the same 404 first and made the contact again: update that one.
                    resolution = Resolution(relinked.intercom_id, "link", relinked)
                else:
                    link_forget(ctx.connector, target, hull_id=hull_id)
                    link_forget(ctx.connector, target, intercom_id=str(resolution.intercom_id))
                    resolution = resolve_contact(ctx, target=target, user=user, use_stored=False)
                data["resolved_by"] = f"{data['resolved_by']}->404->{resolution.source}"
                payload, attrs = build_contact_payload(ctx, target=target, message=message, creating=resolution.intercom_id is None)
                digest = payload_hash(payload)
                data["data"] = payload
                contact = _push(ctx, intercom_id=resolution.intercom_id, payload=payload, attrs=attrs, data=data)
                if resolution.intercom_id is None:  # created under the lock: linked before it is released
                    created = _link_contact(ctx, target=target, hull_id=hull_id, contact=contact, payload=payload, current=None)
                    resolution = Resolution(str(contact["id"]), "created", created)
    except IntercomApiError as exc:
        exc.push_data = data  # type: ignore[attr-defined]  # the error row shows what was sent
        raise
    intercom_id = str(contact["id"])
    _link_contact(ctx, target=target, hull_id=hull_id, contact=contact, payload=payload, current=resolution.link)
    return contact, intercom_id, digest, data, SyncLog.Status.SUCCESS, "", ""


def contact_sync(ctx: OutgoingContext, *, message: Any, target: str) -> ContactOutcome:
    """Push one routed user message as `target` (user or lead); writes its SyncLog rows."""
    user: Mapping[str, Any] = message_field(message, "user") or {}
    hull_id = str(user.get("id") or "")
    common = {"hull_id": hull_id, "email": str(user.get("email") or ""), "external_id": str(user.get("external_id") or "")}

    def fail(status: str, reason: str, text: str, data: dict | None = None, intercom_id: str = "") -> ContactOutcome:
        events_send(ctx, message=message, contact_id=None, **common)
        ctx.log(target, status, reason=reason, message=text, intercom_id=intercom_id, data=data or {}, **common)
        return ContactOutcome(status, intercom_id=intercom_id, data=data or {})

    keys = identity_keys(
        ctx.intercom.workspace_key, target, hull_id=hull_id, email=common["email"], external_id=common["external_id"]
    )
    try:
        # One push of an identity at a time, across threads and workers: the second one finds the
        # link the first recorded instead of creating a twin that search could not show yet. A
        # contact already linked is updated, not created: it takes the lock (a few row writes per
        # push, a third of a steady-state message's CPU) only if the link turns out stale.
        if link_for(ctx.connector, target, hull_id) is not None:
            early = _resolve_and_push(
                ctx, target=target, message=message, user=user, hull_id=hull_id,
                create_guard=lambda: identity_lock(keys, settle=UNSETTLED_FOR),
            )
        else:
            with identity_lock(keys, settle=UNSETTLED_FOR):
                early = _resolve_and_push(ctx, target=target, message=message, user=user, hull_id=hull_id)
    except AmbiguousContact as exc:
        return fail(SyncLog.Status.ERROR, "ambiguous_identity", str(exc), {"candidates": exc.candidates})
    except IdentityLockTimeout as exc:
        return fail(SyncLog.Status.ERROR, "identity_busy", f"Another push of this contact did not finish: {exc}")
    except IntercomApiError as exc:
        reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
        failed = dict(getattr(exc, "push_data", None) or {})
        failed["error"] = exc.message
        return fail(SyncLog.Status.ERROR, "intercom_error", exc.message, failed)
    if isinstance(early, _Early):
        return fail(early.status, early.reason, early.text)
    contact, intercom_id, digest, data, status, reason, text = early

    events_send(ctx, message=message, contact_id=intercom_id, **common)
    tags = None
    if ctx.connector.tag_leads if target == LEAD else ctx.connector.tag_users:
        tags = contact_tags_sync(ctx, contact_id=intercom_id, entity=target, message=message, contact=contact)
        if tags.added or tags.removed or tags.errors:
            data["tags"] = {"added": tags.added, "removed": tags.removed, "errors": tags.errors}
    conversion = _convert_lead(ctx, target=target, intercom_id=intercom_id, user=user)
    if conversion:
        data["conversion"] = conversion
    contact_write_back(ctx, target=target, intercom_id=intercom_id, user=user, contact=contact, tags=tags, conversion=conversion)
    if contact is not None:
        ctx.payload_written_back(target, intercom_id, digest)
    if ctx.connector.link_users_in_service:
        linked = _link_company(ctx, message=message, target=target, intercom_id=intercom_id, contact=contact)
        if linked:
            data["company_link"] = linked
        moved = company_moves(ctx, message=message, intercom_id=intercom_id, current_company=(linked or {}).get("company"))
        if moved:
            data["company_moves"] = moved
            if moved.get("detached"):  # the membership changed in Intercom, even when the contact's payload did not
                status, reason, text = SyncLog.Status.SUCCESS, "", moved_text(moved)
    ctx.log(target, status, reason=reason, message=text, intercom_id=intercom_id, data=data, **common)
    return ContactOutcome(status, intercom_id=intercom_id, contact=contact, data=data)
