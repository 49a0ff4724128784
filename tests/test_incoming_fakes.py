"""In-memory stand-ins for the incoming tests: an Intercom workspace and a recording firehose.

They implement exactly the parts of `IntercomClient` and `FirehoseBatch` (docs/interfaces.md)
the incoming code calls, so the incoming behaviour is tested without network or timing. The
HTTP-level sandboxes (tests/plugins) test the clients themselves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from sync.intercom.errors import IntercomNotFound


class FakeIntercom:
    """A workspace: contacts, companies, tags; optional failure injection per method call count."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.companies: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, str] = {}  # id -> name
        self.contact_tags: dict[str, list[str]] = {}  # contact id -> tag ids
        self.contact_companies: dict[str, list[str]] = {}
        self.contact_segments: dict[str, list[str]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, Callable[[int], Exception | None]] = {}
        self._counts: dict[str, int] = {}

    # -- seeding ---------------------------------------------------------------------------

    def add_contact(self, contact_id: str, *, role: str = "user", updated_at: int = 1_700_000_000, **fields: Any) -> dict:
        contact = {
            "type": "contact",
            "id": contact_id,
            "role": role,
            "external_id": fields.pop("external_id", f"ext-{contact_id}" if role == "user" else None),
            "email": fields.pop("email", f"{contact_id}@example.com"),
            "name": fields.pop("name", f"Contact {contact_id}"),
            "phone": None,
            "avatar": None,
            "owner_id": None,
            "created_at": updated_at - 1000,
            "updated_at": updated_at,
            "signed_up_at": None,
            "last_seen_at": updated_at - 10,
            "unsubscribed_from_emails": False,
            "location": {"type": "location", "country": "France", "region": None, "city": "Paris"},
            "social_profiles": {"type": "list", "data": []},
            "tags": {"type": "list", "data": [], "has_more": False},
            "companies": {"type": "list", "data": [], "has_more": False},
            "custom_attributes": {},
        }
        contact.update(fields)
        self.contacts[contact_id] = contact
        return contact

    def add_company(self, company_id: str, *, updated_at: int = 1_700_000_000, **fields: Any) -> dict:
        company = {
            "type": "company",
            "id": company_id,
            "company_id": f"cid-{company_id}",
            "name": f"Company {company_id}",
            "website": f"{company_id}.example.com",
            "created_at": updated_at - 1000,
            "updated_at": updated_at,
            "monthly_spend": 0,
            "tags": {"type": "tag.list", "tags": []},
            "custom_attributes": {},
        }
        company.update(fields)
        self.companies[company_id] = company
        return company

    # -- failure injection -----------------------------------------------------------------

    def _call(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        self._counts[name] = self._counts.get(name, 0) + 1
        rule = self.fail.get(name)
        if rule is not None:
            error = rule(self._counts[name])
            if error is not None:
                raise error

    def count(self, name: str) -> int:
        return self._counts.get(name, 0)

    # -- the client interface --------------------------------------------------------------

    def search_contacts_page(self, query: dict, *, per_page: int = 150, starting_after: str | None = None) -> dict:
        self._call("search_contacts_page", query)
        filters = query["value"] if "operator" in query and isinstance(query.get("value"), list) else [query]
        matches = list(self.contacts.values())
        for condition in filters:
            field, op, value = condition["field"], condition["operator"], condition["value"]
            if op == "=":
                matches = [c for c in matches if c.get(field) == value]
            elif op == ">":
                matches = [c for c in matches if (c.get(field) or 0) > value]
        matches.sort(key=lambda c: (c["updated_at"], c["id"]))
        offset = _decode(starting_after) if starting_after else 0
        page = matches[offset : offset + per_page]
        more = offset + per_page < len(matches)
        pages: dict[str, Any] = {"type": "pages", "page": offset // per_page + 1, "per_page": per_page}
        if more:
            pages["next"] = {"page": pages["page"] + 1, "starting_after": _encode(offset + per_page)}
        return {"type": "list", "data": [json.loads(json.dumps(c)) for c in page], "total_count": len(matches), "pages": pages}

    def get_contact(self, contact_id: str) -> dict:
        self._call("get_contact", contact_id)
        if contact_id not in self.contacts:
            raise IntercomNotFound("Contact Not Found", status=404, code="not_found")
        return self.contacts[contact_id]

    def list_tags(self) -> dict:
        self._call("list_tags")
        return {"type": "list", "data": [{"type": "tag", "id": k, "name": v} for k, v in self.tags.items()]}

    def list_contact_tags(self, contact_id: str) -> dict:
        self._call("list_contact_tags", contact_id)
        if contact_id not in self.contacts:
            raise IntercomNotFound("Contact Not Found", status=404, code="not_found")
        ids = self.contact_tags.get(contact_id, [])
        return {"type": "list", "data": [{"type": "tag", "id": i, "name": self.tags[i]} for i in ids]}

    def list_contact_companies(self, contact_id: str) -> dict:
        self._call("list_contact_companies", contact_id)
        ids = self.contact_companies.get(contact_id, [])
        return {"type": "list", "data": [self.companies[i] for i in ids], "total_count": len(ids)}

    def list_contact_segments(self, contact_id: str) -> dict:
        self._call("list_contact_segments", contact_id)
        return {"type": "list", "data": [{"type": "segment", "name": n} for n in self.contact_segments.get(contact_id, [])]}

    def list_company_segments(self, company_id: str) -> dict:
        self._call("list_company_segments", company_id)
        return {"type": "list", "data": []}

    def scroll_companies_page(self, scroll_param: str | None = None) -> dict:
        self._call("scroll_companies_page", scroll_param)
        ordered = sorted(self.companies.values(), key=lambda c: c["id"])
        offset = _decode(scroll_param) if scroll_param else 0
        page = ordered[offset : offset + 50]
        return {"type": "list", "data": page, "pages": None, "total_count": None, "scroll_param": _encode(offset + 50)}

    def list_companies_page(self, *, page: int = 1, per_page: int = 50) -> dict:
        self._call("list_companies_page", page)
        ordered = sorted(self.companies.values(), key=lambda c: c["id"])
        total_pages = max(1, -(-len(ordered) // per_page))
        data = ordered[(page - 1) * per_page : page * per_page]
        nxt = page + 1 if page < total_pages else None
        return {"type": "list", "data": data, "total_count": len(ordered),
                "pages": {"type": "pages", "page": page, "per_page": per_page, "total_pages": total_pages, "next": nxt}}


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode(cursor: str) -> int:
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])


class RecordingFirehose:
    """FirehoseBatch look-alike: records every call; `fail_on_flush(n)` raises on the n-th flush."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.flushes = 0
        self._pending: list[dict[str, Any]] = []
        self.fail_flush_numbers: set[int] = set()

    def __call__(self, connector: Any) -> RecordingFirehose:
        return self

    def __enter__(self) -> RecordingFirehose:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.flush()
        else:
            self._pending = []

    def _add(self, record: dict[str, Any]) -> None:
        self._pending.append(record)
        if len(self._pending) >= 100:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        self.flushes += 1
        if self.flushes in self.fail_flush_numbers:
            self._pending = []
            raise ConnectionError("firehose unavailable")
        self.records.extend(self._pending)
        self._pending = []

    def traits(self, user_claims: dict, traits: dict) -> None:
        self._add({"type": "traits", "claims": dict(user_claims), "traits": dict(traits)})

    def account_traits(self, account_claims: dict, traits: dict) -> None:
        self._add({"type": "account_traits", "claims": dict(account_claims), "traits": dict(traits)})

    def link_account(self, user_claims: dict, account_claims: dict) -> None:
        self._add({"type": "link_account", "claims": dict(user_claims), "account": dict(account_claims)})

    def track(self, user_claims: dict, event: str, properties: dict, *, event_id: str, created_at: str | None, context: dict | None = None) -> None:
        self._add({"type": "track", "claims": dict(user_claims), "event": event, "properties": dict(properties),
                   "event_id": event_id, "created_at": created_at, "context": dict(context or {})})

    def alias(self, user_claims: dict, anonymous_id: str) -> None:
        self._add({"type": "alias", "claims": dict(user_claims), "anonymous_id": anonymous_id})

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == kind]


@pytest.fixture
def fake_intercom(monkeypatch: pytest.MonkeyPatch) -> FakeIntercom:
    fake = FakeIntercom()
    from sync.intercom.client import IntercomClient

    monkeypatch.setattr(IntercomClient, "for_connector", classmethod(lambda cls, connector, **kw: fake))
    return fake


@pytest.fixture
def firehose(monkeypatch: pytest.MonkeyPatch) -> RecordingFirehose:
    recorder = RecordingFirehose()
    for module in ("sync.incoming.handlers", "sync.incoming.fetch", "sync.incoming.ingest"):
        monkeypatch.setattr(f"{module}.open_firehose", recorder)
    return recorder
