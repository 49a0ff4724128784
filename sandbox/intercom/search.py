"""`POST /contacts/search` semantics (docs/intercom-api.md#contact-search): operators by field type, day-granular dates
in the workspace's time zone, nesting and group-size limits, and an index that lags writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.intercom.errors import invalid
from sandbox.intercom.models import Contact

MAX_GROUP_FILTERS = 15
MAX_GROUP_DEPTH = 3  # the top group plus two levels of nesting

STRING_FIELDS = {
    "id", "role", "name", "avatar", "email", "email_domain", "phone", "external_id", "language_override",
    "browser", "browser_language", "os", "location.country", "location.region", "location.city",
}  # fmt: skip
CASE_INSENSITIVE = {"email", "email_domain", "name"}
INTEGER_FIELDS = {"owner_id"}
DATE_FIELDS = {
    "created_at", "signed_up_at", "updated_at", "last_seen_at", "last_contacted_at", "last_replied_at",
    "last_email_opened_at", "last_email_clicked_at",
}  # fmt: skip
BOOLEAN_FIELDS = {"unsubscribed_from_emails", "marked_email_as_spam", "has_hard_bounced"}
LIST_FIELDS = {"tag_id", "segment_id"}

OPERATORS_BY_TYPE = {
    "string": {"=", "!=", "IN", "NIN", "~", "!~", "^", "$"},
    "integer": {"=", "!=", "IN", "NIN", "<", ">", "<=", ">="},
    "float": {"=", "!=", "IN", "NIN", "<", ">", "<=", ">="},
    "boolean": {"=", "!=", "IN", "NIN"},
    "date": {"=", "<", ">"},  # other operators "return an error" on dates
    "list": {"=", "!="},
}


def search_view(contact: Contact) -> dict[str, Any]:
    """The searchable fields of a contact, as the index stores them."""
    view: dict[str, Any] = {
        "id": contact.intercom_id,
        "role": contact.role,
        "name": contact.name,
        "avatar": contact.avatar,
        "email": contact.email,
        "email_domain": contact.email.split("@", 1)[1] if contact.email and "@" in contact.email else None,
        "phone": contact.phone,
        "external_id": contact.external_id,
        "owner_id": contact.owner_id,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "signed_up_at": contact.signed_up_at,
        "last_seen_at": contact.last_seen_at,
        "unsubscribed_from_emails": contact.unsubscribed_from_emails,
        "marked_email_as_spam": False,
        "has_hard_bounced": False,
        "tag_id": [ct.tag.tag_id for ct in contact.contacttag_set.all()] if contact.pk else [],
        "segment_id": [],
        "seq": contact.seq,
    }
    for key, value in (contact.custom_attributes or {}).items():
        view[f"custom_attributes.{key}"] = value
    return view


def validate_query(query: Any, custom_types: dict[str, str], depth: int = 1) -> None:
    """Reject malformed queries the way Intercom does (400) before anything is evaluated."""
    if not isinstance(query, dict):
        raise invalid("query must be an object", code="invalid_query")
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        if depth > MAX_GROUP_DEPTH:
            raise invalid("Nested filters are limited to 2 levels", code="invalid_query")
        children = query.get("value")
        if not isinstance(children, list) or not children:
            raise invalid(f"{operator} requires a non-empty array of filters", code="invalid_query")
        if len(children) > MAX_GROUP_FILTERS:
            raise invalid(f"A maximum of {MAX_GROUP_FILTERS} filters is allowed per {operator} group", code="invalid_query")
        for child in children:
            validate_query(child, custom_types, depth + 1)
        return
    field = query.get("field")
    if not isinstance(field, str):
        raise invalid("Each filter needs a field", code="invalid_field")
    kind = field_type(field, custom_types)
    if operator not in OPERATORS_BY_TYPE[kind]:
        raise invalid(f"Operator '{operator}' is not supported for field '{field}'", code="invalid_operator")
    value = query.get("value")
    values = value if operator in ("IN", "NIN") and isinstance(value, list) else [value]
    if operator in ("IN", "NIN") and not isinstance(value, list):
        raise invalid(f"Operator '{operator}' requires an array value", code="invalid_query")
    for item in values:
        if item is None and operator in ("=", "!="):
            continue
        if not _type_ok(kind, item):
            raise invalid(f"Value '{item}' has the wrong type for field '{field}'", code="invalid_query")


def field_type(field: str, custom_types: dict[str, str]) -> str:
    if field in STRING_FIELDS:
        return "string"
    if field in INTEGER_FIELDS:
        return "integer"
    if field in DATE_FIELDS:
        return "date"
    if field in BOOLEAN_FIELDS:
        return "boolean"
    if field in LIST_FIELDS:
        return "list"
    if field.startswith("custom_attributes."):
        name = field.split(".", 1)[1]
        if name in custom_types:
            return {"datetime": "date"}.get(custom_types[name], custom_types[name])
    raise invalid(f"'{field}' is not a valid search field", code="invalid_field")


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("string", "list"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    # integers and dates; Intercom also accepts digit strings for timestamps
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())


def matches(query: dict, view: dict[str, Any], custom_types: dict[str, str], tz: ZoneInfo) -> bool:
    operator = query["operator"]
    if operator == "AND":
        return all(matches(child, view, custom_types, tz) for child in query["value"])
    if operator == "OR":
        return any(matches(child, view, custom_types, tz) for child in query["value"])
    field = query["field"]
    kind = field_type(field, custom_types)
    return _compare(kind, field, operator, view.get(field), query.get("value"), tz)


def _day(value: Any, tz: ZoneInfo) -> Any:
    return datetime.fromtimestamp(int(value), tz=tz).date()


def _compare(kind: str, field: str, operator: str, actual: Any, expected: Any, tz: ZoneInfo) -> bool:
    if kind == "list":
        present = expected in (actual or [])
        return present if operator == "=" else not present
    if expected is None and operator in ("=", "!="):
        return (actual is None) == (operator == "=")
    if kind == "date":
        if actual is None:
            return False
        # Intercom compares dates by calendar day in the workspace's time zone (docs/intercom-api.md#contact-search).
        a, e = _day(actual, tz), _day(expected, tz)
        return {"=": a == e, ">": a > e, "<": a < e}[operator]
    if operator in ("IN", "NIN"):
        inside = any(_equal(field, actual, item) for item in expected)
        return inside if operator == "IN" else not inside
    if operator == "=":
        return _equal(field, actual, expected)
    if operator == "!=":
        return not _equal(field, actual, expected)
    if actual is None:
        return False
    if kind == "string":
        a, e = str(actual).lower(), str(expected).lower()
        return {"~": e in a, "!~": e not in a, "^": a.startswith(e), "$": a.endswith(e)}[operator]
    a_num, e_num = float(actual), float(expected)
    return {"<": a_num < e_num, ">": a_num > e_num, "<=": a_num <= e_num, ">=": a_num >= e_num}[operator]


def _equal(field: str, actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is expected
    if isinstance(actual, str) and field in CASE_INSENSITIVE:
        return actual.lower() == str(expected).lower()
    if isinstance(actual, (int, float)) and not isinstance(actual, bool) and isinstance(expected, str):
        return str(actual) == expected
    return actual == expected
