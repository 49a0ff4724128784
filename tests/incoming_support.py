"""Incoming-test helpers: a recording firehose and seeding shortcuts for the Intercom sandbox.

Intercom is always the contract-checked sandbox (tests/plugins/intercom_sandbox.py); only Hull's
firehose is recorded in memory here, so a test can read the exact records the connector sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.intercom.models import Contact, ContactTag, Tag


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
def firehose(monkeypatch: pytest.MonkeyPatch) -> RecordingFirehose:
    recorder = RecordingFirehose()
    for module in ("sync.incoming.handlers", "sync.incoming.fetch", "sync.incoming.ingest"):
        monkeypatch.setattr(f"{module}.open_firehose", recorder)
    return recorder


def seed_contact(sandbox: Any, intercom_id: str, *, role: str = "user", tags: dict[str, str] | None = None, **fields: Any) -> dict:
    """A sandbox contact with a fixed Intercom id (the fixtures' ids) and, optionally, tags by id."""
    fields.setdefault("email", f"{intercom_id}@example.com")
    if role == "user":
        fields.setdefault("external_id", f"ext-{intercom_id}")
    contact = sandbox.add_contact(role=role, intercom_id=intercom_id, **fields)
    row = Contact.objects.get(intercom_id=intercom_id)
    for tag_id, name in (tags or {}).items():
        tag = seed_tag(sandbox, tag_id, name)
        ContactTag.objects.get_or_create(contact=row, tag=tag, defaults={"applied_at": row.updated_at})
    return contact


def seed_tag(sandbox: Any, tag_id: str, name: str) -> Tag:
    """A workspace tag with a fixed id (the fixtures name tags by id)."""
    return Tag.objects.get_or_create(workspace=sandbox.workspace, tag_id=str(tag_id), defaults={"name": name})[0]


def calls_to(sandbox: Any, method: str, prefix: str) -> list[Any]:
    """The sandbox calls of one kind, e.g. calls_to(sb, "POST", "/contacts/search")."""
    return [c for c in sandbox.calls if c.method == method and c.path.startswith(prefix)]


@pytest.fixture
def intercom(intercom_sandbox: Any) -> Any:
    """The Intercom sandbox with search lag off: these tests seed data and then read it at once."""
    intercom_sandbox.set_search_lag(0)
    return intercom_sandbox


class InjectedFaults:
    """Deterministic faults on chosen sandbox calls, for the tests that need one exact failure.

    `add(predicate, status, after=False)`: calls for which `predicate(method, path, query, body)`
    is true are answered `status`; with `after=True` the sandbox does the work first (Intercom
    can carry a call out and still answer 5xx). A predicate may keep its own count.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from sandbox.intercom import api

        self._original = api.handle_request
        self.rules: list[tuple[Any, int, bool, dict[str, str]]] = []
        monkeypatch.setattr(api, "handle_request", self._handle)

    def add(self, predicate: Any, status: int, *, after: bool = False, headers: dict[str, str] | None = None) -> None:
        self.rules.append((predicate, status, after, headers or {}))

    def clear(self) -> None:
        self.rules.clear()

    def _handle(self, method: str, path: str, query: Any, headers: Any, body: Any) -> tuple[int, dict[str, str], Any]:
        from sandbox.intercom.api import error_body

        for predicate, status, after, extra in self.rules:
            if predicate(method, path, query, body):
                answer_headers = {"Content-Type": "application/json"}
                if after:
                    _, answer_headers, _ = self._original(method, path, query, headers, body)
                code = "rate_limit_exceeded" if status == 429 else "server_error"
                return status, {**answer_headers, **extra}, error_body(code, f"injected {status}")
        return self._original(method, path, query, headers, body)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch, intercom: Any) -> InjectedFaults:
    return InjectedFaults(monkeypatch)


def nth(*numbers: int, method: str = "", path: str = "", when: Any = None) -> Any:
    """A predicate true on the given occurrences (1-based) of matching calls."""
    seen = {"n": 0}

    def predicate(m: str, p: str, query: Any, body: Any) -> bool:
        if (method and m != method) or (path and not p.startswith(path)) or (when and not when(query, body)):
            return False
        seen["n"] += 1
        return seen["n"] in numbers

    return predicate


def seed_company(sandbox: Any, company_id: str, *, members: list[str] | tuple[str, ...] = (), **fields: Any) -> dict:
    """A sandbox company (visible: it has members), with any field set, timestamps included."""
    from sandbox.intercom.models import Company
    from sandbox.intercom.render import render_company

    company = sandbox.add_company(company_id, contact_ids=list(members))
    if fields:
        Company.objects.filter(intercom_id=company["id"]).update(**fields)
    row = Company.objects.get(intercom_id=company["id"])
    return render_company(row, sandbox.workspace)
