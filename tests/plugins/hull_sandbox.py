"""pytest fixtures that route Hull's firehose and REST API to the Hull sandbox (sandbox/hull/).

Fixture ``hull_sandbox`` -> ``HullSandbox`` (needs the database; shares ``responses_mock`` with the
Intercom sandbox, since two RequestsMocks do not compose).

Routes ``https://firehose.<any domain>/`` and ``https://<any host>/api/v1/...`` (Hull's REST API and
the sandbox's export files) to ``sandbox.hull.api.handle_request``; ``.route_firehose(url)`` adds a
connector's ``hull_firehose_url``. The firehose verifies every record's JWT with the secret of the
connector whose ``hull_id`` signed it (the ``connector`` fixture works as is) and applies it.
While the fixture is active the firehose client does not retry with delays (``RETRY_BACKOFF = 0``)
and ``FirehoseBatch`` has no background timer (flush on ``flush()``/exit/100 records only).

Inspect:
    ``.firehose_records``  -> list of ``FirehoseRecord(type, claims, body, error)``, in order; ``claims``
                            is the decoded JWT (``iss``, ``iat``, ``io.hull.subjectType``,
                            ``io.hull.asUser``, ``io.hull.asAccount``, ``sub``...), ``.subject`` the
                            claims without ``iss``/``iat`` (the scenario runner's form).
    ``.firehose_calls``    -> number of firehose POSTs (one per flushed batch).
    ``.users()``, ``.accounts()`` -> reports as Hull sends them (``traits_`` prefixes on users).
    ``.user(email=... | external_id=... | id=...)`` -> one report or None.
    ``.events(email=None)`` -> ``[{"user_id", "event_id", "event", "properties", "source", "created_at", "context"}]``.
    ``.calls(kind=None)``  -> recorded ``SandboxCall`` rows (kind: firehose | rest | notify | batch | export-file).
    ``.status(connector)`` -> ``{"status", "messages"}`` last PUT to ``/<id>/status``, or None.
Drive:
    ``.set_down(True)``    -> the firehose answers 503 (``False`` restores it).
    ``.enable_extracts()`` -> serve ``POST /api/v1/extract/user_reports|account_reports`` (off by
                            default: Hull's 404): the export of the URL's ``segment_id`` is POSTed
                            at once, in-process, to the path and query of the body's ``url``.
    ``.add_segment(name, kind="users_segment", rule=None, member_ids=None)`` -> SandboxSegment.
    ``.add_user({"email": ...}, {"plan": "pro"}, events=[{"event": "Signed Up"}], account={"domain": ...})``.
    ``.notify_users(connector, users=None, **deliver_kwargs)`` -> NotifyResult (in-process, no sleeping).
    ``.export(connector, object_type="user_report", segment_id="")`` -> (status, answer, export file).
Build payloads (no state needed):
    ``make_user_update(connector, users=[{...raw user...}], changes=None, events=None, segments=None,
    account=None, notification_id=None, is_export=False)`` -> a docs/hull-protocol.md#notifications body with ``traits_`` keys kept;
    ``make_account_update(connector, accounts=[{...}], ...)`` likewise. Both are also importable
    from this module.

Example::

    def test_writes_back(connector, hull_sandbox):
        with FirehoseBatch(HullClient.for_connector(connector)) as batch:
            batch.traits({"email": "jane@acme.com"}, {"intercom_user/id": "1"})
        [record] = hull_sandbox.firehose_records
        assert record.subject == {"io.hull.asUser": {"email": "jane@acme.com"}, "io.hull.subjectType": "user"}
        assert hull_sandbox.user(email="jane@acme.com")["traits_intercom_user/id"] == "1"
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

FIREHOSE_HOST = re.compile(r"^https://firehose\.[^/]+(/.*)?$")
REST = re.compile(r"^https?://[^/]+/api/v1/.*$")
DEFAULT_SEGMENT = {"id": "5bd720690026ca86b000004f", "name": "Star Wars Users", "type": "users_segment",
                   "created_at": "2018-10-29T14:59:53Z", "updated_at": "2018-11-05T20:07:04Z"}


@dataclass
class FirehoseRecord:
    type: str
    claims: dict[str, Any]
    body: dict[str, Any]
    error: str = ""

    @property
    def subject(self) -> dict[str, Any]:
        return {k: v for k, v in self.claims.items() if k not in ("iss", "iat")}


def _configuration(connector: Any) -> dict[str, Any]:
    return {"id": connector.hull_id, "organization": connector.hull_organization, "secret": connector.hull_secret}


def make_user_update(
    connector: Any,
    users: list[Mapping[str, Any]],
    *,
    changes: Mapping[str, Any] | None = None,
    events: list[Mapping[str, Any]] | None = None,
    segments: list[Mapping[str, Any]] | None = None,
    account: Mapping[str, Any] | None = None,
    account_segments: list[Mapping[str, Any]] | None = None,
    notification_id: str | None = None,
    is_export: bool = False,
) -> dict[str, Any]:
    """A `user:update` body (docs/hull-protocol.md#user-update-messages): one message per raw user dict (give `traits_` keys)."""
    segments = [dict(DEFAULT_SEGMENT)] if segments is None else [dict(s) for s in segments]
    messages: list[dict[str, Any]] = []
    for raw in users:
        user = {"id": secrets.token_hex(12), "indexed_at": "2018-12-11T14:20:33+00:00", **raw}
        user.setdefault("segment_ids", [s["id"] for s in segments])
        messages.append({
            "message_id": secrets.token_hex(20),
            "user": user,
            "segments": segments,
            "account": dict(account or {}),
            "account_segments": list(account_segments or []),
            "changes": {"is_new": False, "user": {}, "account": {}, "segments": {}, "account_segments": {}, **(changes or {})},
            "events": [dict(e) for e in events or []],
        })
    return {
        "notification_id": notification_id or str(uuid.uuid4()),
        "configuration": _configuration(connector),
        "channel": "user:update",
        "is_export": is_export,
        "kraken": {"retries": 0},
        "connector": {"id": connector.hull_id, "name": connector.name, "private_settings": {}},
        "segments": segments,
        "accounts_segments": list(account_segments or []),
        "messages": messages,
    }


def make_account_update(
    connector: Any,
    accounts: list[Mapping[str, Any]],
    *,
    changes: Mapping[str, Any] | None = None,
    account_segments: list[Mapping[str, Any]] | None = None,
    notification_id: str | None = None,
    is_export: bool = False,
) -> dict[str, Any]:
    """An `account:update` body (docs/hull-protocol.md#account-update-messages); account attributes are never `traits_`-prefixed."""
    account_segments = list(account_segments or [])
    messages: list[dict[str, Any]] = [
        {
            "message_id": secrets.token_hex(20),
            "account": {"id": secrets.token_hex(12), "indexed_at": "2018-12-09T12:05:58+00:00", **raw},
            "account_segments": account_segments,
            "changes": {"is_new": False, "account": {}, "account_segments": {}, **(changes or {})},
        }
        for raw in accounts
    ]
    return {
        "notification_id": notification_id or str(uuid.uuid4()),
        "configuration": _configuration(connector),
        "channel": "account:update",
        "is_export": is_export,
        "connector": {"id": connector.hull_id, "name": connector.name, "private_settings": {}},
        "segments": [],
        "accounts_segments": account_segments,
        "messages": messages,
    }


class HullSandbox:
    make_user_update = staticmethod(make_user_update)
    make_account_update = staticmethod(make_account_update)

    def __init__(self, mock: responses.RequestsMock, organization: str = "acme.hullapp.io") -> None:
        self.mock = mock
        self.organization = organization
        mock.add_callback(responses.POST, FIREHOSE_HOST, callback=self._firehose)
        for method in (responses.GET, responses.PUT, responses.POST, responses.DELETE):
            mock.add_callback(method, REST, callback=self._rest)

    # -- routing ---------------------------------------------------------------------------

    def _answer(self, status: int, payload: Any) -> tuple[int, dict[str, str], str]:
        import json

        if isinstance(payload, str):
            return status, {"Content-Type": "text/plain"}, payload
        return status, {"Content-Type": "application/json"}, json.dumps(payload)

    def _firehose(self, request: Any) -> tuple[int, dict[str, str], str]:
        from sandbox.hull.api import handle_request

        status, _headers, payload = handle_request("POST", "/firehose", {}, dict(request.headers), request.body)
        return self._answer(status, payload)

    def _rest(self, request: Any) -> tuple[int, dict[str, str], str]:
        from sandbox.hull.api import handle_request

        parts = urlsplit(request.url)
        path = parts.path[parts.path.index("/api/v1/") :]
        status, _headers, payload = handle_request(
            request.method, path, dict(parse_qsl(parts.query)), dict(request.headers), request.body
        )
        return self._answer(status, payload)

    def route_firehose(self, url: str) -> None:
        """Also treat `url` (a connector's hull_firehose_url) as the firehose."""
        self.mock.add_callback(responses.POST, re.compile("^" + re.escape(url.rstrip("/")) + "/?$"), callback=self._firehose)

    def enable_extracts(self, enabled: bool = True) -> None:
        from sandbox.hull.api import SandboxState

        SandboxState.extracts_enabled = enabled

    def set_down(self, down: bool = True) -> None:
        from sandbox.hull.api import SandboxState

        SandboxState.firehose_down = down

    # -- inspection ------------------------------------------------------------------------

    @property
    def firehose_records(self) -> list[FirehoseRecord]:
        from sandbox.hull.models import SandboxFirehoseRecord

        return [FirehoseRecord(r.type, r.claims, r.body, r.error) for r in SandboxFirehoseRecord.objects.order_by("id")]

    @property
    def firehose_calls(self) -> int:
        return len(self.calls("firehose"))

    def calls(self, kind: str | None = None) -> list[Any]:
        from sandbox.hull.models import SandboxCall

        rows = SandboxCall.objects.order_by("id")
        return list(rows.filter(kind=kind) if kind else rows)

    def users(self) -> list[dict[str, Any]]:
        from sandbox.hull.models import SandboxUser
        from sandbox.hull.platform import user_report

        return [{**user_report(u), "account_id": u.account.hull_id if u.account is not None else None}
                for u in SandboxUser.objects.select_related("account").order_by("id")]

    def user(self, **claims: Any) -> dict[str, Any] | None:
        for user in self.users():
            if all(user.get(k) == v for k, v in claims.items()):
                return user
        return None

    def accounts(self) -> list[dict[str, Any]]:
        from sandbox.hull.models import SandboxAccount
        from sandbox.hull.platform import account_report

        return [account_report(a) for a in SandboxAccount.objects.order_by("id")]

    def events(self, email: str | None = None) -> list[dict[str, Any]]:
        from sandbox.hull.models import SandboxEvent

        rows = SandboxEvent.objects.select_related("user").order_by("id")
        if email:
            rows = rows.filter(user__email=email)
        return [
            {"user_id": e.user.hull_id, "event_id": e.event_id, "event": e.event, "properties": e.properties,
             "source": e.source, "created_at": e.created_at, "context": e.context}
            for e in rows
        ]

    def status(self, connector: Any) -> dict[str, Any] | None:
        from sandbox.hull.models import SandboxConnectorStatus

        row = SandboxConnectorStatus.objects.filter(connector_id=connector.hull_id).first()
        return {"status": row.status, "messages": row.messages} if row else None

    # -- driving ---------------------------------------------------------------------------

    def add_segment(self, name: str, **kwargs: Any) -> Any:
        from sandbox.hull.seed import add_segment

        return add_segment(self.organization, name, **kwargs)

    def add_user(self, claims: Mapping[str, Any], traits: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        from sandbox.hull.seed import upsert_user

        return upsert_user(self.organization, claims, traits, **kwargs)

    def add_account(self, claims: Mapping[str, Any], traits: Mapping[str, Any] | None = None) -> Any:
        from sandbox.hull.seed import upsert_account

        return upsert_account(self.organization, claims, traits)

    def notify_users(self, connector: Any, users: Any = None, **kwargs: Any) -> Any:
        from sandbox.hull.notifier import notify_users

        kwargs.setdefault("sleep", lambda seconds: None)
        return notify_users(connector, users, **kwargs)

    def notify_accounts(self, connector: Any, accounts: Any = None, **kwargs: Any) -> Any:
        from sandbox.hull.notifier import notify_accounts

        kwargs.setdefault("sleep", lambda seconds: None)
        return notify_accounts(connector, accounts, **kwargs)

    def export(self, connector: Any, **kwargs: Any) -> Any:
        from sandbox.hull.notifier import export_to_connector

        return export_to_connector(connector, **kwargs)


@pytest.fixture
def hull_sandbox(db: Any, responses_mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> Iterator[HullSandbox]:
    from sandbox.hull.api import SandboxState
    from sync.hull import client as client_module
    from sync.hull import firehose as firehose_module

    monkeypatch.setattr(client_module, "RETRY_BACKOFF", 0.0)
    monkeypatch.setattr(firehose_module, "FLUSH_AFTER", 0)
    SandboxState.extracts_enabled = False
    sandbox = HullSandbox(responses_mock)
    try:
        yield sandbox
    finally:
        SandboxState.firehose_down = False
        SandboxState.extracts_enabled = True
