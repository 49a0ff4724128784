"""Defaults a new connector starts with (docs/intercom-behaviour.md#settings, docs/decisions.md#identity)."""

from __future__ import annotations

from sync.identity import ACCOUNT_GROUP, LEAD_GROUP, OWN_GROUPS, USER_GROUP  # noqa: F401 - their home is sync/identity.py

# Intercom contact field -> attribute name inside the Hull group (intercom_user/ or intercom_lead/).
# The first three are read-only: they carry identity and must not be remapped away.
CONTACT_INCOMING_FIELDS: list[tuple[str, str]] = [
    ("external_id", "user_id"),
    ("id", "id"),
    ("email", "email"),
    ("avatar", "avatar"),
    ("browser", "browser"),
    ("browser_language", "browser_language"),
    ("browser_version", "browser_version"),
    ("companies", "companies"),
    ("created_at", "created_at"),
    ("has_hard_bounced", "has_hard_bounced"),
    ("language_override", "language_override"),
    ("last_contacted_at", "last_contacted_at"),
    ("last_email_clicked_at", "last_email_clicked_at"),
    ("last_email_opened_at", "last_email_opened_at"),
    ("last_replied_at", "last_replied_at"),
    ("last_seen_at", "last_seen_at"),
    ("location.city", "location_city_name"),
    ("location.country", "location_country_name"),
    ("location.region", "location_region_name"),
    ("marked_email_as_spam", "marked_email_as_spam"),
    ("name", "name"),
    ("os", "os"),
    ("owner_id", "owner_id"),
    ("phone", "phone"),
    ("signed_up_at", "signed_up_at"),
    ("social_profiles", "social_profiles"),
    ("tags", "tags"),
    ("unsubscribed_from_emails", "unsubscribed_from_emails"),
    ("updated_at", "updated_at"),
]
CONTACT_READ_ONLY = {"external_id", "id", "email"}

COMPANY_INCOMING_FIELDS: list[tuple[str, str]] = [
    ("id", "id"),
    ("company_id", "company_id"),
    ("website", "website"),
    ("tags", "tags"),
]


# (hull attribute, intercom field), in priority order: external_id before email (docs/decisions.md#identity).
DEFAULT_CLAIMS: dict[str, list[tuple[str, str]]] = {
    "user": [("external_id", "external_id"), ("email", "email")],
    "lead": [("email", "email")],
    "company": [("external_id", "company_id"), ("domain", "website")],
}
