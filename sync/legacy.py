"""Legacy attribute mode: what the spec's migration processor script did, done by the connector.

The spec ("Migrate From the Intercom Legacy Connector", action item 4) asks customers moving from
the API-1.x connector to install a Hull processor that copies `intercom_user/*` or
`intercom_lead/*` into the single legacy `intercom/` group and re-creates the legacy anonymous ids
(`intercom:<id>`), so profiles the legacy connector created keep merging. A connector with
`legacy_attribute_mode` on does the same for every incoming contact, without a processor.

The script, branch by branch (and how each maps here):

- `target = intercom_user.id ? "user" : "lead"` -> `target` is the role of the incoming contact.
  When the Hull user is known to also have an Intercom *user* profile (an `intercom-user:`
  anonymous id), the script would have copied the user's traits, not the lead's: a lead then adds
  no `intercom/` traits, so a lead can never flip a converted user back to `is_lead: true`.
- `if (!isEmpty(targetTraits) && !isNil(targetId))` -> nothing at all without traits or an id.
- `createLegacyAnonIds`:
  - `intercom:<intercom id>` unless the user already has it. The script's literal condition is
    `target === "user"`; docs/decisions.md#legacy-migration (and issue 8) extend it to leads, which is harmless (no
    other Hull user carries a lead's Intercom id) and lets a lead be found by its Intercom id.
  - leads with an external id (`intercom_lead/user_id`, the 1.x lead `user_id`, which is also the
    browser's `Intercom('getVisitorId')`): `intercom:<external id>` unless already present. That
    is the id the legacy connector and the legacy browser snippet used for leads.
- `createLegacyAttributes`:
  - lead: `anonymous: true`, `is_lead: true`, `lead_user_id: <user_id>`, `user_id: null`;
    `_.set(traits, "lead_user_id", undefined)` disappears in JSON, so `lead_user_id` is only
    written when the lead's traits carry a `user_id` key (a null `user_id` writes null);
  - user: `is_lead: false`, `anonymous: false`;
  - every key is then prefixed with `intercom/`.

`legacy_contact_update` is pure: the caller (the incoming transform) adds `traits` to the contact's
firehose `traits` call and sends one `alias` per entry of `anonymous_ids`.
`legacy_known_anonymous_ids` is the one database read: it tells a lead whether its Hull user is
also a known Intercom user, for `existing_anonymous_ids`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.identity import (  # noqa: F401 - LEGACY_ANONYMOUS_PREFIX: imported from here too
    LEAD_GROUP,
    LEGACY_ANONYMOUS_PREFIX,
    LEGACY_GROUP,
    USER_ANONYMOUS_PREFIX,  # a Hull user holding one has an Intercom user profile: its traits win
    USER_GROUP,
    legacy_anonymous_id,
)

_GROUP_FOR_TARGET = {"user": USER_GROUP, "lead": LEAD_GROUP}


@dataclass(frozen=True)
class LegacyUpdate:
    """What legacy mode adds to one incoming contact's Hull write."""

    traits: dict[str, Any] = field(default_factory=dict)  # "intercom/<name>" -> value or {"operation", "value"}
    anonymous_ids: list[str] = field(default_factory=list)  # each sent as a firehose `alias`

    def __bool__(self) -> bool:
        return bool(self.traits or self.anonymous_ids)



def legacy_contact_update(
    *,
    target: str,
    group_traits: Mapping[str, Any],
    intercom_id: str | None,
    existing_anonymous_ids: Collection[str] | None = None,
) -> LegacyUpdate:
    """The `intercom/` traits and legacy anonymous ids for one incoming contact.

    `target` is "user" or "lead". `group_traits` are the contact's mapped traits, keyed either by
    full name (`intercom_lead/email`; keys outside the target's group, such as the top-level
    `name` or the social `intercom_user/twitter_url` of the other role, are ignored) or all by bare
    name (`email`). Values may be plain or Hull operation objects
    (`{"operation": "setIfNull", "value": v}`); operations are kept as they are.
    `existing_anonymous_ids` are the Hull user's anonymous ids when known (None: unknown, so every
    legacy id is sent; Hull treats a repeated alias as a no-op).
    """
    if target not in _GROUP_FOR_TARGET:
        raise ValueError(f"legacy mode handles users and leads, not {target!r}")
    traits = _strip_group(group_traits, _GROUP_FOR_TARGET[target])
    if not traits or intercom_id in (None, ""):
        return LegacyUpdate()

    existing = set(existing_anonymous_ids or ())
    anonymous_ids = _legacy_anonymous_ids(target, traits, str(intercom_id), existing)
    user_profile_wins = target == "lead" and any(aid.startswith(USER_ANONYMOUS_PREFIX) for aid in existing)
    legacy_traits = {} if user_profile_wins else _legacy_traits(target, traits)
    return LegacyUpdate(traits=legacy_traits, anonymous_ids=anonymous_ids)


def _strip_group(group_traits: Mapping[str, Any], group: str) -> dict[str, Any]:
    """Group-relative names. Full names select the group; a dict of bare names is the group already."""
    if not any("/" in key for key in group_traits):
        return dict(group_traits)
    prefix = group + "/"
    return {key[len(prefix) :]: value for key, value in group_traits.items() if key.startswith(prefix)}


def _plain(value: Any) -> Any:
    """The value inside a Hull operation object, or the value itself."""
    if isinstance(value, Mapping) and "operation" in value:
        return value.get("value")
    return value


def _legacy_anonymous_ids(target: str, traits: Mapping[str, Any], intercom_id: str, existing: set[str]) -> list[str]:
    wanted = [legacy_anonymous_id(intercom_id)]
    external_id = _plain(traits.get("user_id"))
    if target == "lead" and external_id not in (None, ""):
        wanted.append(legacy_anonymous_id(str(external_id)))
    result: list[str] = []
    for anonymous_id in wanted:
        if anonymous_id not in existing and anonymous_id not in result:
            result.append(anonymous_id)
    return result


def _legacy_traits(target: str, traits: Mapping[str, Any]) -> dict[str, Any]:
    legacy = dict(traits)
    if target == "lead":
        legacy["anonymous"] = True
        legacy["is_lead"] = True
        if "user_id" in traits:
            legacy["lead_user_id"] = _plain(traits["user_id"])
        legacy["user_id"] = None
    else:
        legacy["is_lead"] = False
        legacy["anonymous"] = False
    return {f"{LEGACY_GROUP}/{key}": value for key, value in legacy.items()}


def legacy_known_anonymous_ids(*, connector: Any, role: str, email: str) -> list[str] | None:
    """What the connector knows of the Hull user's anonymous ids, for `existing_anonymous_ids`.

    The incoming path never reads the Hull profile. But a lead whose email is also an Intercom
    user's email is the same Hull user (Hull merges on the email claim), and the script would copy
    that user's traits, not the lead's. IdentityLink knows such users. None means "unknown".
    """
    if role != "lead" or not email:
        return None
    from sync.models import Entity, IdentityLink

    user_ids = IdentityLink.objects.filter(connector=connector, entity=Entity.USER, email__iexact=email).values_list(
        "intercom_id", flat=True
    )
    known = [f"{USER_ANONYMOUS_PREFIX}user-{intercom_id}" for intercom_id in user_ids]
    return known or None
