"""`POST /conversations/search` (2.15): the fields the connector's support-context rebuild uses.

Searchable here: `id`, `contact_ids` (a conversation matches when the contact is one of its
contacts), `open`, `state`, `admin_assignee_id`, `created_at`, `updated_at`, in AND/OR groups.
Any other field is refused with a 400, as a field Intercom does not know would be: a test that
leans on a field the sandbox does not model fails loudly instead of silently matching everything.
Conversations are the stored payloads (`IntercomSandbox.add_conversation`); pages are cursor pages
in the order they were stored, at most 150 per page.
"""

from __future__ import annotations

from typing import Any

from sandbox.intercom.errors import invalid
from sandbox.intercom.models import Conversation
from sandbox.intercom.state import SandboxRequest, decode_cursor, encode_cursor, per_page_from

FIELDS = {"id", "contact_ids", "open", "state", "admin_assignee_id", "created_at", "updated_at"}
OPERATORS = {"=", "!=", "IN", "NIN", ">", "<"}
LIST_ITEM_FIELDS = (
    "type", "id", "title", "created_at", "updated_at", "waiting_since", "snoozed_until", "open", "state", "read",
    "priority", "admin_assignee_id", "team_assignee_id", "tags", "conversation_rating", "source", "contacts",
    "teammates", "custom_attributes", "first_contact_reply", "statistics",
)  # fmt: skip


def _value(payload: dict, field: str) -> Any:
    if field == "contact_ids":
        return [str(c.get("id")) for c in (payload.get("contacts") or {}).get("contacts") or [] if isinstance(c, dict)]
    return payload.get(field)


def _matches(query: Any, payload: dict) -> bool:
    if not isinstance(query, dict):
        raise invalid("query must be an object")
    if "operator" in query and query["operator"] in ("AND", "OR"):
        parts = [_matches(q, payload) for q in query.get("value") or []]
        return all(parts) if query["operator"] == "AND" else any(parts)
    field, operator, wanted = query.get("field"), query.get("operator"), query.get("value")
    if field not in FIELDS:
        raise invalid(f"{field} is not a searchable conversation field in the sandbox", code="invalid_field")
    if operator not in OPERATORS:
        raise invalid(f"Operator {operator} is not supported", code="invalid_operator")
    actual = _value(payload, field)
    if field == "contact_ids":
        hit = str(wanted) in actual if operator in ("=", "!=") else bool(set(map(str, wanted or [])) & set(actual))
        return hit if operator in ("=", "IN") else not hit
    if operator in ("=", "!="):
        same = str(actual).lower() == str(wanted).lower() if isinstance(actual, bool) or isinstance(wanted, bool) else str(actual) == str(wanted)
        return same if operator == "=" else not same
    if operator in ("IN", "NIN"):
        inside = str(actual) in {str(w) for w in wanted or []}
        return inside if operator == "IN" else not inside
    if wanted is None:
        return False
    try:
        left, right = int(actual), int(wanted)
    except (TypeError, ValueError):
        return False
    return left > right if operator == ">" else left < right


def _validate(query: Any) -> None:
    """Refuse an unknown field or operator even when no conversation would be compared with it."""
    if not isinstance(query, dict):
        raise invalid("query must be an object")
    if query.get("operator") in ("AND", "OR"):
        for part in query.get("value") or []:
            _validate(part)
        return
    if query.get("field") not in FIELDS:
        raise invalid(f"{query.get('field')} is not a searchable conversation field in the sandbox", code="invalid_field")
    if query.get("operator") not in OPERATORS:
        raise invalid(f"Operator {query.get('operator')} is not supported", code="invalid_operator")


def search_conversations(req: SandboxRequest) -> tuple[int, Any]:
    body = req.json_object()
    if "query" not in body:
        raise invalid("query is required", code="parameter_missing")
    _validate(body["query"])
    pagination = body.get("pagination") or {}
    per_page = per_page_from(pagination.get("per_page"))
    after, page = decode_cursor(pagination["starting_after"]) if pagination.get("starting_after") else (0, 1)
    rows = Conversation.objects.filter(workspace=req.workspace).order_by("pk")
    hits = [c for c in rows if _matches(body["query"], c.payload)]
    remaining = [c for c in hits if c.pk > after][: per_page + 1]
    items = remaining[:per_page]
    pages: dict[str, Any] = {"type": "pages", "page": page, "per_page": per_page, "total_pages": max(1, -(-len(hits) // per_page))}
    if len(remaining) > per_page and items:
        pages["next"] = {"per_page": per_page, "starting_after": encode_cursor(items[-1].pk, page + 1)}
    conversations = [{k: c.payload[k] for k in LIST_ITEM_FIELDS if k in c.payload} for c in items]
    return 200, {"type": "conversation.list", "conversations": conversations, "total_count": len(hits), "pages": pages}
