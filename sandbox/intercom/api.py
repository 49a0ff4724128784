"""The sandbox's one entry point: `handle_request(method, path, query, headers, body)`.

It returns `(status, headers, body)` with `body` a JSON-able object (or None), so the same code
serves the Django views under /sandbox/intercom/ and the `responses` fixture of the tests.
In order: bearer token -> Accept -> added latency -> rate-limit window (429 with the real
X-RateLimit-* headers) -> injected 5xx -> route -> handler; handler errors become `error.list`.

Injected faults strike before the work (`fault_mode="before"`: nothing was done) or after it, as
Intercom's do too: `"after"` carries the call out and answers a 5xx, `"drop"` carries it out and
loses the answer (`AnswerLost`: the test fixture turns it into a read timeout, the HTTP view into
a 504 from the "gateway"). A client that retries a create after either makes a twin.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction

from sandbox.intercom import clock, contacts, conversations, resources, subscriptions
from sandbox.intercom.errors import SandboxError
from sandbox.intercom.models import Workspace
from sandbox.intercom.state import SandboxRequest

API_VERSION = "2.15"

# Tokens that open a workspace on first use: the demo's and the test suite's connector.
AUTO_WORKSPACES = {
    "demo-intercom-token": "demo",  # seed_demo's connector
    "dG9rOmludGVyY29tLXNhbmRib3gtdG9rZW4=": "ws_acme",
}

Handler = Callable[[SandboxRequest], tuple[int, Any]]
_ID = r"(?P<id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in [
        ("GET", "/me", resources.me),
        ("POST", "/contacts", contacts.create_contact),
        ("GET", "/contacts", contacts.list_contacts),
        ("POST", "/contacts/search", contacts.search_contacts),
        ("POST", "/contacts/merge", contacts.merge_contacts),
        ("GET", "/contacts/find_by_external_id/(?P<external_id>[^/]+)", contacts.find_by_external_id),
        ("GET", f"/contacts/{_ID}", contacts.get_contact),
        ("PUT", f"/contacts/{_ID}", contacts.update_contact),
        ("DELETE", f"/contacts/{_ID}", contacts.delete_contact),
        ("POST", f"/contacts/{_ID}/archive", contacts.archive_contact),
        ("POST", f"/contacts/{_ID}/unarchive", contacts.unarchive_contact),
        ("GET", f"/contacts/{_ID}/tags", contacts.list_contact_tags),
        ("POST", f"/contacts/{_ID}/tags", contacts.tag_contact),
        ("DELETE", f"/contacts/{_ID}/tags/(?P<tag_id>[^/]+)", contacts.untag_contact),
        ("GET", f"/contacts/{_ID}/companies", contacts.list_contact_companies),
        ("POST", f"/contacts/{_ID}/companies", contacts.attach_company),
        ("DELETE", f"/contacts/{_ID}/companies/(?P<company_id>[^/]+)", contacts.detach_company),
        ("GET", f"/contacts/{_ID}/segments", contacts.list_contact_segments),
        ("GET", f"/contacts/{_ID}/subscriptions", subscriptions.list_contact_subscriptions),
        ("POST", f"/contacts/{_ID}/subscriptions", subscriptions.attach_subscription),
        ("DELETE", f"/contacts/{_ID}/subscriptions/(?P<subscription_id>[^/]+)", subscriptions.detach_subscription),
        ("GET", "/subscription_types", subscriptions.list_subscription_types),
        ("POST", "/companies", resources.upsert_company),
        ("GET", "/companies", resources.find_or_list_companies),
        ("POST", "/companies/list", resources.list_companies),
        ("GET", "/companies/scroll", resources.scroll_companies),
        ("GET", f"/companies/{_ID}", resources.get_company),
        ("GET", f"/companies/{_ID}/segments", resources.list_company_segments),
        ("GET", "/tags", resources.list_tags),
        ("POST", "/tags", resources.create_or_update_tag),
        ("GET", f"/tags/{_ID}", resources.get_tag),
        ("DELETE", f"/tags/{_ID}", resources.delete_tag),
        ("GET", "/data_attributes", resources.list_data_attributes),
        ("POST", "/data_attributes", resources.create_data_attribute),
        ("POST", "/events", resources.create_event),
        ("POST", "/conversations/search", conversations.search_conversations),
        ("GET", f"/conversations/{_ID}", resources.get_conversation),
    ]
]

# Fault injection draws from this generator; tests seed it for reproducible runs.
fault_random = random.Random()
FAULTS = [
    (500, "server_error", "Unknown server error"),
    (503, "service_unavailable", "Sorry, the API service is temporarily unavailable"),
    (504, "server_timeout", "Server timed out when making request"),
]


class AnswerLost(Exception):
    """The call was carried out but its answer never reaches the client (read timeout)."""

    def __init__(self, status: int, headers: dict[str, str], body: Any) -> None:
        super().__init__("the answer was lost after the work was done")
        self.status, self.headers, self.body = status, headers, body


def error_body(code: str, message: str) -> dict:
    return {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": [{"code": code, "message": message}]}


def workspace_for_token(token: str) -> Workspace | None:
    workspace = Workspace.objects.filter(token=token).first()
    if workspace is None and token in AUTO_WORKSPACES:
        workspace, _ = Workspace.objects.get_or_create(
            token=token, defaults={"id_code": AUTO_WORKSPACES[token], "name": f"Sandbox {AUTO_WORKSPACES[token]}"}
        )
    return workspace


def _take_rate_slot(workspace: Workspace) -> tuple[bool, dict[str, str]]:
    """Count the call in the workspace's fixed window; False when the window is full."""
    if not workspace.rate_limit:
        return True, {}
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().only("rate_limit", "rate_window_seconds", "window_index", "window_count").get(pk=workspace.pk)
        window = max(1, ws.rate_window_seconds)
        index = int(clock.now() // window)
        if index != ws.window_index:
            ws.window_index, ws.window_count = index, 0
        allowed = ws.window_count < ws.rate_limit
        if allowed:
            ws.window_count += 1
        ws.save(update_fields=["window_index", "window_count"])
    headers = {
        "X-RateLimit-Limit": str(ws.rate_limit),
        "X-RateLimit-Remaining": str(max(0, ws.rate_limit - ws.window_count)),
        "X-RateLimit-Reset": str((index + 1) * window),
    }
    return allowed, headers


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def handle_request(
    method: str, path: str, query: Mapping[str, Any], headers: Mapping[str, str], body: Any, *, faults: bool = True,
    fault: str = "",
) -> tuple[int, dict[str, str], Any]:
    """Serve one Intercom API call against the sandbox database (`faults=False`: no injected fault;
    `fault="before"|"after"|"drop"`: this call fails so, whatever the workspace's fault rate)."""
    method = method.upper()
    path = "/" + path.strip("/")
    base_headers = {"Content-Type": "application/json", "X-Request-Id": uuid.uuid4().hex, "X-Intercom-Version": API_VERSION}
    auth = _header(headers, "Authorization")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    workspace = workspace_for_token(token) if token else None
    if workspace is None:
        return 401, base_headers, error_body("unauthorized", "Access Token Invalid")
    accept = _header(headers, "Accept")
    if accept and "application/json" not in accept and "*/*" not in accept:
        return 406, base_headers, error_body(
            "media_type_not_acceptable", "The Accept header should send a media type of application/json"
        )
    if workspace.latency_ms:
        time.sleep(workspace.latency_ms / 1000)
    allowed, rate_headers = _take_rate_slot(workspace)
    response_headers = {**base_headers, **rate_headers}
    if not allowed:
        message = f"Exceeded rate limit of {workspace.rate_limit} in {workspace.rate_window_seconds}_seconds"
        return 429, response_headers, error_body("rate_limit_exceeded", message)
    fault_after = ""
    mode = fault or (workspace.fault_mode if faults and workspace.fault_rate and fault_random.random() < workspace.fault_rate else "")
    if mode:
        status, code, message = fault_random.choice(FAULTS)
        if mode not in ("after", "drop"):
            return status, response_headers, error_body(code, message)
        fault_after = mode
    flat_query = {k: (v[0] if isinstance(v, (list, tuple)) else v) for k, v in query.items()}
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            request = SandboxRequest(method, path, flat_query, dict(headers), body, workspace, match.groupdict())
            try:
                with transaction.atomic():
                    status, payload = handler(request)
            except SandboxError as exc:
                return exc.status, response_headers, error_body(exc.code, exc.message)
            if fault_after == "after":  # the work is done and stays done
                fault_status, code, message = fault_random.choice(FAULTS)
                return fault_status, response_headers, error_body(code, message)
            if fault_after == "drop":
                raise AnswerLost(status, response_headers, payload)
            return status, response_headers, payload
    return 404, response_headers, error_body("not_found", "Resource Not Found")
