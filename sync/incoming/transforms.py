"""Intercom contact -> Hull user, Intercom company -> Hull account (reference/hull-intercom-behaviour.md §4).

Transforms return values (`HullUserUpdate`, `HullAccountUpdate`) rather than writing to Hull, so
the legacy attribute mode (sync/incoming/legacy.py) can extend them and the fetch and webhook
paths send them the same way (sync/incoming/ingest.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.defaults import ACCOUNT_GROUP, LEAD_GROUP, USER_GROUP
from sync.incoming.context import IncomingContext, IncomingMapping
from sync.incoming.payloads import dotted_get

GROUP_FOR_ROLE = {"user": USER_GROUP, "lead": LEAD_GROUP}
# Contact fields with their own rule (§4.1 rules 3-7); every other mapped field is read by path.
SPECIAL_CONTACT_FIELDS = {"email", "tags", "companies", "segments", "social_profiles"}
SPECIAL_COMPANY_FIELDS = {"tags", "segments"}
_MISSING = object()


def set_if_null(value: Any) -> dict[str, Any]:
    """Hull's operation object: write only when the attribute is empty."""
    return {"operation": "setIfNull", "value": value}


def contact_anonymous_id(role: str, intercom_id: str) -> str:
    return f"intercom-{role}:{role}-{intercom_id}"


def company_anonymous_id(intercom_id: str) -> str:
    return f"intercom:{intercom_id}"


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
    """Identity claims from the connector's claim rows, plus the role's anonymous id (§4.1 rule 1, 8)."""
    claims: dict[str, Any] = {}
    for hull_attribute, intercom_field in ctx.claims.get(role, []):
        value = dotted_get(contact, intercom_field)
        if value is not None and value != "":
            claims[hull_attribute] = value
    claims["anonymous_id"] = contact_anonymous_id(role, str(contact["id"]))
    return claims


def contact_to_hull_user(ctx: IncomingContext, contact: Mapping[str, Any], *, role: str | None = None) -> HullUserUpdate:
    """The Hull write for one (normalised) contact. May call Intercom for tags, companies, segments."""
    role = role or str(contact.get("role") or "user")
    group = GROUP_FOR_ROLE[role]
    intercom_id = str(contact["id"])
    traits: dict[str, Any] = {}
    account_link: dict[str, Any] | None = None
    mappings = ctx.mappings.get(role, [])
    mapped_fields = {m.intercom_attribute for m in mappings}
    company_names: list[str] | None = None

    if "companies" in mapped_fields or ctx.connector.link_users_in_hull:
        company_names, account_link = _contact_companies(ctx, contact)

    for mapping in mappings:
        source = mapping.intercom_attribute
        if source == "email":
            # Written only when present, always `set` (§4.1 rule 3): an empty email never erases one.
            if contact.get("email"):
                traits[mapping.hull_attribute] = contact["email"]
        elif source == "tags":
            traits[mapping.hull_attribute] = contact_tag_names(ctx, contact)
        elif source == "companies":
            traits[mapping.hull_attribute] = company_names or []
        elif source == "segments":
            names = _contact_segment_names(ctx, intercom_id)
            if names is not None:
                traits[mapping.hull_attribute] = names
        elif source == "social_profiles":
            traits.update(_social_profile_traits(contact, group, mapping))
        else:
            _write_mapped(traits, mapping, contact)

    traits[f"{group}/id"] = intercom_id
    if contact.get("name") is not None:
        traits["name"] = set_if_null(contact["name"])
    update = HullUserUpdate(
        role=role,
        intercom_id=intercom_id,
        claims=contact_claims(ctx, role, contact),
        traits=traits,
        account_link=account_link,
        updated_at=contact.get("updated_at") if isinstance(contact.get("updated_at"), int) else None,
    )
    if ctx.connector.legacy_attribute_mode:
        apply_legacy_attribute_mode(update)
    return update


def apply_legacy_attribute_mode(update: HullUserUpdate) -> None:
    """Legacy migration: also the `intercom/` group and the `intercom:<id>` aliases (DECISIONS.md)."""
    from sync.incoming.legacy import legacy_contact_update

    legacy = legacy_contact_update(target=update.role, group_traits=update.traits, intercom_id=update.intercom_id)
    update.traits.update(legacy.traits)
    update.aliases.extend(alias for alias in legacy.anonymous_ids if alias not in update.aliases)


def company_to_hull_account(ctx: IncomingContext, company: Mapping[str, Any]) -> HullAccountUpdate:
    """The Hull account write for one (normalised) company (§4.2)."""
    intercom_id = str(company["id"])
    traits: dict[str, Any] = {}
    for mapping in ctx.mappings.get("company", []):
        if mapping.intercom_attribute == "tags":
            tags = company.get("tags") or {}
            items = tags.get("tags") if isinstance(tags, Mapping) else tags
            traits[mapping.hull_attribute] = _unique(t.get("name") for t in items or [] if isinstance(t, Mapping))
        elif mapping.intercom_attribute == "segments":
            names = _company_segment_names(ctx, intercom_id)
            if names is not None:
                traits[mapping.hull_attribute] = names
        else:
            _write_mapped(traits, mapping, company)
    traits[f"{ACCOUNT_GROUP}/id"] = intercom_id
    if company.get("name") is not None:
        traits["name"] = set_if_null(company["name"])
    claims: dict[str, Any] = {}
    for hull_attribute, intercom_field in ctx.claims.get("company", []):
        value = dotted_get(company, intercom_field)
        if value is not None and value != "":
            claims[hull_attribute] = value
    claims["anonymous_id"] = company_anonymous_id(intercom_id)
    updated_at = company.get("updated_at")
    return HullAccountUpdate(
        intercom_id=intercom_id, claims=claims, traits=traits, updated_at=updated_at if isinstance(updated_at, int) else None
    )


def contact_tag_names(ctx: IncomingContext, contact: Mapping[str, Any]) -> list[str]:
    """The contact's tag names (§4.1 rule 4): the payload's names, else the workspace's tag list,
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
    """Company names, and the account to link when `link_users_in_hull` and exactly one company (§4.1 rule 5)."""
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


def _contact_segment_names(ctx: IncomingContext, intercom_id: str) -> list[str] | None:
    # Adapter: the client contract has no segments call yet; without one the attribute is not written.
    method = getattr(ctx.intercom, "list_contact_segments", None)
    if method is None:
        return None
    return _unique(segment.get("name") for segment in _list_data(method(intercom_id)))


def _company_segment_names(ctx: IncomingContext, intercom_id: str) -> list[str] | None:
    method = getattr(ctx.intercom, "list_company_segments", None)
    if method is None:
        return None
    return _unique(segment.get("name") for segment in _list_data(method(intercom_id)))


def _social_profile_traits(contact: Mapping[str, Any], group: str, mapping: IncomingMapping) -> dict[str, Any]:
    """The mapped list of URLs plus `<group>/<network>_url` per profile (§4.1 rule 7)."""
    profiles = contact.get("social_profiles") or {}
    items = profiles.get("data") if isinstance(profiles, Mapping) else profiles
    traits: dict[str, Any] = {}
    urls = []
    for profile in items or []:
        url = profile.get("url")
        if not url:
            continue
        urls.append(url)
        if profile.get("name"):
            traits[f"{group}/{str(profile['name']).lower()}_url"] = url
    traits[mapping.hull_attribute] = _unique(urls)
    return traits


def _write_mapped(traits: dict[str, Any], mapping: IncomingMapping, source: Mapping[str, Any]) -> None:
    """§4.1 rule 2: a missing field is not written; a null one is (it clears the Hull value)."""
    value = dotted_get(source, mapping.intercom_attribute, _MISSING)
    if value is _MISSING:
        return
    if isinstance(value, Mapping) and value.get("type") == "avatar":
        value = value.get("image_url")
    traits[mapping.hull_attribute] = value if mapping.overwrite else set_if_null(value)


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
