"""An in-process double of Intercom's REST API for `requests`: routes calls to the sandbox (sandbox/intercom/).

Used by the pytest fixtures (tests/plugins/intercom_sandbox.py documents the knobs) and by the
benchmarks (bench/), so a benchmark needs nothing from tests/. Every request and answer is checked
against Intercom's OpenAPI 2.15 description.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

from sandbox.intercom import api, clock
from sandbox.intercom.contract import ContractRequest, ContractResponse, ContractViolation, validate_request, validate_response
from sandbox.intercom.models import Company, Contact, ContactTag, Conversation, DataAttribute, Event, Tag, Workspace
from sandbox.intercom.render import render_attribute, render_company, render_contact, render_tag
from sandbox.intercom.state import index_write, now_int
from sync.intercom import client as client_module

DEFAULT_BASE_URL = "https://api.intercom.io"
DEFAULT_TOKEN = "dG9rOmludGVyY29tLXNhbmRib3gtdG9rZW4="  # the `connector` fixture's token
DEFAULT_WORKSPACE = "ws_acme"


class Call(tuple):
    """`(method, path, body)`, comparable to a plain tuple, with `.query` and `.status` besides."""

    query: dict[str, str]
    status: int

    def __new__(cls, method: str, path: str, body: Any, query: dict[str, str] | None = None) -> Call:
        call = super().__new__(cls, (method, path, body))
        call.query = query or {}
        call.status = 0
        return call

    method = property(lambda self: self[0])
    path = property(lambda self: self[1])
    body = property(lambda self: self[2])


@dataclass
class Strike:
    """Calls `strike` planned to fail: the `calls`-th matching ones, counted in `seen`."""

    method: str
    path: str
    calls: frozenset[int]
    mode: str
    when: Any = None
    seen: int = 0


class IntercomSandbox:
    """A handle on the sandbox workspace of one test (see the module docstring)."""

    def __init__(self, mock: responses.RequestsMock, *, token: str = DEFAULT_TOKEN, id_code: str = DEFAULT_WORKSPACE) -> None:
        self._mock = mock
        self.token = token
        self.workspace, _ = Workspace.objects.get_or_create(token=token, defaults={"id_code": id_code, "name": "Acme (sandbox)"})
        self.calls: list[Call] = []
        self.slept: list[float] = []
        self.violations: list[str] = []
        self.validate = True
        self.fault_only: set[tuple[str, str]] = set()
        self.strikes: list[Strike] = []
        self._bases: list[str] = []
        self.base_url = DEFAULT_BASE_URL
        self.route(DEFAULT_BASE_URL)

    # -- routing --------------------------------------------------------------------------

    def route(self, base_url: str) -> None:
        base_url = base_url.rstrip("/")
        if base_url in self._bases:
            return
        self._bases.append(base_url)
        pattern = re.compile(re.escape(base_url) + r"(/.*)?(\?.*)?$")
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            self._mock.add_callback(method, pattern, callback=self._callback)

    def _callback(self, request: Any) -> tuple[int, dict[str, str], str]:
        url = urlsplit(request.url)
        base = next(b for b in sorted(self._bases, key=len, reverse=True) if request.url.startswith(b))
        path = "/" + url.path[len(urlsplit(base).path) :].lstrip("/")
        query_pairs = parse_qsl(url.query, keep_blank_values=True)
        raw = request.body.encode() if isinstance(request.body, str) else request.body
        body = json.loads(raw) if raw else None
        headers = dict(request.headers)
        call = Call(request.method, path, body, dict(query_pairs))
        self.calls.append(call)
        contract_request = ContractRequest(request.method, path, query_pairs, headers, raw or None)
        if self.validate:
            self._check(validate_request, contract_request)
        try:
            faults = not self.fault_only or (request.method, path) in self.fault_only
            extra: dict[str, Any] = {} if faults else {"faults": False}  # tests may wrap handle_request with the old signature
            struck = self._struck(request.method, path, dict(query_pairs), body)
            if struck:
                extra["fault"] = struck
            status, response_headers, payload = api.handle_request(request.method, path, dict(query_pairs), headers, body, **extra)
        except api.AnswerLost as lost:
            # The work is done; the client waits for an answer that never comes.
            call.status = 0
            raise requests.exceptions.ReadTimeout("sandbox: the answer was lost after the work was done") from lost
        call.status = status
        text = "" if payload is None else json.dumps(payload)
        if self.validate:
            self._check(validate_response, contract_request, ContractResponse(status, response_headers, text.encode() or None))
        return status, response_headers, text

    def _struck(self, method: str, path: str, query: dict[str, str], body: Any) -> str:
        """The fault mode `strike` planned for this call, or ""."""
        for strike in self.strikes:
            if method == strike.method and path == strike.path and (strike.when is None or strike.when(query, body)):
                strike.seen += 1
                if strike.seen in strike.calls:
                    return strike.mode
        return ""

    def _check(self, validator: Any, *args: Any) -> None:
        try:
            validator(*args)
        except ContractViolation as exc:
            self.violations.append(str(exc))
            raise

    @property
    def responses(self) -> list[int]:
        return [c.status for c in self.calls]

    # -- knobs ----------------------------------------------------------------------------

    def _update(self, **fields: Any) -> None:
        Workspace.objects.filter(pk=self.workspace.pk).update(**fields)
        self.workspace.refresh_from_db()

    def set_rate_limit(self, limit: int, window_seconds: int = 10) -> None:
        """Limit calls per window, and move sandbox time to half a second into a fresh window.

        Intercom's windows are aligned to the epoch (`X-RateLimit-Reset` is a multiple of the
        window), and so are the sandbox's. Without the move, a test's frozen start time could fall
        a few seconds before a window change and the client would wait it out in-line instead of
        halting: a test that passed or failed by the time of day.
        """
        self._update(rate_limit=limit, rate_window_seconds=window_seconds, window_index=0, window_count=0)
        if limit and window_seconds:
            clock.advance(window_seconds - clock.now() % window_seconds + 0.5)

    def set_fault_rate(
        self, share: float, seed: int = 0, mode: str = "before", only: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """`mode`: "before" (nothing done, then a 5xx), "after" (done, then a 5xx) or "drop" (done,
        then the answer is lost: the client sees a read timeout). `only`: (method, path) pairs the
        faults strike, e.g. `(("POST", "/contacts"),)`; every call when empty."""
        api.fault_random.seed(seed)
        self.fault_only = set(only)
        self._update(fault_rate=share, fault_mode=mode)

    def strike(self, method: str, path: str, *calls: int, mode: str = "after", when: Any = None) -> None:
        """The `calls`-th (1-based, counted from now) `method path` calls for which `when(query, body)`
        is true fail with the sandbox's own fault, in `mode` ("before", "after": the work is done,
        then a 5xx; "drop": done, then the answer is lost), whatever the fault rate. E.g. the
        scroll breaking mid-way after it moved on: `strike("GET", "/companies/scroll", 10,
        when=lambda q, b: "scroll_param" in q)`."""
        self.strikes.append(Strike(method.upper(), path, frozenset(calls), mode, when))

    def set_latency(self, ms: int) -> None:
        self._update(latency_ms=ms)

    def set_search_lag(self, seconds: float) -> None:
        self._update(search_lag_seconds=seconds)

    def advance(self, seconds: float) -> None:
        clock.advance(seconds)

    def add_workspace(self, token: str, id_code: str) -> Workspace:
        return Workspace.objects.get_or_create(token=token, defaults={"id_code": id_code})[0]

    def client(self, **kwargs: Any) -> client_module.IntercomClient:
        kwargs.setdefault("workspace_key", self.workspace.id_code)
        kwargs.setdefault("base_url", self.base_url)
        return client_module.IntercomClient(self.token, **kwargs)

    # -- seeding (bypasses the API, no call recorded, searchable per the lag) ---------------

    def add_contact(self, role: str = "user", *, fresh: bool = False, **fields: Any) -> dict:
        """A contact that already exists in the workspace: searchable at once, as old contacts are.
        `fresh=True`: written just now, so search shows it only after the workspace's lag."""
        now = now_int()
        contact = Contact(workspace=self.workspace, role=role, created_at=fields.pop("created_at", now), updated_at=fields.pop("updated_at", now))
        for key, value in fields.items():
            setattr(contact, key, value)
        contact.workspace = self.workspace
        index_write(contact, None)
        if not fresh:
            contact.searchable_at = clock.now() - 1
        contact.save()
        return render_contact(contact, self.workspace)

    def add_company(self, company_id: str, name: str | None = None, contact_ids: tuple[str, ...] | list[str] = (), **fields: Any) -> dict:
        now = now_int()
        company = Company.objects.create(workspace=self.workspace, company_id=company_id, name=name, created_at=now, updated_at=now, **fields)
        for contact in Contact.objects.filter(workspace=self.workspace, intercom_id__in=list(contact_ids)):
            company.contacts.add(contact)
        return render_company(company, self.workspace)

    def add_tag(self, name: str) -> dict:
        ws = Workspace.objects.get(pk=self.workspace.pk)
        ws.next_tag_id += 1
        ws.save(update_fields=["next_tag_id"])
        return render_tag(Tag.objects.create(workspace=ws, tag_id=str(ws.next_tag_id), name=name))

    def add_data_attribute(self, name: str, data_type: str = "string", model: str = "contact") -> dict:
        ws = Workspace.objects.get(pk=self.workspace.pk)
        ws.next_attribute_id += 1
        ws.save(update_fields=["next_attribute_id"])
        attribute = DataAttribute.objects.create(
            workspace=ws, attribute_id=ws.next_attribute_id, model=model, name=name, data_type=data_type, created_at=now_int()
        )
        return render_attribute(attribute)

    def add_subscription_type(self, name: str, consent_type: str = "opt_out", state: str = "live") -> dict:
        from sandbox.intercom.models import SubscriptionType
        from sandbox.intercom.subscriptions import render_subscription_type

        type_id = str(100 + SubscriptionType.objects.filter(workspace=self.workspace).count())
        return render_subscription_type(
            SubscriptionType.objects.create(workspace=self.workspace, type_id=type_id, name=name, consent_type=consent_type, state=state)
        )

    def contact_subscriptions(self, contact_id: str) -> list[str]:
        """Names of the subscription types the contact is attached to (opted in to opt_in ones, out of opt_out ones)."""
        from sandbox.intercom.models import SubscriptionType

        return sorted(SubscriptionType.objects.filter(workspace=self.workspace, contacts__intercom_id=contact_id).values_list("name", flat=True))

    def add_conversation(self, payload: dict) -> dict:
        Conversation.objects.create(workspace=self.workspace, conversation_id=str(payload["id"]), payload=payload)
        return payload

    # -- inspection -----------------------------------------------------------------------

    def contacts(self, role: str | None = None, include_deleted: bool = False, include_archived: bool = True) -> list[dict]:
        qs = Contact.objects.filter(workspace=self.workspace).prefetch_related("contacttag_set__tag", "companies")
        if role:
            qs = qs.filter(role=role)
        if not include_deleted:
            qs = qs.filter(deleted=False)
        if not include_archived:
            qs = qs.filter(archived=False)
        return [render_contact(c, self.workspace) | {"archived": c.archived, "deleted": c.deleted} for c in qs]

    def contact(self, contact_id: str) -> dict:
        return render_contact(Contact.objects.get(workspace=self.workspace, intercom_id=contact_id), self.workspace)

    def companies(self) -> list[dict]:
        return [render_company(c, self.workspace) for c in Company.objects.filter(workspace=self.workspace)]

    def tags(self) -> list[dict]:
        return [render_tag(t) for t in Tag.objects.filter(workspace=self.workspace)]

    def contact_tag_names(self, contact_id: str) -> list[str]:
        return sorted(ContactTag.objects.filter(contact__intercom_id=contact_id).values_list("tag__name", flat=True))

    def events(self, contact_id: str | None = None) -> list[dict]:
        qs = Event.objects.filter(workspace=self.workspace).select_related("contact")
        if contact_id:
            qs = qs.filter(contact__intercom_id=contact_id)
        return [
            {"event_name": e.event_name, "created_at": e.created_at, "id": e.contact.intercom_id, "metadata": e.metadata}
            for e in qs
        ]

    def data_attributes(self, model: str = "contact") -> list[dict]:
        return [render_attribute(a) for a in DataAttribute.objects.filter(workspace=self.workspace, model=model)]
