"""Intercom payload shapes, normalised: the webhook envelope, and contacts/companies in 1.x or 2.x form.

Everything downstream (transforms, topic handlers) sees one shape: the v2 REST contact/company
with unix-second integer timestamps. Webhooks from apps on API 1.x send `user`/`contact` objects
with `user_id`, ISO dates, `location_data` and `*.companies`/`*.tags` wrappers; 2.x webhooks send
the v2 contact, sometimes with ISO timestamps (docs/intercom-api.md#webhooks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.ids import delivery_key
from sync.mapping import to_unix_seconds  # ISO -> ceil(unix s), ms -> s: one rule for both directions

# Contact/company fields that are timestamps in either shape.
CONTACT_TIME_FIELDS = (
    "created_at",
    "updated_at",
    "signed_up_at",
    "last_seen_at",
    "last_replied_at",
    "last_contacted_at",
    "last_email_opened_at",
    "last_email_clicked_at",
    "android_last_seen_at",
    "ios_last_seen_at",
)
# Set on contacts normalised from a 1.x payload: their `external_id` may be a lead's visitor id.
V1_MARK = "_from_api_1x"
COMPANY_TIME_FIELDS = ("created_at", "updated_at", "remote_created_at", "last_request_at")


@dataclass(frozen=True)
class IntercomNotification:
    """One webhook notification (Intercom's `notification_event` envelope)."""

    notification_id: str
    topic: str
    created_at: int | None
    app_id: str
    item: dict[str, Any]
    delivery_attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def item_type(self) -> str:
        return str(self.item.get("type") or "")


def notification_from_payload(payload: Mapping[str, Any], raw_body: bytes | None = None) -> IntercomNotification:
    """Read the envelope. A missing `id` (Intercom sent `null` for some topics) becomes a body hash,
    so a redelivery of the same bytes is still recognised as a duplicate."""
    notification_id = payload.get("id")
    if not notification_id:
        digest_source = raw_body if raw_body is not None else repr(sorted(payload.items())).encode()
        notification_id = "sha1-" + hashlib.sha1(digest_source).hexdigest()  # noqa: S324 - an id, not security
    data = value if isinstance(value := payload.get("data"), Mapping) else {}
    item = value if isinstance(value := data.get("item"), Mapping) else {}
    attempts = payload.get("delivery_attempts")
    return IntercomNotification(
        notification_id=delivery_key(notification_id),
        topic=str(payload.get("topic") or "")[:128],
        created_at=to_unix_seconds(payload.get("created_at")),
        app_id=str(payload.get("app_id") or ""),
        item=dict(item),
        delivery_attempts=attempts if isinstance(attempts, int) and attempts > 0 else 1,
        raw=dict(payload),
    )


def is_v1_contact(item: Mapping[str, Any]) -> bool:
    """A 1.x `user`/`contact` (lead) object rather than a v2 contact (which always carries `role`)."""
    if "role" in item or "external_id" in item:
        return False
    # A 1.x lead is `type: "contact"` too, but always carries `user_id` (and `anonymous`); a slim
    # 2.x contact carries neither.
    return item.get("type") in ("user", "lead") or "user_id" in item or "location_data" in item or "anonymous" in item


def contact_role(item: Mapping[str, Any]) -> str | None:
    """`user` or `lead` from either shape; None when the payload does not say (slim deletes)."""
    role = item.get("role")
    if role in ("user", "lead"):
        return str(role)
    if "role" not in item and is_v1_contact(item):
        if item.get("anonymous") is True:
            return "lead"  # API 1.x user topics can carry a lead: the item, not the topic, decides
        return "user" if item.get("type") == "user" else "lead" if item.get("type") in ("contact", "lead") else None
    return None


def normalise_contact(item: Mapping[str, Any], *, role: str | None = None) -> dict[str, Any]:
    """A contact in the v2 REST shape with integer timestamps, whichever shape it arrived in."""
    contact = _v1_contact_to_v2(item) if is_v1_contact(item) else dict(item)
    if role:
        contact["role"] = role
    for name in CONTACT_TIME_FIELDS:
        if name in contact:
            contact[name] = to_unix_seconds(contact[name])
    avatar = contact.get("avatar")
    if isinstance(avatar, Mapping):  # v2 REST: {"type": "avatar", "image_url": ...}; we store the URL.
        contact["avatar"] = avatar.get("image_url")
    return contact


def _v1_contact_to_v2(item: Mapping[str, Any]) -> dict[str, Any]:
    """The 1.x contact as v2. A 1.x lead's `user_id` is a visitor id Intercom made up, never the
    customer's user id: it stays `external_id` here (the snippet alias reads it) but a lead's
    claims never carry it (transforms.contact_claims)."""
    location = item.get("location_data") or {}
    social = item.get("social_profiles") or {}
    companies = item.get("companies") or {}
    tags = item.get("tags") or {}
    contact: dict[str, Any] = {
        "type": "contact",
        "id": item.get("id"),
        "role": contact_role(item),
        "external_id": item.get("user_id"),
        "email": item.get("email"),
        "name": item.get("name"),
        "avatar": item.get("avatar"),
        "phone": item.get("phone"),
        "owner_id": item.get("owner_id"),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
        "signed_up_at": item.get("signed_up_at"),
        # 1.x `last_request_at` is what 2.x calls `last_seen_at`.
        "last_seen_at": item.get("last_request_at"),
        "custom_attributes": dict(item.get("custom_attributes") or {}),
        "location": {
            "type": "location",
            "country": location.get("country_name"),
            "region": location.get("region_name"),
            "city": location.get("city_name"),
        },
        "social_profiles": {"type": "list", "data": list(social.get("social_profiles") or social.get("data") or [])},
        # "company.list" marks names that came in the payload: no API call, no account linking (docs/intercom-behaviour.md#contact-to-hull-user).
        "companies": {"type": "company.list", "data": list(companies.get("companies") or companies.get("data") or [])},
        "tags": {"type": "tag.list", "data": list(tags.get("tags") or tags.get("data") or []), "has_more": False},
    }
    contact[V1_MARK] = True
    # Kept when the 1.x object carries them (Hull's normaliser dropped them; we keep what we get).
    for name in ("has_hard_bounced", "marked_email_as_spam", "unsubscribed_from_emails", "last_seen_ip"):
        if name in item:
            contact[name] = item[name]
    return contact


def normalise_company(item: Mapping[str, Any]) -> dict[str, Any]:
    """A company with integer timestamps and tags as `{"tags": [{"name": ...}]}` when present."""
    company = dict(item)
    for name in COMPANY_TIME_FIELDS:
        if name in company:
            company[name] = to_unix_seconds(company[name])
    return company


def dotted_get(obj: Any, path: str, default: Any = None) -> Any:
    """`lodash.get`: `location.city`, `custom_attributes.job_title`; `default` when a step is missing."""
    current = obj
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return default
    return current
