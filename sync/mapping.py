"""Attribute mapping both ways: Hull attributes -> Intercom fields, Intercom objects -> Hull traits.

One place for the rules both directions share (docs/intercom-behaviour.md#outgoing-contacts, #contact-to-hull-user,
docs/decisions.md#attributes-and-events):

- Outgoing: a mapping's Hull value is read from the user (`email`, `intercom_user/name`), the
  account (`account.<attr>`) or the segment lists (`segments.name[]`). Values for Intercom's
  standard fields go top-level, everything else under `custom_attributes`. Intercom has no array
  or object type for custom attributes, so those are JSON-encoded; strings over Intercom's
  255-character limit are truncated and the truncation reported to the caller (who logs it).
  Hull dates (ISO-8601) become unix seconds, Intercom's only date representation.
- Outgoing `overwrite: false` means "only set when Intercom has no value": we cannot know that
  without reading the contact first, so such a mapping is sent when the contact is created
  and left out of updates.
- Incoming: `map_incoming(connector, entity, intercom_object)` applies the incoming mappings of
  the entity to one Intercom contact or company, giving Hull traits where `overwrite: false`
  becomes `{"operation": "setIfNull", ...}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.defaults import ACCOUNT_GROUP, LEAD_GROUP, USER_GROUP
from sync.hull.messages import parse_hull_datetime  # one reading of Hull's date formats
from sync.models import Connector, Direction, Entity, FieldMapping, IdentityClaim

# Top-level writable fields of Intercom's create/update contact request (API 2.15); any other
# outgoing target is a custom attribute.
CONTACT_STANDARD_FIELDS = frozenset(
    {
        "role",
        "external_id",
        "email",
        "phone",
        "name",
        "avatar",
        "signed_up_at",
        "last_seen_at",
        "owner_id",
        "unsubscribed_from_emails",
    }
)
# Top-level fields of `POST /companies` (create or update by company_id).
COMPANY_STANDARD_FIELDS = frozenset(
    {"name", "company_id", "plan", "size", "website", "industry", "remote_created_at", "monthly_spend"}
)
# Standard fields Intercom takes as unix seconds.
STANDARD_DATE_FIELDS = frozenset({"signed_up_at", "last_seen_at", "remote_created_at"})
# Intercom rejects longer custom-attribute strings (docs/intercom-api.md#data-attributes).
CUSTOM_STRING_LIMIT = 255

GROUP_FOR_ENTITY: dict[str, str] = {Entity.USER: USER_GROUP, Entity.LEAD: LEAD_GROUP, Entity.COMPANY: ACCOUNT_GROUP}
# Incoming Intercom fields with their own handling in `map_incoming` (lists of names, not paths).
_SPECIAL_INCOMING = frozenset({"email", "tags", "companies", "segments", "social_profiles"})


class _Missing:
    """A Hull attribute absent from the message: not written (unlike null, which is)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class OutgoingAttributes:
    """The Intercom body built from the outgoing mappings, plus what had to be cut to fit."""

    payload: dict[str, Any] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)  # Intercom attribute names cut to the limit
    # Hull value of each custom attribute before encoding: decides the data type if it must be created.
    custom_sources: dict[str, Any] = field(default_factory=dict)


# --- configuration rows, read once per connector instance ----------------------------------------


def mapping_rows(connector: Connector, entity: str, direction: str) -> list[FieldMapping]:
    """The connector's mappings for one entity and direction.

    Cached on the connector instance: a notification loads its connector once, so the rows are
    read once per notification, and a settings change is seen by the next one.
    """
    cache: dict[tuple[str, str], list[FieldMapping]] = connector.__dict__.setdefault("_mapping_rows", {})
    key = (str(entity), str(direction))
    if key not in cache:
        cache[key] = list(FieldMapping.objects.filter(connector=connector, entity=entity, direction=direction).order_by("id"))
    return cache[key]


def claim_rows(connector: Connector, entity: str) -> list[IdentityClaim]:
    """Identity claims of one entity, in priority order (cached like `mapping_rows`)."""
    cache: dict[str, list[IdentityClaim]] = connector.__dict__.setdefault("_claim_rows", {})
    if str(entity) not in cache:
        cache[str(entity)] = list(IdentityClaim.objects.filter(connector=connector, entity=entity).order_by("priority", "id"))
    return cache[str(entity)]


def forget_configuration(connector: Connector) -> None:
    """Drop the cached rows (after settings were saved in this process)."""
    connector.__dict__.pop("_mapping_rows", None)
    connector.__dict__.pop("_claim_rows", None)


# --- value coercion ------------------------------------------------------------------------------


def to_unix_seconds(value: Any) -> int | None:
    """Unix seconds for Intercom. Fractions round up, like Hull's connector (`ceil(ms/1000)`)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    parsed = parse_hull_datetime(value)
    if parsed is None:
        return None
    try:
        return math.ceil(parsed.timestamp())
    except (OverflowError, OSError, ValueError):  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 UTC
        return None


def is_date_attribute(name: str) -> bool:
    """Hull types attributes named `*_at` / `*_date` as dates; so do we when creating them in Intercom."""
    bare = name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return bare.endswith("_at") or bare.endswith("_date")


def _stringify_nested_arrays(value: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in value.items()}


def coerce_custom_value(value: Any, *, hull_attribute: str = "") -> tuple[Any, bool]:
    """A Hull value as an Intercom custom attribute value; returns (value, truncated)."""
    if isinstance(value, (list, tuple)):
        value = json.dumps(list(value), default=str)
    elif isinstance(value, dict):
        # Intercom refuses nested objects in custom attributes: the whole object becomes JSON text.
        value = json.dumps(value, default=str, sort_keys=True)
    elif is_date_attribute(hull_attribute) and isinstance(value, str):
        seconds = to_unix_seconds(value)
        if seconds is not None:
            return seconds, False
    if isinstance(value, str) and len(value) > CUSTOM_STRING_LIMIT:
        return value[:CUSTOM_STRING_LIMIT], True
    return value, False


def coerce_standard_value(field_name: str, value: Any) -> Any:
    """A Hull value for one of Intercom's top-level fields."""
    if field_name in STANDARD_DATE_FIELDS and value is not None:
        return to_unix_seconds(value)
    if field_name in {"external_id", "company_id"} and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), default=str)
    return value


def intercom_data_type(value: Any, *, hull_attribute: str = "") -> str:
    """Intercom data-attribute type for a Hull value (docs/decisions.md#attributes-and-events: typed from the value, not always string)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "date" if is_date_attribute(hull_attribute) else "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and is_date_attribute(hull_attribute) and to_unix_seconds(value) is not None:
        return "date"
    return "string"


# --- outgoing ------------------------------------------------------------------------------------


def read_hull_value(
    user: Mapping[str, Any],
    hull_attribute: str,
    *,
    account: Mapping[str, Any] | None = None,
    segments: Iterable[Mapping[str, Any]] = (),
    account_segments: Iterable[Mapping[str, Any]] = (),
) -> Any:
    """The value an outgoing mapping reads, or MISSING (docs/intercom-behaviour.md#outgoing-contacts: undefined is not written)."""
    if hull_attribute == "segments.name[]":
        return [s.get("name") for s in segments if s.get("name")]
    if hull_attribute == "account_segments.name[]":
        return [s.get("name") for s in account_segments if s.get("name")]
    if hull_attribute in user:
        return user[hull_attribute]
    if hull_attribute.startswith("account.") and account is not None:
        return account.get(hull_attribute[len("account.") :], MISSING)
    return MISSING


def build_outgoing_attributes(
    connector: Connector,
    entity: str,
    source: Mapping[str, Any],
    *,
    account: Mapping[str, Any] | None = None,
    segments: Iterable[Mapping[str, Any]] = (),
    account_segments: Iterable[Mapping[str, Any]] = (),
    creating: bool = True,
) -> OutgoingAttributes:
    """The Intercom body for one user/lead (`source` = the Hull user) or company (the Hull account).

    Standard fields top-level, the rest in `custom_attributes`. A missing Hull value is not written
    (so it cannot clobber another mapping to the same field); null is written.
    """
    standard = COMPANY_STANDARD_FIELDS if entity == Entity.COMPANY else CONTACT_STANDARD_FIELDS
    segments, account_segments = list(segments), list(account_segments)
    result = OutgoingAttributes()
    custom: dict[str, Any] = {}
    for row in mapping_rows(connector, entity, Direction.OUTGOING):
        if not row.overwrite and not creating:
            continue
        value = read_hull_value(
            source, row.hull_attribute, account=account, segments=segments, account_segments=account_segments
        )
        if value is MISSING:
            continue
        target = row.intercom_attribute
        if target.startswith("custom_attributes."):
            target = target[len("custom_attributes.") :]
        elif target in standard:
            result.payload[target] = coerce_standard_value(target, value)
            continue
        # Typed as Hull has it, for companies too: Intercom types custom attributes by their
        # `data_type` (created typed from the value), and a null clears the value (docs/decisions.md "Attributes and events").
        coerced, truncated = coerce_custom_value(value, hull_attribute=row.hull_attribute)
        custom[target] = coerced
        result.custom_sources[target] = (row.hull_attribute, value)
        if truncated:
            result.truncated.append(target)
    if custom:
        result.payload["custom_attributes"] = custom
    return result


def outgoing_hull_attributes(connector: Connector, entity: str) -> set[str]:
    """The Hull attributes the entity's outgoing mappings read (a change to one triggers a push)."""
    return {row.hull_attribute for row in mapping_rows(connector, entity, Direction.OUTGOING)}


# --- incoming ------------------------------------------------------------------------------------


def _get_path(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return MISSING
        current = current[part]
    return current


def _incoming_value(value: Any, service: str) -> Any:
    # Webhook items carry ISO dates where the REST API has unix seconds; Hull gets seconds either way.
    if isinstance(value, str) and service.endswith("_at"):
        seconds = to_unix_seconds(value)
        return value if seconds is None else seconds
    if isinstance(value, Mapping) and value.get("type") == "avatar":
        return value.get("image_url")
    return value


def _op(value: Any, overwrite: bool) -> Any:
    return value if overwrite else {"operation": "setIfNull", "value": value}


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in (None, "") and value not in seen:
            seen.append(value)
    return seen


def _tag_names(obj: Mapping[str, Any], tag_names: Callable[[str], str | None] | None) -> list[str] | None:
    tags = obj.get("tags")
    if not isinstance(tags, Mapping):
        return None
    items = tags.get("data", tags.get("tags")) or []
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, Mapping) else None
        if name is None and tag_names is not None and isinstance(item, Mapping):
            name = tag_names(str(item.get("id")))
        if name is None:
            return None  # an unknown tag: better not to write a partial list
        names.append(name)
    return _unique(names)


def map_incoming(
    connector: Connector,
    entity: str,
    intercom_object: Mapping[str, Any],
    *,
    tag_names: Callable[[str], str | None] | None = None,
    company_names: list[str] | None = None,
    segment_names: list[str] | None = None,
) -> dict[str, Any]:
    """Hull traits for one Intercom contact (entity user/lead) or company, per the incoming mappings.

    Plain values are `set`, `overwrite: false` rows become setIfNull; null is written, an absent
    field is not. Lists of names (tags, companies, segments) are written only when they can be
    resolved without API calls here: the caller passes `tag_names` (id -> name), `company_names`
    or `segment_names` when it has them. Includes the top-level `name` as setIfNull.
    """
    traits: dict[str, Any] = {}
    for row in mapping_rows(connector, entity, Direction.INCOMING):
        service, hull = row.intercom_attribute, row.hull_attribute
        if service == "email":
            if intercom_object.get("email"):
                traits[hull] = intercom_object["email"]
            continue
        if service == "tags":
            names = _tag_names(intercom_object, tag_names)
            if names is not None:
                traits[hull] = _op(names, row.overwrite)
            continue
        if service == "companies":
            if company_names is not None:
                traits[hull] = _op(_unique(company_names), row.overwrite)
            else:
                companies = intercom_object.get("companies")
                items = companies.get("data", companies.get("companies")) if isinstance(companies, Mapping) else None
                if items == []:
                    traits[hull] = _op([], row.overwrite)
                elif items and all(isinstance(i, Mapping) and i.get("name") for i in items):
                    traits[hull] = _op(_unique(i["name"] for i in items), row.overwrite)
            continue
        if service == "segments":
            if segment_names is not None:
                traits[hull] = _op(_unique(segment_names), row.overwrite)
            continue
        if service == "social_profiles":
            profiles = intercom_object.get("social_profiles")
            items = profiles.get("data", profiles.get("social_profiles")) if isinstance(profiles, Mapping) else None
            if items is None:
                continue
            group = hull.split("/", 1)[0] if "/" in hull else GROUP_FOR_ENTITY.get(entity, USER_GROUP)
            for profile in items:
                if isinstance(profile, Mapping) and profile.get("name") and profile.get("url"):
                    traits[f"{group}/{str(profile['name']).lower()}_url"] = profile["url"]
            traits[hull] = _op(_unique(p.get("url") for p in items if isinstance(p, Mapping)), row.overwrite)
            continue
        value = _get_path(intercom_object, service)
        if value is MISSING:
            continue
        traits[hull] = _op(_incoming_value(value, service), row.overwrite)
    if intercom_object.get("name") is not None:
        traits["name"] = {"operation": "setIfNull", "value": intercom_object["name"]}
    return traits
