"""Sandbox rows -> Intercom 2.15 JSON shapes (docs/intercom-api.md#contacts, #companies, #tags, #data-attributes)."""

from __future__ import annotations

from typing import Any

from sandbox.intercom.models import Company, Contact, DataAttribute, Tag, Workspace

EMBEDDED_LIMIT = 10  # embedded tags/companies lists show at most 10 items (has_more for the rest)

_NULL_DEVICE_FIELDS = [
    "last_replied_at", "last_contacted_at", "last_email_opened_at", "last_email_clicked_at",
    "language_override", "browser", "browser_version", "browser_language", "os",
    "android_app_name", "android_app_version", "android_device", "android_os_version",
    "android_sdk_version", "android_last_seen_at", "ios_app_name", "ios_app_version", "ios_device",
    "ios_os_version", "ios_sdk_version", "ios_last_seen_at",
]  # fmt: skip


def _embedded(kind: str, contact: Contact, items: list[dict]) -> dict:
    return {
        "type": "list",
        "data": items[:EMBEDDED_LIMIT],
        "url": f"/contacts/{contact.intercom_id}/{kind}",
        "total_count": len(items),
        "has_more": len(items) > EMBEDDED_LIMIT,
    }


def render_contact(contact: Contact, workspace: Workspace) -> dict[str, Any]:
    tags = [
        {"id": ct.tag.tag_id, "type": "tag", "url": f"/tags/{ct.tag.tag_id}"}
        for ct in contact.contacttag_set.all()
    ]
    companies = [
        {"id": c.intercom_id, "type": "company", "url": f"/companies/{c.intercom_id}"} for c in contact.companies.all()
    ]
    email = contact.email or ""
    body: dict[str, Any] = {
        "type": "contact",
        "id": contact.intercom_id,
        "workspace_id": workspace.id_code,
        "external_id": contact.external_id,
        "role": contact.role,
        # The 2.15 schema types email as a non-nullable string: an address-less lead has "".
        "email": email,
        "email_domain": email.split("@", 1)[1] if "@" in email else "",
        "phone": contact.phone,
        "name": contact.name,
        "avatar": {"type": "avatar", "image_url": contact.avatar} if contact.avatar else None,
        "owner_id": contact.owner_id,
        "social_profiles": {"type": "list", "data": []},
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": contact.unsubscribed_from_emails,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "signed_up_at": contact.signed_up_at,
        "last_seen_at": contact.last_seen_at,
        "location": {"type": "location", "country": None, "region": None, "city": None,
                     "country_code": None, "continent_code": None},
        "custom_attributes": dict(contact.custom_attributes or {}),
        "tags": _embedded("tags", contact, tags),
        "notes": _embedded("notes", contact, []),
        "companies": _embedded("companies", contact, companies),
        "opted_out_subscription_types": _embedded("subscriptions", contact, []),
        "opted_in_subscription_types": _embedded("subscriptions", contact, []),
        "utm_campaign": None, "utm_content": None, "utm_medium": None, "utm_source": None, "utm_term": None,
        "referrer": None, "enabled_push_messaging": None,
    }  # fmt: skip
    for field in _NULL_DEVICE_FIELDS:
        body[field] = None
    return body


def render_company(company: Company, workspace: Workspace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "company",
        "id": company.intercom_id,
        "company_id": company.company_id,
        "app_id": workspace.id_code,
        "created_at": company.created_at,
        "updated_at": company.updated_at,
        "monthly_spend": company.monthly_spend,
        "session_count": 0,
        # Lists and the scroll count a whole page's users in one query (`listed_user_count`).
        "user_count": (
            company.listed_user_count
            if getattr(company, "listed_user_count", None) is not None
            else company.contacts.filter(deleted=False, role="user").count()
        ),
        "custom_attributes": dict(company.custom_attributes or {}),
        "tags": {"type": "tag.list", "tags": [render_tag(t) for t in company.tags.all()]},
        "segments": {"type": "segment.list", "segments": []},
        "plan": {"type": "plan", "id": company.plan, "name": company.plan} if company.plan else {},
    }
    # Non-nullable in the 2.15 schema: Intercom leaves unset ones out.
    for field in ("name", "size", "website", "industry", "remote_created_at", "last_request_at"):
        value = getattr(company, field)
        if value is not None:
            body[field] = value
    return body


def render_tag(tag: Tag) -> dict[str, Any]:
    return {"type": "tag", "id": tag.tag_id, "name": tag.name}


STANDARD_ATTRIBUTES: dict[str, list[tuple[str, str]]] = {
    "contact": [
        ("name", "string"), ("email", "string"), ("phone", "string"), ("external_id", "string"),
        ("role", "string"), ("owner_id", "integer"), ("avatar", "string"), ("created_at", "date"),
        ("updated_at", "date"), ("signed_up_at", "date"), ("last_seen_at", "date"),
        ("unsubscribed_from_emails", "boolean"), ("location.city", "string"), ("location.country", "string"),
    ],
    "company": [
        ("name", "string"), ("company_id", "string"), ("plan", "string"), ("size", "integer"),
        ("website", "string"), ("industry", "string"), ("monthly_spend", "integer"),
        ("remote_created_at", "date"), ("created_at", "date"), ("updated_at", "date"),
    ],
}  # fmt: skip


def render_standard_attribute(model: str, name: str, data_type: str) -> dict[str, Any]:
    return {
        "type": "data_attribute",
        "model": model,
        "name": name,
        "full_name": name,
        "label": name.replace("_", " ").title(),
        "description": "",
        "data_type": data_type,
        "api_writable": name not in ("created_at", "updated_at"),
        "ui_writable": False,
        "messenger_writable": False,
        "custom": False,
        "archived": False,
    }


def render_attribute(attribute: DataAttribute) -> dict[str, Any]:
    body = {
        "type": "data_attribute",
        "id": attribute.attribute_id,
        "model": attribute.model,
        "name": attribute.name,
        "full_name": f"custom_attributes.{attribute.name}",
        "label": attribute.name,
        "description": attribute.description,
        # The 2.15 response enum has no "datetime": Intercom reports such attributes as dates.
        "data_type": "date" if attribute.data_type == "datetime" else attribute.data_type,
        "api_writable": True,
        "ui_writable": True,
        "messenger_writable": False,
        "custom": True,
        "archived": attribute.archived,
        "created_at": attribute.created_at,
        "updated_at": attribute.created_at,
        "admin_id": "991267459",
    }
    if attribute.options:
        body["options"] = attribute.options
    return body
