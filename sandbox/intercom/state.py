"""Shared helpers of the sandbox handlers: lookups, cursors, attribute rules, the lagging index."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sandbox.intercom import clock
from sandbox.intercom.errors import invalid, not_found
from sandbox.intercom.models import Company, Contact, DataAttribute, Workspace
from sandbox.intercom.search import search_view

ADMIN_ID = "991267459"
MAX_PER_PAGE = 150
DEFAULT_PER_PAGE = 50
CUSTOM_ATTRIBUTE_LIMIT = 250
STRING_VALUE_LIMIT = 255
ATTRIBUTE_TYPES = {"string", "integer", "float", "boolean", "date", "datetime"}
# Names: letters, digits, spaces, hyphens, underscores and currency symbols (docs/intercom-api.md#data-attributes).
_FORBIDDEN_NAME_CHARS = set(".$~`!@#%^&*'{}|\\\"\x00")


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    workspace: Workspace
    match: dict[str, str] = field(default_factory=dict)

    def json_object(self) -> dict:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise invalid("The request body must be a JSON object", code="bad_request")
        return self.body


def now_int() -> int:
    return int(clock.now())


def encode_cursor(seq: int, page: int) -> str:
    raw = json.dumps({"s": seq, "p": page}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(data["s"]), int(data["p"])
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid("starting_after is not a valid cursor", code="parameter_invalid") from exc


def per_page_from(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_PER_PAGE
    try:
        per_page = int(value)
    except (TypeError, ValueError) as exc:
        raise invalid("per_page must be an integer") from exc
    if per_page < 1 or per_page > MAX_PER_PAGE:
        raise invalid(f"per_page must be between 1 and {MAX_PER_PAGE}")
    return per_page


def contact_or_404(workspace: Workspace, contact_id: str, message: str = "Contact Not Found") -> Contact:
    contact = (
        Contact.objects.filter(workspace=workspace, intercom_id=contact_id, deleted=False)
        .prefetch_related("contacttag_set__tag", "companies")
        .first()
    )
    if contact is None:
        raise not_found(message)
    return contact


def company_or_404(workspace: Workspace, company_id: str) -> Company:
    company = Company.objects.filter(workspace=workspace, intercom_id=company_id).first()
    if company is None:
        raise not_found("Company Not Found", code="company_not_found")
    return company


def live_contacts(workspace: Workspace):  # -> QuerySet[Contact]
    """Contacts a list or search shows: not deleted, not merged away, not archived."""
    return (
        Contact.objects.filter(workspace=workspace, deleted=False, archived=False)
        .prefetch_related("contacttag_set__tag", "companies")
        .order_by("seq")
    )


def custom_attribute_types(workspace: Workspace, model: str) -> dict[str, str]:
    return dict(
        DataAttribute.objects.filter(workspace=workspace, model=model, archived=False).values_list("name", "data_type")
    )


def check_custom_attributes(workspace: Workspace, model: str, values: Any) -> dict:
    """Unknown keys are rejected, not created (docs/intercom-api.md#data-attributes); values are typed and bounded."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise invalid("custom_attributes must be an object")
    types = custom_attribute_types(workspace, model)
    for name, value in values.items():
        if name not in types:
            raise invalid(f"Custom attribute '{name}' does not exist")
        if value is None:
            continue
        data_type = types[name]
        if isinstance(value, (dict, list)):
            raise invalid(f"Custom attribute '{name}' value must be a string, number or boolean", code="type_mismatch")
        ok = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
        }.get(data_type, (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str))
        if not ok:
            raise invalid(f"Custom attribute '{name}' expects a value of type {data_type}", code="type_mismatch")
        if isinstance(value, str) and len(value) > STRING_VALUE_LIMIT:
            raise invalid(f"Custom attribute '{name}' is longer than {STRING_VALUE_LIMIT} characters")
    return values


def check_attribute_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("Name can't be blank")
    for char in name:
        if char in _FORBIDDEN_NAME_CHARS:
            raise invalid(
                "Your name for this attribute must only contain alphanumeric characters, currency symbols, and hyphens"
            )
        if not (char.isalnum() or char in " -_" or unicodedata.category(char) == "Sc"):
            raise invalid(
                "Your name for this attribute must only contain alphanumeric characters, currency symbols, and hyphens"
            )
    return name


def index_write(contact: Contact, before: dict | None) -> None:
    """Record a write in the lagging search index: until `searchable_at` search sees `indexed_snapshot`."""
    now = clock.now()
    lag = contact.workspace.search_lag_seconds
    if before is None:
        contact.indexed_snapshot = None  # new: invisible to search until indexed
    elif now >= contact.searchable_at:
        contact.indexed_snapshot = before  # the previous write was indexed: that is what search shows
    contact.searchable_at = now + lag


def searchable_view(contact: Contact, now: float) -> dict | None:
    if now >= contact.searchable_at:
        return search_view(contact)
    return contact.indexed_snapshot


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
