"""The stand-in's HTTP surface as one plain function, served by Django views and by `responses`.

`handle_request(method, path, query, headers, body)` -> `(status, headers, payload)`; paths:
- `POST /firehose`, `POST /api/v1/firehose` (and `POST /` on the firehose host): ingestion;
- `GET /api/v1/app`, `GET|PUT /api/v1/<id>`, `PUT /api/v1/<id>/status`,
  `GET /api/v1/users_segments`, `GET /api/v1/accounts_segments`: platform REST (docs/hull-protocol.md#rest-api);
- `GET /api/v1/_exports/<token>`: export files for the batch endpoints.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Mapping
from typing import Any

import jwt
from django.db import transaction

from sandbox.hull import platform
from sandbox.hull.models import (
    SandboxCall,
    SandboxConnectorStatus,
    SandboxExportFile,
    SandboxFirehoseRecord,
    SandboxSegment,
)
from sync.models import Connector

USER_CLAIM_KEYS = {"id", "email", "external_id", "anonymous_id"}
ACCOUNT_CLAIM_KEYS = {"id", "external_id", "domain", "anonymous_id"}
RECORD_TYPES = {"traits", "track", "alias", "unalias", "incinerate"}


class SandboxState:
    """Process-wide switches (tests flip them through the fixture)."""

    firehose_down = False
    # POST /extract/* delivers the export at once. The pytest fixture turns it off by default
    # (tests written before it existed expect Hull's 404) and on with `.enable_extracts()`.
    extracts_enabled = True


_lock = threading.Lock()  # SQLite and the firehose's read-modify-write: one batch at a time


def connector_credentials(connector_id: str) -> tuple[str, str] | None:
    """(secret, organization) of a connector the organization knows; connectors live in sync."""
    connector = Connector.objects.filter(hull_id=connector_id).first()
    if connector is None or not connector.hull_secret:
        return None
    return connector.hull_secret, connector.hull_organization


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _authorized(headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    connector_id = _header(headers, "Hull-App-Id")
    credentials = connector_credentials(connector_id)
    token = _header(headers, "Hull-Access-Token")
    if credentials is None or not token or not hmac.compare_digest(credentials[0].encode(), token.encode()):
        return None
    return connector_id, credentials[0], credentials[1]


def _record(kind: str, method: str, path: str, connector_id: str, body: Any, status: int, response: Any) -> SandboxCall:
    return SandboxCall.objects.create(
        kind=kind, method=method, path=path[:1000], connector_id=connector_id, body=body, status=status, response=response
    )


# --- firehose -----------------------------------------------------------------------------------


def decode_record_token(token: str, secret: str) -> dict[str, Any]:
    """Verify one record's JWT like the platform: signature, subject type, claim keys."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False, "verify_iat": False})
    except jwt.PyJWTError as exc:
        raise platform.IngestionError(f"invalid token: {type(exc).__name__}") from exc
    subject_type = claims.get("io.hull.subjectType")
    if subject_type not in ("user", "account"):
        raise platform.IngestionError("missing or invalid io.hull.subjectType")
    as_user, as_account = claims.get("io.hull.asUser"), claims.get("io.hull.asAccount")
    for given, allowed, name in ((as_user, USER_CLAIM_KEYS, "asUser"), (as_account, ACCOUNT_CLAIM_KEYS, "asAccount")):
        if given is None:
            continue
        if not isinstance(given, dict) or not given or set(given) - allowed:
            raise platform.IngestionError(f"invalid io.hull.{name} claims")
    if subject_type == "user" and not as_user:
        raise platform.IngestionError("user subject without io.hull.asUser")
    if subject_type == "account" and not as_account:
        raise platform.IngestionError("account subject without io.hull.asAccount")
    return claims


def apply_record(organization: str, record_type: str, claims: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    """Apply one verified record to the stored users/accounts/events; returns attribute errors."""
    create = claims.get("io.hull.create", True) is not False
    as_user, as_account = claims.get("io.hull.asUser"), claims.get("io.hull.asAccount")
    errors: list[str] = []
    user = platform.resolve_user(organization, as_user, create=create) if as_user else None
    account = platform.resolve_account(organization, as_account, create=create) if as_account else None
    if (as_user and user is None) or (as_account and account is None):
        raise platform.IngestionError("entity not found and io.hull.create is false")
    subject = account if claims["io.hull.subjectType"] == "account" else user
    if subject is None:  # decode_record_token() already refuses a subject type without its claims
        raise platform.IngestionError(f"no {claims['io.hull.subjectType']} to apply the record to")
    if record_type == "traits":
        errors = platform.apply_traits(subject, body)
        if user is not None and account is not None:
            platform.link_user_to_account(user, account)
    elif record_type == "track":
        if user is None:
            raise platform.IngestionError("track needs a user")
        platform.track_event(user, body)
    elif record_type in ("alias", "unalias"):
        anonymous_id = body.get("anonymous_id")
        if not anonymous_id:
            raise platform.IngestionError(f"{record_type} needs anonymous_id")
        ids = list(subject.anonymous_ids or [])
        if record_type == "alias" and anonymous_id not in ids:
            ids.append(anonymous_id)
        elif record_type == "unalias" and anonymous_id in ids:
            ids.remove(anonymous_id)
        subject.anonymous_ids = ids
    for entity in (user, account):
        if entity is not None:
            platform.recompute_segments(entity)
            entity.save()
    return errors


def ingest_firehose(method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
    if SandboxState.firehose_down:
        _record("firehose", method, path, _header(headers, "Hull-App-Id"), body, 503, None)
        return 503, {"error": "firehose unavailable"}
    auth = _authorized(headers)
    if auth is None:
        _record("firehose", method, path, _header(headers, "Hull-App-Id"), body, 401, None)
        return 401, {"error": "invalid connector credentials"}
    connector_id, secret, organization = auth
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        _record("firehose", method, path, connector_id, body, 400, None)
        return 400, {"error": "body must be {batch: [...]}"}
    with _lock, transaction.atomic():
        call = _record("firehose", method, path, connector_id, {"records": len(body["batch"])}, 200, "ok")
        for raw in body["batch"]:
            record_type = raw.get("type") if isinstance(raw, dict) else None
            record_body = value if isinstance(raw, dict) and isinstance(value := raw.get("body"), dict) else {}
            token = ((raw.get("headers") or {}) if isinstance(raw, dict) else {}).get("Hull-Access-Token", "")
            claims: dict[str, Any] = {}
            error = ""
            try:
                if record_type not in RECORD_TYPES:
                    raise platform.IngestionError(f"unknown record type {record_type!r}")
                claims = decode_record_token(token, secret)
                if claims.get("iss") != connector_id:
                    raise platform.IngestionError("token issued by another connector")
                error = "; ".join(apply_record(organization, record_type, claims, record_body))
            except platform.IngestionError as exc:
                error = str(exc)
            SandboxFirehoseRecord.objects.create(
                call=call, type=str(record_type), claims=claims, body=record_body, error=error[:255]
            )
    # The real firehose is asynchronous: it never says whether a record was applied (docs/hull-protocol.md#firehose).
    return 200, "ok"


# --- platform REST --------------------------------------------------------------------------------


def connector_object(connector_id: str) -> dict[str, Any]:
    connector = Connector.objects.get(hull_id=connector_id)
    status = SandboxConnectorStatus.objects.filter(connector_id=connector_id).first()
    return {
        "id": connector_id,
        "name": connector.name,
        "type": "ship",
        "private_settings": {},
        "settings": {},
        "accept_incoming_webhooks": True,
        "status": {"status": status.status, "messages": status.messages} if status else {},
    }


def segments_of(organization: str, kind: str) -> list[dict[str, Any]]:
    return [platform.segment_object(s) for s in SandboxSegment.objects.filter(organization=organization, kind=kind)]


def rest(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
    parts = [p for p in path.split("/") if p][2:]  # drop "api", "v1"
    if parts[:1] == ["_exports"] and len(parts) == 2 and method == "GET":
        export = SandboxExportFile.objects.filter(token=parts[1]).first()
        _record("export-file", method, path, "", None, 200 if export else 404, None)
        return (200, export.content) if export else (404, {"error": "not found"})
    if parts[:1] == ["_keys"] and len(parts) == 2 and method == "POST":
        from sandbox.hull.signing import public_key_pem

        _record("rest", method, path, "", None, 200, None)
        return 200, public_key_pem()
    auth = _authorized(headers)
    if auth is None:
        _record("rest", method, path, _header(headers, "Hull-App-Id"), body, 401, None)
        return 401, {"error": "invalid connector credentials"}
    connector_id, _secret, organization = auth
    answer: Any  # the reply's JSON body
    status, answer = 404, {"error": "not found"}
    if method == "GET" and parts == ["app"]:
        status, answer = 200, connector_object(connector_id)
    elif method == "GET" and parts == ["users_segments"]:
        status, answer = 200, segments_of(organization, SandboxSegment.Kind.USERS)
    elif method == "GET" and parts == ["accounts_segments"]:
        status, answer = 200, segments_of(organization, SandboxSegment.Kind.ACCOUNTS)
    elif parts == [connector_id] and method in ("GET", "PUT"):
        status, answer = 200, connector_object(connector_id)
    elif parts == [connector_id, "status"] and method == "PUT" and isinstance(body, dict):
        SandboxConnectorStatus.objects.update_or_create(
            connector_id=connector_id,
            defaults={"status": str(body.get("status", "")), "messages": list(body.get("messages") or [])},
        )
        status, answer = 200, {"status": body.get("status"), "messages": body.get("messages") or []}
    elif method == "POST" and parts[:1] == ["extract"] and parts[1:] in (["user_reports"], ["account_reports"]) and SandboxState.extracts_enabled:
        status, answer = request_extract(connector_id, parts[1], body if isinstance(body, dict) else {})
    elif method == "GET" and len(parts) == 1:
        segment = SandboxSegment.objects.filter(organization=organization, hull_id=parts[0]).first()
        if segment is not None:
            status, answer = 200, {**platform.segment_object(segment), "query": {}}
    _record("rest", method, path, connector_id, body, status, answer if status < 400 else None)
    return status, answer


def request_extract(connector_id: str, report: str, body: Mapping[str, Any]) -> tuple[int, Any]:
    """`POST /extract/<report>` (docs/hull-protocol.md#exports): Hull exports the segment and POSTs it to `body.url`.

    The real platform delivers later; the stand-in delivers at once, in-process, to the path and
    query of `url` (whatever its host), so a test sees the whole round trip.
    """
    from urllib.parse import parse_qs, urlsplit

    from sandbox.hull.models import SandboxAccount, SandboxUser
    from sandbox.hull.notifier import export_to_connector

    url = body.get("url")
    if not isinstance(url, str) or body.get("format", "json") != "json":
        return 400, {"error": "url and format json are required"}
    parts = urlsplit(url)
    segment_id = (parse_qs(parts.query).get("segment_id") or [""])[0]
    connector = Connector.objects.get(hull_id=connector_id)
    model = SandboxAccount if report == "account_reports" else SandboxUser
    entities = [e for e in model.objects.filter(organization=connector.hull_organization) if not segment_id or segment_id in (e.segment_ids or [])]
    status, _answer, _file = export_to_connector(
        connector,
        object_type="account_report" if report == "account_reports" else "user_report",
        entities=entities,
        segment_id=segment_id,
        path=parts.path + ("?" + parts.query if parts.query else ""),
        # Over HTTP (the demo), the file is served by this sandbox, not by the organization's real host.
        file_base_url=_sandbox_base(connector),
    )
    return 200, {"status": "ok", "delivered": status, "entities": len(entities)}


def _sandbox_base(connector: Connector) -> str | None:
    firehose = (connector.hull_firehose_url or "").rstrip("/")
    return firehose[: -len("/firehose")] if firehose.endswith("/sandbox/hull/firehose") else None


def handle_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes | str | None
) -> tuple[int, dict[str, str], Any]:
    """Route one request; `path` is relative to the stand-in's root (or the firehose host)."""
    parsed: Any = None
    clean = "/" + path.strip("/")
    if body and not clean.startswith("/api/v1/_keys/"):  # the key URL receives the bare signature
        try:
            parsed = json.loads(body)
        except ValueError:
            return 400, {}, {"error": "invalid JSON"}
    if method == "POST" and clean in ("/", "/firehose", "/api/v1/firehose"):
        status, payload = ingest_firehose(method, clean, headers, parsed)
    elif clean.startswith("/api/v1/"):
        status, payload = rest(method, clean, query, headers, parsed)
    else:
        status, payload = 404, {"error": "not found"}
    return status, {"Content-Type": "application/json"}, payload
