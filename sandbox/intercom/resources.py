"""Companies (with the single scroll), tags, data attributes, events, conversations and /me."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, prefetch_related_objects

from sandbox.intercom import clock
from sandbox.intercom.errors import SandboxError, invalid, not_found
from sandbox.intercom.models import Company, Contact, ContactTag, Conversation, DataAttribute, Event, Tag, Workspace
from sandbox.intercom.render import (
    STANDARD_ATTRIBUTES,
    render_attribute,
    render_company,
    render_standard_attribute,
    render_tag,
)
from sandbox.intercom.state import (
    ADMIN_ID,
    ATTRIBUTE_TYPES,
    CUSTOM_ATTRIBUTE_LIMIT,
    SandboxRequest,
    check_attribute_name,
    check_custom_attributes,
    company_or_404,
    now_int,
)

COMPANY_FIELDS = {
    "name", "company_id", "plan", "size", "website", "industry", "custom_attributes", "remote_created_at", "monthly_spend",
}  # fmt: skip
SCROLL_PAGE_SIZE = 50
LIST_CAP = 10_000  # companies reachable through page-based lists; the scroll reaches all
EVENT_METADATA_KEYS = 10
EVENT_NAME_LIMIT = 120
MONTHLY_SPEND_MAX = 2**31 - 1


def me(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    return 200, {
        "type": "admin",
        "id": ADMIN_ID,
        "email": "admin@sandbox.example",
        "name": "Sandbox Admin",
        "email_verified": True,
        "has_inbox_seat": True,
        "avatar": {"type": "avatar", "image_url": "https://static.intercomassets.com/avatars/sandbox/128.png"},
        "app": {
            "type": "app",
            "id_code": ws.id_code,
            "name": ws.name,
            "created_at": 1734537243,
            "secure": False,
            "identity_verification": False,
            "timezone": ws.timezone,
            "region": ws.region,
        },
    }


# -- companies --------------------------------------------------------------------------------


def _visible_companies(ws: Workspace):  # -> QuerySet[Company]
    # "Companies will be only visible in Intercom when there is at least one associated user".
    # EXISTS, not COUNT: a page of a 50,000-company scroll must not aggregate the whole table.
    has_contact = Company.contacts.through.objects.filter(company_id=OuterRef("pk"), contact__deleted=False)
    return Company.objects.filter(workspace=ws).filter(Exists(has_contact)).order_by("seq")


def _render_page(companies: list[Company], ws: Workspace) -> list[dict]:
    """Render a page of companies with two queries (tags, user counts), not two per company."""
    prefetch_related_objects(companies, "tags")
    links = Company.contacts.through.objects.filter(
        company_id__in=[c.pk for c in companies], contact__deleted=False, contact__role="user"
    )
    # django-stubs cannot follow an annotate() after values_list(): `n` exists at run time.
    counts = dict(links.values_list("company_id").annotate(n=Count("id")).values_list("company_id", "n"))  # type: ignore[misc]
    for company in companies:
        company.listed_user_count = counts.get(company.pk, 0)
    return [render_company(c, ws) for c in companies]


def upsert_company(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    for key in body:
        if key not in COMPANY_FIELDS:
            raise SandboxError(400, "bad_request", f"bad '{key}' parameter")
    company_id = body.get("company_id")
    if not company_id:
        raise invalid("company_id is required", code="parameter_missing")
    custom = check_custom_attributes(ws, "company", body.get("custom_attributes"))
    now = now_int()
    with transaction.atomic():
        company = Company.objects.filter(workspace=ws, company_id=str(company_id)).first()
        if company is None:
            company = Company(workspace=ws, company_id=str(company_id), created_at=now, updated_at=now)
        for key in ("name", "plan", "size", "website", "industry", "remote_created_at"):
            if key in body:
                setattr(company, key, body[key])
        if "monthly_spend" in body and body["monthly_spend"] is not None:
            spend = int(body["monthly_spend"])  # Intercom truncates floats
            if spend > MONTHLY_SPEND_MAX:
                raise invalid("monthly_spend is too large")
            company.monthly_spend = spend
        company.custom_attributes = {**(company.custom_attributes or {}), **custom}
        company.updated_at = now
        company.save()
    return 200, render_company(company, ws)


def get_company(req: SandboxRequest) -> tuple[int, Any]:
    return 200, render_company(company_or_404(req.workspace, req.match["id"]), req.workspace)


def find_or_list_companies(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    # Real behaviour (docs/intercom-api.md#openapi-description-and-its-gaps, gap 3): ?company_id= / ?name= answer one company, not a list.
    for key in ("company_id", "name"):
        if req.query.get(key):
            company = Company.objects.filter(workspace=ws, **{key: req.query[key]}).first()
            if company is None:
                raise not_found("Company Not Found", code="company_not_found")
            return 200, render_company(company, ws)
    return _company_page(req, default_per_page=15)


def list_companies(req: SandboxRequest) -> tuple[int, Any]:
    return _company_page(req, default_per_page=15)


def _company_page(req: SandboxRequest, *, default_per_page: int) -> tuple[int, Any]:
    """Page-based company lists as Intercom serves them: sorted by `last_request_at` (most recent
    first unless `order=asc`; never-seen companies last) and capped at 10,000 companies: past the
    cap Intercom refuses the page and points at the scroll (reference §3.3, intercom-ruby#304)."""
    try:
        page = max(1, int(req.query.get("page") or 1))
        per_page = int(req.query.get("per_page") or default_per_page)
    except ValueError as exc:
        raise invalid("page and per_page must be integers") from exc
    if per_page < 1 or per_page > 60:
        raise invalid("per_page must be between 1 and 60")
    qs = _visible_companies(req.workspace)
    if req.query.get("tag_id"):
        qs = qs.filter(tags__tag_id=req.query["tag_id"])
    if str(req.query.get("order") or "desc").lower() == "asc":
        qs = qs.order_by(F("last_request_at").asc(nulls_first=True), "seq")
    else:
        qs = qs.order_by(F("last_request_at").desc(nulls_last=True), "seq")
    total = qs.count()
    start = (page - 1) * per_page
    if start >= LIST_CAP:
        raise invalid("page limit reached, please use scroll API", code="page_limit_reached")
    items = list(qs[start : min(page * per_page, LIST_CAP)])
    total_pages = max(1, -(-min(total, LIST_CAP) // per_page))
    return 200, {
        "type": "list",
        "data": _render_page(items, req.workspace),
        "total_count": total,
        "pages": {"type": "pages", "next": None, "page": page, "per_page": per_page, "total_pages": total_pages},
    }


def list_company_segments(req: SandboxRequest) -> tuple[int, Any]:
    company_or_404(req.workspace, req.match["id"])
    return 200, {"type": "list", "data": []}


def scroll_companies(req: SandboxRequest) -> tuple[int, Any]:
    """One open scroll per workspace; idle scrolls expire; an empty page ends it (docs/intercom-api.md#company-scroll)."""
    ws = Workspace.objects.select_for_update().get(pk=req.workspace.pk)
    now = clock.now()
    param = req.query.get("scroll_param")
    open_scroll = bool(ws.scroll_param) and ws.scroll_expires_at > now
    if not param:
        if open_scroll:
            raise invalid("scroll already exists for this workspace", code="scroll_exists")
        ws.scroll_param = str(uuid.uuid4())
        ws.scroll_position = 0
    elif not open_scroll or param != ws.scroll_param:
        raise not_found("scroll parameter not found")
    companies = list(_visible_companies(ws).filter(seq__gt=ws.scroll_position)[:SCROLL_PAGE_SIZE])
    scroll_param = ws.scroll_param
    if companies:
        ws.scroll_position = companies[-1].seq
        ws.scroll_expires_at = now + ws.scroll_ttl_seconds
    else:
        ws.scroll_param, ws.scroll_position, ws.scroll_expires_at = "", 0, 0.0  # finished: closed
    ws.save(update_fields=["scroll_param", "scroll_position", "scroll_expires_at"])
    return 200, {
        "type": "list",
        "data": _render_page(companies, ws),
        "pages": None,
        "total_count": None,
        "scroll_param": scroll_param,
    }


# -- tags -------------------------------------------------------------------------------------


def _tag_by_name(ws: Workspace, name: str, *, create: bool) -> Tag | None:
    tag = Tag.objects.filter(workspace=ws, name__iexact=name).first()
    if tag is None and create:
        ws = Workspace.objects.select_for_update().get(pk=ws.pk)
        ws.next_tag_id += 1
        ws.save(update_fields=["next_tag_id"])
        tag = Tag.objects.create(workspace=ws, tag_id=str(ws.next_tag_id), name=name)
    return tag


def list_tags(req: SandboxRequest) -> tuple[int, Any]:
    return 200, {"type": "list", "data": [render_tag(t) for t in Tag.objects.filter(workspace=req.workspace)]}


def get_tag(req: SandboxRequest) -> tuple[int, Any]:
    tag = Tag.objects.filter(workspace=req.workspace, tag_id=req.match["id"]).first()
    if tag is None:
        raise not_found("Resource Not Found")
    return 200, render_tag(tag)


def delete_tag(req: SandboxRequest) -> tuple[int, Any]:
    deleted, _ = Tag.objects.filter(workspace=req.workspace, tag_id=req.match["id"]).delete()
    if not deleted:
        raise not_found("Resource Not Found")
    return 200, None


def create_or_update_tag(req: SandboxRequest) -> tuple[int, Any]:
    """The overloaded `POST /tags` (docs/intercom-api.md#tags): create, rename, tag/untag companies, tag users."""
    ws = req.workspace
    body = req.json_object()
    for key in body:
        if key not in ("name", "id", "companies", "users"):
            raise SandboxError(400, "bad_request", f"bad '{key}' parameter")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("invalid tag parameters")
    with transaction.atomic():
        if body.get("id") and "companies" not in body and "users" not in body:
            tag = Tag.objects.filter(workspace=ws, tag_id=str(body["id"])).first()
            if tag is None:
                raise not_found("Resource Not Found")
            tag.name = name
            tag.save(update_fields=["name"])
            return 200, render_tag(tag)
        tag = _tag_by_name(ws, name, create=True)
        assert tag is not None
        for ref in body.get("companies") or []:
            company = _company_ref(ws, ref)
            if ref.get("untag"):
                tag.companies.remove(company)
            else:
                tag.companies.add(company)
        # Tag Multiple Users: contacts by Intercom `id`, in one transaction (one unknown id fails
        # the whole call, nothing is tagged). `untag: true` on an item removes the tag, as the
        # companies form does and Intercom's 1.x "Tag or Untag Users" documented; 2.15's schema
        # lists only `id`, so the connector never relies on it (it untags with DELETE).
        refs = body.get("users") or []
        if "users" in body and not isinstance(refs, list):
            raise invalid("invalid tag parameters")
        for ref in refs:
            if not isinstance(ref, dict):
                raise invalid("invalid tag parameters")
            contact = Contact.objects.filter(workspace=ws, intercom_id=str(ref.get("id") or ""), deleted=False).first()
            if contact is None:
                raise not_found("User Not Found")
            if ref.get("untag"):
                ContactTag.objects.filter(contact=contact, tag=tag).delete()
            else:
                ContactTag.objects.get_or_create(contact=contact, tag=tag, defaults={"applied_at": now_int()})
    return 200, render_tag(tag)


def _company_ref(ws: Workspace, ref: Any) -> Company:
    if not isinstance(ref, dict):
        raise invalid("invalid tag parameters")
    qs = Company.objects.filter(workspace=ws)
    if ref.get("id"):
        company = qs.filter(intercom_id=str(ref["id"])).first()
    elif ref.get("company_id"):
        company = qs.filter(company_id=str(ref["company_id"])).first()
    else:
        raise invalid("invalid tag parameters")
    if company is None:
        raise not_found("Company Not Found", code="company_not_found")
    return company


# -- data attributes --------------------------------------------------------------------------


def list_data_attributes(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    model = req.query.get("model")
    if model and model not in ("contact", "company", "conversation"):
        raise invalid("The Data Attribute model field must be either contact or company")
    models = [model] if model else ["contact", "company"]
    include_archived = req.query.get("include_archived") in ("true", "True", "1")
    data: list[dict] = []
    for m in models:
        data += [render_standard_attribute(m, name, t) for name, t in STANDARD_ATTRIBUTES.get(m, [])]
        custom = DataAttribute.objects.filter(workspace=ws, model=m)
        if not include_archived:
            custom = custom.filter(archived=False)
        data += [render_attribute(a) for a in custom]
    return 200, {"type": "list", "data": data}


def create_data_attribute(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    name = check_attribute_name(body.get("name"))
    model = body.get("model")
    if model not in ("contact", "company"):
        raise invalid("The Data Attribute model field must be either contact or company")
    data_type = body.get("data_type")
    options = body.get("options")
    if data_type not in ATTRIBUTE_TYPES and not (isinstance(options, list) and len(options) >= 2):
        raise invalid("Data Type isn't an option")
    taken_standard = {n.lower() for n, _ in STANDARD_ATTRIBUTES[model]}
    model_label = "company" if model == "company" else "people"
    taken = f"You already have '{name}' in your {model_label} data. To save this as new {model_label} data, use a different name."
    if name.lower() in taken_standard or DataAttribute.objects.filter(workspace=ws, model=model, name__iexact=name).exists():
        raise invalid(taken)
    if DataAttribute.objects.filter(workspace=ws, archived=False).count() >= CUSTOM_ATTRIBUTE_LIMIT:
        raise invalid(f"You have reached the limit of {CUSTOM_ATTRIBUTE_LIMIT} custom data attributes")
    try:
        with transaction.atomic():
            locked = Workspace.objects.select_for_update().get(pk=ws.pk)
            locked.next_attribute_id += 1
            locked.save(update_fields=["next_attribute_id"])
            attribute = DataAttribute.objects.create(
                workspace=ws,
                attribute_id=locked.next_attribute_id,
                model=model,
                name=name,
                data_type=data_type if data_type in ATTRIBUTE_TYPES else "string",
                description=str(body.get("description") or ""),
                options=[o.get("value") for o in options if isinstance(o, dict)] if isinstance(options, list) else [],
                created_at=now_int(),
            )
    except IntegrityError as exc:  # a concurrent create of the same name
        raise invalid(taken) from exc
    return 200, render_attribute(attribute)


# -- events -----------------------------------------------------------------------------------


def create_event(req: SandboxRequest) -> tuple[int, Any]:
    ws = req.workspace
    body = req.json_object()
    name = body.get("event_name")
    created_at = body.get("created_at")
    if not isinstance(name, str) or not name:
        raise invalid("event_name is required", code="parameter_missing")
    if not isinstance(created_at, int) or isinstance(created_at, bool):
        raise invalid("created_at must be a unix timestamp in seconds", code="parameter_invalid")
    contacts = Contact.objects.filter(workspace=ws, deleted=False)
    if body.get("id"):
        contact = contacts.filter(intercom_id=str(body["id"])).first()
    elif body.get("user_id"):
        contact = contacts.filter(role="user", external_id=str(body["user_id"])).first()
    elif body.get("email"):
        # Leads must be addressed by id: email finds users only.
        contact = contacts.filter(role="user", email__iexact=str(body["email"])).first()
    else:
        raise invalid("One of id, user_id or email is required", code="parameter_missing")
    if contact is None:
        raise not_found("User Not Found")
    known_names = set(Event.objects.filter(workspace=ws).values_list("event_name", flat=True).distinct())
    if name not in known_names and len(known_names) >= EVENT_NAME_LIMIT:
        raise invalid(f"This workspace has reached the limit of {EVENT_NAME_LIMIT} event names")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid("metadata must be an object")
    metadata = dict(list(metadata.items())[:EVENT_METADATA_KEYS])  # extra keys are silently dropped
    try:
        with transaction.atomic():
            Event.objects.create(workspace=ws, contact=contact, event_name=name, created_at=created_at, metadata=metadata)
    except IntegrityError:
        pass  # duplicates are silently ignored (still 202)
    return 202, None


def get_conversation(req: SandboxRequest) -> tuple[int, Any]:
    conversation = Conversation.objects.filter(workspace=req.workspace, conversation_id=req.match["id"]).first()
    if conversation is None:
        raise not_found("Resource Not Found")
    return 200, conversation.payload
