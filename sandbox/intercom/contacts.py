"""Contact endpoints of the sandbox (docs/intercom-api.md#contacts): roles, uniqueness/409, lists, search, merge,
tags and companies of a contact."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from sandbox.intercom import clock
from sandbox.intercom.errors import SandboxError, invalid, not_found
from sandbox.intercom.models import Contact, ContactTag, Tag, Workspace
from sandbox.intercom.render import render_company, render_contact
from sandbox.intercom.search import search_view, validate_query, matches
from sandbox.intercom.state import (
    ADMIN_ID,
    EMAIL_RE,
    SandboxRequest,
    check_custom_attributes,
    company_or_404,
    contact_or_404,
    custom_attribute_types,
    decode_cursor,
    encode_cursor,
    index_write,
    live_contacts,
    now_int,
    per_page_from,
    searchable_view,
)

ROLES = {"user", "lead"}


def find_conflict(workspace: Workspace, *, role: str, external_id: Any, email: Any, exclude: int | None = None) -> None:
    """409 rules of docs/intercom-api.md#uniqueness-and-conflicts: external_id is unique among users; a user without external_id
    is unique by email among users without external_id; leads never conflict on email."""
    if role != "user":
        return
    users = Contact.objects.filter(workspace=workspace, role="user", deleted=False)
    if exclude is not None:
        users = users.exclude(seq=exclude)
    existing = None
    if external_id:
        existing = users.filter(external_id=external_id).first()
    elif email:
        existing = users.filter(external_id__isnull=True, email__iexact=email).first()
    if existing is not None:
        prefix = "An archived contact" if existing.archived else "A contact"
        raise SandboxError(409, "conflict", f"{prefix} matching those details already exists with id={existing.intercom_id}")


def _apply_fields(contact: Contact, body: dict, workspace: Workspace) -> None:
    for key in ("external_id", "email", "phone", "name", "avatar", "signed_up_at", "last_seen_at", "owner_id"):
        if key in body:
            value = body[key]
            if key == "email" and value not in (None, "") and not EMAIL_RE.match(str(value)):
                raise invalid("Email is invalid", code="parameter_invalid")
            if key == "external_id" and value is not None:
                value = str(value)
            setattr(contact, key, value if value != "" or key not in ("external_id", "email") else None)
    if "unsubscribed_from_emails" in body and body["unsubscribed_from_emails"] is not None:
        contact.unsubscribed_from_emails = bool(body["unsubscribed_from_emails"])
    if "custom_attributes" in body:
        values = check_custom_attributes(workspace, "contact", body["custom_attributes"])
        contact.custom_attributes = {**(contact.custom_attributes or {}), **values}


def create_contact(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    role = body.get("role") or "user"
    if role not in ROLES:
        raise invalid("Role must be either user or lead")
    if not (body.get("email") or body.get("external_id") or body.get("role")):
        raise invalid("A contact needs an email, an external_id or a role", code="parameter_missing")
    if role == "user" and not (body.get("email") or body.get("external_id")):
        raise invalid("A user needs an email or an external_id", code="parameter_missing")
    now = now_int()
    contact = Contact(workspace=ws, role=role, created_at=now, updated_at=now)
    _apply_fields(contact, body, ws)
    with transaction.atomic():
        find_conflict(ws, role=role, external_id=contact.external_id, email=contact.email)
        index_write(contact, None)
        contact.save()
    return 200, render_contact(contact, ws)


def update_contact(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    contact = contact_or_404(ws, req.match["id"])
    before = search_view(contact)
    role = body.get("role") or contact.role
    if role not in ROLES:
        raise invalid("Role must be either user or lead")
    if contact.role == "user" and role == "lead":
        raise invalid("Contact with user role can't be converted to a lead", code="client_error")
    _apply_fields(contact, body, ws)
    contact.role = role
    contact.updated_at = max(now_int(), contact.updated_at)
    with transaction.atomic():
        find_conflict(ws, role=role, external_id=contact.external_id, email=contact.email, exclude=contact.seq)
        index_write(contact, before)
        contact.save()
    return 200, render_contact(contact, ws)


def get_contact(req: SandboxRequest) -> tuple[int, Any]:
    return 200, render_contact(contact_or_404(req.workspace, req.match["id"]), req.workspace)


def find_by_external_id(req: SandboxRequest) -> tuple[int, Any]:
    contact = (
        Contact.objects.filter(workspace=req.workspace, role="user", deleted=False, external_id=req.match["external_id"])
        .prefetch_related("contacttag_set__tag", "companies")
        .first()
    )
    if contact is None:
        raise not_found("User Not Found")
    return 200, render_contact(contact, req.workspace)


def delete_contact(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"])
    contact.deleted = True
    contact.save(update_fields=["deleted"])
    return 200, {"type": "contact", "id": contact.intercom_id, "external_id": contact.external_id, "deleted": True}


def archive_contact(req: SandboxRequest, archived: bool = True) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"])
    contact.archived = archived
    contact.save(update_fields=["archived"])
    return 200, {"type": "contact", "id": contact.intercom_id, "external_id": contact.external_id, "archived": archived}


def unarchive_contact(req: SandboxRequest) -> tuple[int, Any]:
    return archive_contact(req, archived=False)


def _page(items: list[Contact], ws: Workspace, per_page: int, page: int, total: int) -> dict:
    """A cursor page: `items` holds up to per_page + 1 rows (the extra one says there is a next page)."""
    has_next = len(items) > per_page
    items = items[:per_page]
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": max(1, -(-total // per_page)),
    }
    if has_next and items:
        pages["next"] = {"per_page": per_page, "starting_after": encode_cursor(items[-1].seq, page + 1)}
    return {"type": "list", "data": [render_contact(c, ws) for c in items], "total_count": total, "pages": pages}


def list_contacts(req: SandboxRequest) -> tuple[int, Any]:
    per_page = per_page_from(req.query.get("per_page"))
    after, page = decode_cursor(req.query["starting_after"]) if req.query.get("starting_after") else (0, 1)
    qs = live_contacts(req.workspace)
    total = qs.count()
    items = list(qs.filter(seq__gt=after)[: per_page + 1])
    return 200, _page(items, req.workspace, per_page, page, total)


def search_contacts(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    if "query" not in body:
        raise invalid("query is required", code="parameter_missing")
    custom_types = custom_attribute_types(ws, "contact")
    validate_query(body["query"], custom_types)
    pagination = body.get("pagination") or {}
    per_page = per_page_from(pagination.get("per_page"))
    # The cursor belongs in the body: one in the query string is ignored, as Intercom does.
    after, page = decode_cursor(pagination["starting_after"]) if pagination.get("starting_after") else (0, 1)
    tz = ZoneInfo(ws.timezone or "UTC")
    now = clock.now()
    hits: list[int] = []
    for contact in live_contacts(ws):
        view = searchable_view(contact, now)
        if view is not None and matches(body["query"], view, custom_types, tz):
            hits.append(contact.seq)
    remaining = [seq for seq in hits if seq > after][: per_page + 1]
    by_seq = {c.seq: c for c in live_contacts(ws).filter(seq__in=remaining)}
    return 200, _page([by_seq[s] for s in remaining], ws, per_page, page, len(hits))


def merge_contacts(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    lead = contact_or_404(ws, str(body.get("from") or ""))
    user = contact_or_404(ws, str(body.get("into") or ""))
    if lead.role != "lead" or user.role != "user":
        raise invalid("Merging can only be performed on a lead into a user", code="invalid_merge")
    before = search_view(user)
    with transaction.atomic():
        # Attributes absent on the user are copied from the lead; the lead is deleted.
        for field in ("email", "phone", "name", "avatar", "signed_up_at", "last_seen_at", "owner_id"):
            if getattr(user, field) in (None, "") and getattr(lead, field) not in (None, ""):
                setattr(user, field, getattr(lead, field))
        user.custom_attributes = {**(lead.custom_attributes or {}), **(user.custom_attributes or {})}
        for link in ContactTag.objects.filter(contact=lead):
            ContactTag.objects.get_or_create(contact=user, tag=link.tag, defaults={"applied_at": link.applied_at})
        for company in lead.companies.all():
            company.contacts.add(user)
        user.updated_at = now_int()
        index_write(user, before)
        user.save()
        lead.deleted = True
        lead.merged_into = user.intercom_id
        lead.save(update_fields=["deleted", "merged_into"])
    return 200, render_contact(contact_or_404(ws, user.intercom_id), ws)


# -- tags of a contact ------------------------------------------------------------------------


def _tag_body(tag: Tag, applied_at: int | None = None) -> dict:
    body: dict[str, Any] = {"type": "tag", "id": tag.tag_id, "name": tag.name}
    if applied_at is not None:
        body["applied_at"] = applied_at
        body["applied_by"] = {"type": "admin", "id": ADMIN_ID}
    return body


def list_contact_tags(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    links = ContactTag.objects.filter(contact=contact).select_related("tag").order_by("tag__tag_id")
    return 200, {"type": "list", "data": [_tag_body(link.tag, link.applied_at) for link in links]}


def tag_contact(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    tag_id = str(req.json_object().get("id") or "")
    tag = Tag.objects.filter(workspace=req.workspace, tag_id=tag_id).first()
    if tag is None:
        raise not_found("Resource Not Found")
    link, _ = ContactTag.objects.get_or_create(contact=contact, tag=tag, defaults={"applied_at": now_int()})
    return 200, _tag_body(tag, link.applied_at)


def untag_contact(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    tag = Tag.objects.filter(workspace=req.workspace, tag_id=req.match["tag_id"]).first()
    if tag is None:
        raise not_found("Resource Not Found")
    ContactTag.objects.filter(contact=contact, tag=tag).delete()
    return 200, _tag_body(tag)


# -- companies of a contact -------------------------------------------------------------------

CONTACT_COMPANY_LIMIT = 1000


def list_contact_companies(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    companies = [render_company(c, req.workspace) for c in contact.companies.order_by("seq")]
    return 200, {
        "type": "list",
        "data": companies,
        "total_count": len(companies),
        "pages": {"type": "pages", "next": None, "page": 1, "per_page": 50, "total_pages": 1},
    }


def attach_company(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    company_id = req.json_object().get("id")
    if not company_id:
        raise invalid("company not specified", code="parameter_not_found")
    company = company_or_404(req.workspace, str(company_id))
    if contact.companies.count() >= CONTACT_COMPANY_LIMIT:
        raise invalid("Contact has reached the maximum of 1000 company associations", code="contact_company_limit_exceeded")
    company.contacts.add(contact)
    return 200, render_company(company, req.workspace)


def detach_company(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    company = company_or_404(req.workspace, req.match["company_id"])
    company.contacts.remove(contact)
    return 200, render_company(company, req.workspace)


def list_contact_segments(req: SandboxRequest) -> tuple[int, Any]:
    contact_or_404(req.workspace, req.match["id"], "User Not Found")
    return 200, {"type": "list", "data": []}
