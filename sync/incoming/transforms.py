"""Intercom contact -> Hull user, Intercom company -> Hull account (docs/intercom-behaviour.md#contact-to-hull-user, #company-to-hull-account).

Transforms return values (`HullUserUpdate`, `HullAccountUpdate`) rather than writing to Hull, so
the legacy attribute mode (sync/legacy.py) can extend them and the fetch and webhook
paths send them the same way (sync/incoming/ingest.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.defaults import ACCOUNT_GROUP, LEAD_GROUP, USER_GROUP
from sync.identity import company_anonymous_id, contact_anonymous_id, lead_visitor_anonymous_ids
from sync.incoming.context import IncomingContext
from sync.incoming.payloads import V1_MARK, dotted_get
from sync.mapping import claim_rows, map_incoming, mapping_rows
from sync.intercom.errors import IntercomNotFound
from sync.models import Direction

GROUP_FOR_ROLE = {"user": USER_GROUP, "lead": LEAD_GROUP}
logger = logging.getLogger(__name__)


@dataclass
class HullUserUpdate:
    """One Hull user write for one Intercom contact: a `traits` call, then aliases and an account link."""

    role: str  # "user" | "lead"
    intercom_id: str
    claims: dict[str, Any]
    traits: dict[str, Any]
    aliases: list[str] = field(default_factory=list)
    account_link: dict[str, Any] | None = None
    updated_at: int | None = None
    # Lists Intercom could not give us (the contact was deleted or merged since): not written.
    not_enriched: list[str] = field(default_factory=list)

    @property
    def group(self) -> str:
        return GROUP_FOR_ROLE[self.role]

    @property
    def email(self) -> str:
        return str(self.claims.get("email") or "")

    @property
    def external_id(self) -> str:
        return str(self.claims.get("external_id") or "")


@dataclass
class HullAccountUpdate:
    intercom_id: str
    claims: dict[str, Any]
    traits: dict[str, Any]
    updated_at: int | None = None

    @property
    def external_id(self) -> str:
        return str(self.claims.get("external_id") or "")


def contact_claims(ctx: IncomingContext, role: str, contact: Mapping[str, Any]) -> dict[str, Any]:
    """Identity claims from the connector's claim rows, plus the role's anonymous id (docs/intercom-behaviour.md#contact-to-hull-user, rules 1 and 8)."""
    claims = _claims(ctx, role, contact)
    if role == "lead" and contact.get(V1_MARK):
        # A 1.x lead's `user_id` is a visitor id Intercom made up: claiming it as the Hull
        # `external_id` would merge strangers and later steer outgoing updates.
        claims.pop("external_id", None)
    claims["anonymous_id"] = contact_anonymous_id(role, str(contact["id"]))
    return claims


def contact_to_hull_user(ctx: IncomingContext, contact: Mapping[str, Any], *, role: str | None = None) -> HullUserUpdate:
    """The Hull write for one (normalised) contact. May call Intercom for tags, companies, segments.

    The mapping rules themselves are sync/mapping.py's `map_incoming`; this function resolves the
    name lists it cannot resolve without API calls (docs/intercom-behaviour.md#contact-to-hull-user, rules 4-6) and adds identity and links.
    """
    role = role or str(contact.get("role") or "user")
    group = GROUP_FOR_ROLE[role]
    intercom_id = str(contact["id"])
    mapped = {row.intercom_attribute for row in mapping_rows(ctx.connector, role, Direction.INCOMING)}
    source = dict(contact)
    company_names: list[str] | None = None
    segment_names: list[str] | None = None
    account_link: dict[str, Any] | None = None
    not_enriched: list[str] = []
    # A contact deleted or merged before this delivery is read answers 404 to every enrichment
    # call: write what the payload has, leave out the lists we could not read (never a guessed
    # empty list), and say so in the SyncLog row. No retry: the contact will not come back.
    if "tags" in mapped:
        try:
            source["tags"] = {"type": "list", "data": [{"name": name} for name in contact_tag_names(ctx, contact)]}
        except IntercomNotFound:
            source.pop("tags", None)
            not_enriched.append("tags")
    if "companies" in mapped or ctx.connector.link_users_in_hull:
        try:
            company_names, account_link = _contact_companies(ctx, contact)
        except IntercomNotFound:
            source.pop("companies", None)
            not_enriched.append("companies")
    if "segments" in mapped:
        try:
            segment_names = _segment_names(ctx.intercom.list_contact_segments(intercom_id))
        except IntercomNotFound:
            not_enriched.append("segments")
    traits = map_incoming(ctx.connector, role, source, company_names=company_names, segment_names=segment_names)
    traits[f"{group}/id"] = intercom_id
    update = HullUserUpdate(
        role=role,
        intercom_id=intercom_id,
        claims=contact_claims(ctx, role, contact),
        traits=traits,
        account_link=account_link,
        updated_at=contact.get("updated_at") if isinstance(contact.get("updated_at"), int) else None,
        not_enriched=not_enriched,
    )
    if not_enriched:
        logger.info("intercom.incoming.not-enriched", extra={"intercom_id": intercom_id, "lists": not_enriched})
    update.aliases.extend(lead_visitor_anonymous_ids({**contact, "role": role}))  # the browser snippet's alias
    if ctx.connector.legacy_attribute_mode:
        apply_legacy_attribute_mode(update, connector=ctx.connector)
    return update


def apply_legacy_attribute_mode(update: HullUserUpdate, *, connector: Any = None) -> None:
    """Legacy migration: also the `intercom/` group and the `intercom:<id>` aliases (docs/decisions.md#legacy-migration).

    With `connector`, a lead whose email claim is a known Intercom user's email (IdentityLink) is
    that user's Hull profile: it adds its legacy aliases but no `intercom/` traits, so it cannot
    flip the user's `intercom/is_lead` back to true (sync/legacy.py). Without it, or when
    nothing is known, every legacy trait and id is sent.
    """
    from sync.legacy import legacy_contact_update, legacy_known_anonymous_ids

    known = None
    if connector is not None:
        known = legacy_known_anonymous_ids(connector=connector, role=update.role, email=update.email)
    legacy = legacy_contact_update(
        target=update.role, group_traits=update.traits, intercom_id=update.intercom_id, existing_anonymous_ids=known
    )
    update.traits.update(legacy.traits)
    update.aliases.extend(alias for alias in legacy.anonymous_ids if alias not in update.aliases)


def company_to_hull_account(ctx: IncomingContext, company: Mapping[str, Any]) -> HullAccountUpdate:
    """The Hull account write for one (normalised) company (docs/intercom-behaviour.md#company-to-hull-account); tags come with the company."""
    intercom_id = str(company["id"])
    mapped = {row.intercom_attribute for row in mapping_rows(ctx.connector, "company", Direction.INCOMING)}
    segment_names = _segment_names(ctx.intercom.list_company_segments(intercom_id)) if "segments" in mapped else None
    source = dict(company)
    tags = company.get("tags")
    if isinstance(tags, Mapping) and "data" not in tags:
        source["tags"] = {"data": [t for t in tags.get("tags") or [] if isinstance(t, Mapping)]}
    elif "tags" in mapped and tags is None:
        # Webhook companies carry `tag_ids`, not `tags`. Never write a list we did not read: the
        # ids are named from the workspace's tag list, and with no ids (or an unknown id) the
        # trait is left alone rather than wiped with [].
        names = _company_tag_names(ctx, company.get("tag_ids"))
        if names is None:
            source.pop("tags", None)
        else:
            source["tags"] = {"data": [{"name": name} for name in names]}
    traits = map_incoming(ctx.connector, "company", source, segment_names=segment_names)
    traits[f"{ACCOUNT_GROUP}/id"] = intercom_id
    claims = _claims(ctx, "company", company)
    claims["anonymous_id"] = company_anonymous_id(intercom_id)
    updated_at = company.get("updated_at")
    return HullAccountUpdate(
        intercom_id=intercom_id, claims=claims, traits=traits, updated_at=updated_at if isinstance(updated_at, int) else None
    )


def _company_tag_names(ctx: IncomingContext, tag_ids: Any) -> list[str] | None:
    """Names for a webhook company's `tag_ids`; None when there are none to read or one is unknown."""
    if not isinstance(tag_ids, list):
        return None
    names: list[str] = []
    for tag_id in tag_ids:
        tag_id = tag_id.get("id") if isinstance(tag_id, Mapping) else tag_id
        name = ctx.tag_name(str(tag_id))
        if name is None:
            return None
        names.append(name)
    return _unique(names)


def _claims(ctx: IncomingContext, entity: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for row in claim_rows(ctx.connector, entity):
        value = dotted_get(obj, row.intercom_attribute)
        if value is not None and value != "":
            claims[row.hull_attribute] = value
    return claims


def contact_tag_names(ctx: IncomingContext, contact: Mapping[str, Any]) -> list[str]:
    """The contact's tag names (docs/intercom-behaviour.md#contact-to-hull-user rule 4): the payload's names, else the workspace's tag list,
    else `GET /contacts/{id}/tags` when the embedded list is truncated or names an unknown id."""
    tags = contact.get("tags") or {}
    items = list(tags.get("data") or []) if isinstance(tags, Mapping) else []
    if not items and not (isinstance(tags, Mapping) and tags.get("has_more")):
        return []
    names: list[str] = []
    if not tags.get("has_more"):
        for item in items:
            name = item.get("name") or ctx.tag_name(str(item.get("id")))
            if name is None:
                break
            names.append(name)
        else:
            return _unique(names)
    listing = ctx.intercom.list_contact_tags(str(contact["id"]))
    return _unique(tag.get("name") for tag in _list_data(listing))


def _contact_companies(ctx: IncomingContext, contact: Mapping[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    """Company names, and the account to link when `link_users_in_hull` and exactly one company (docs/intercom-behaviour.md#contact-to-hull-user rule 5)."""
    companies = contact.get("companies") or {}
    items = list(companies.get("data") or []) if isinstance(companies, Mapping) else []
    if not items and not (isinstance(companies, Mapping) and companies.get("has_more")):
        return [], None
    if companies.get("type") == "company.list":
        # 1.x webhook payload: names are in it; Hull's connector never linked these.
        return _unique(item.get("name") for item in items), None
    listed = _list_data(ctx.intercom.list_contact_companies(str(contact["id"])))
    link = None
    if ctx.connector.link_users_in_hull and len(listed) == 1 and listed[0].get("id"):
        link = {"anonymous_id": company_anonymous_id(str(listed[0]["id"]))}
    return _unique(company.get("name") for company in listed), link


def _segment_names(listing: Any) -> list[str]:
    return _unique(segment.get("name") for segment in _list_data(listing))


def _list_data(listing: Any) -> list[dict[str, Any]]:
    """Intercom list responses: `{"data": [...]}`, or a plain list from an iterator helper."""
    if isinstance(listing, Mapping):
        for key in ("data", "tags", "companies", "segments"):
            if isinstance(listing.get(key), list):
                return listing[key]
        return []
    return list(listing or [])


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value is not None and value not in seen:
            seen.append(value)
    return seen
