"""The stand-in's notifier ("kraken", docs/hull-protocol.md#the-stand-in) and export sender.

Builds `user:update` / `account:update` notifications from stored state (with the pending
`changes`, undelivered `events`, segment enter/leave), posts them to a connector's
smart-notifier, and obeys the `flow_control` it answers: `next` sends the next `size` messages
after `in` ms; `retry`, 5xx and 400 redeliver the same notification (same id, `kraken.retries`
incremented) up to `max_retries` times.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox.hull import platform
from sandbox.hull.models import SandboxAccount, SandboxCall, SandboxEvent, SandboxExportFile, SandboxSegment, SandboxUser
from sync.models import Connector

# (path, body, headers) -> (status, parsed JSON or None)
Transport = Callable[[str, bytes, dict[str, str]], tuple[int, Any]]


def django_client_transport() -> Transport:
    """Posts through Django's test client: the connector in this process, no server needed."""
    from django.test import Client

    client = Client(raise_request_exception=False)

    def send(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        extra: dict[str, Any] = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        response = client.post(path, data=body, content_type="application/json", **extra)
        try:
            return response.status_code, json.loads(response.content or b"null")
        except ValueError:
            return response.status_code, None

    return send


def http_transport(base_url: str, *, timeout: float = 30.0) -> Transport:
    """Posts over HTTP to a running connector (the demo's `--url`)."""
    import urllib.error
    import urllib.request

    def send(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(base_url.rstrip("/") + path, data=body, method="POST")
        for key, value in {"Content-Type": "application/json", **headers}.items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-given URL
                status, content = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, content = exc.code, exc.read()
        try:
            return status, json.loads(content or b"null")
        except ValueError:
            return status, None

    return send


@dataclass
class Delivery:
    notification_id: str
    messages: int
    status: int
    answer: Any
    retries: int


@dataclass
class NotifyResult:
    deliveries: list[Delivery] = field(default_factory=list)
    delivered_messages: int = 0
    undelivered_messages: int = 0

    @property
    def flow_controls(self) -> list[Any]:
        return [(d.answer or {}).get("flow_control") if isinstance(d.answer, dict) else None for d in self.deliveries]


# --- building messages --------------------------------------------------------------------------


def _segments(organization: str, ids: Iterable[str], kind: str) -> list[dict[str, Any]]:
    wanted = set(ids)
    return [
        {k: v for k, v in platform.segment_object(s).items() if k != "stats"}
        for s in SandboxSegment.objects.filter(organization=organization, kind=kind, hull_id__in=wanted)
    ]


def _event_payload(event: SandboxEvent, user: SandboxUser) -> dict[str, Any]:
    # Hull delivers event dates as "YYYY-MM-DD HH:MM:SS UTC" (docs/hull-protocol.md#user-update-messages); keep that quirk.
    created = event.created_at.replace("T", " ").split(".")[0].rstrip("Z") + " UTC" if event.created_at else None
    return {
        "event_id": event.event_id,
        "event": event.event,
        "event_source": event.source or None,
        "event_type": "track",
        "created_at": created,
        "properties": event.properties,
        "context": {k: v for k, v in event.context.items() if k in ("ip", "useragent", "page", "referrer", "location")},
        "user_id": user.hull_id,
        "anonymous_id": (user.anonymous_ids or [None])[0],
        "app_name": "Sandbox",
    }


def user_message(user: SandboxUser) -> dict[str, Any]:
    changes = dict(user.pending_changes or {})
    account = user.account
    message = {
        "message_id": secrets.token_hex(20),
        "user": platform.user_report(user),
        "segments": _segments(user.organization, user.segment_ids or [], SandboxSegment.Kind.USERS),
        "account": platform.account_report(account) if account else {},
        "account_segments": _segments(user.organization, account.segment_ids or [], SandboxSegment.Kind.ACCOUNTS) if account else [],
        "changes": {
            "is_new": bool(changes.get("is_new")),
            "user": changes.get("user") or {},
            "account": changes.get("account") or {},
            "segments": changes.get("segments") or {},
            "account_segments": changes.get("account_segments") or {},
        },
        "events": [_event_payload(e, user) for e in user.events.filter(delivered=False).order_by("id")],
    }
    return message


def account_message(account: SandboxAccount) -> dict[str, Any]:
    changes = dict(account.pending_changes or {})
    return {
        "message_id": secrets.token_hex(20),
        "account": platform.account_report(account),
        "account_segments": _segments(account.organization, account.segment_ids or [], SandboxSegment.Kind.ACCOUNTS),
        "changes": {
            "is_new": bool(changes.get("is_new")),
            "account": changes.get("account") or {},
            "account_segments": changes.get("account_segments") or {},
        },
    }


def notification_body(
    connector: Connector, channel: str, messages: list[Any], *, notification_id: str | None = None, is_export: bool = False, retries: int = 0
) -> dict[str, Any]:
    """The docs/hull-protocol.md#notifications body: both segment lists in the platform's spelling (`segments`, `accounts_segments`)."""
    organization = connector.hull_organization
    return {
        "notification_id": notification_id or str(uuid.uuid4()),
        "configuration": {"id": connector.hull_id, "organization": organization, "secret": connector.hull_secret},
        "channel": channel,
        "is_export": is_export,
        "kraken": {"retries": retries},
        "connector": {"id": connector.hull_id, "name": connector.name, "type": "ship", "private_settings": {}},
        "segments": platform_segments(organization, SandboxSegment.Kind.USERS),
        "accounts_segments": platform_segments(organization, SandboxSegment.Kind.ACCOUNTS),
        "messages": messages,
    }


def platform_segments(organization: str, kind: str) -> list[dict[str, Any]]:
    return [platform.segment_object(s) for s in SandboxSegment.objects.filter(organization=organization, kind=kind)]


# --- sending ------------------------------------------------------------------------------------


def deliver(
    connector: Connector,
    channel: str,
    messages: Sequence[Any],
    *,
    transport: Transport | None = None,
    is_export: bool = False,
    batch_size: int = 100,
    max_retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    max_wait: float = 2.0,
    on_delivered: Callable[[Sequence[Any]], None] | None = None,
    signed: bool = False,
    key_url: str | None = None,
) -> NotifyResult:
    """Send `messages` in notifications, pacing by the connector's flow control.

    `signed=True` sends the RS256 signature headers (docs/hull-protocol.md#notification-signatures) and leaves the secret out of
    `configuration`, so only the signature can authenticate the notification.
    """
    send = transport or django_client_transport()
    path = f"/hull/{connector.slug}/smart-notifier"
    result = NotifyResult()
    position, size = 0, batch_size
    while position < len(messages):
        chunk = list(messages[position : position + size])
        notification_id = str(uuid.uuid4())
        retries = 0
        while True:
            body = notification_body(connector, channel, chunk, notification_id=notification_id, is_export=is_export, retries=retries)
            headers = {"x-hull-smart-notifier": "sandbox"}
            if signed:
                from sandbox.hull.signing import sign_notification

                body["configuration"].pop("secret", None)
                headers.update({
                    "x-hull-smart-notifier-signature": sign_notification(notification_id),
                    "x-hull-smart-notifier-signature-version": "v1",
                    "x-hull-smart-notifier-signature-public-key-url": key_url or f"https://{connector.hull_organization}/api/v1/_keys/sandbox",
                })
            status, answer = send(path, json.dumps(body).encode(), headers)
            SandboxCall.objects.create(
                kind="notify", method="POST", path=path, connector_id=connector.hull_id,
                body={"notification_id": notification_id, "channel": channel, "messages": len(chunk), "retries": retries},
                status=status, response=answer if isinstance(answer, (dict, list)) else None,
            )
            result.deliveries.append(Delivery(notification_id, len(chunk), status, answer, retries))
            flow = (answer or {}).get("flow_control") if isinstance(answer, dict) else None
            flow = flow if isinstance(flow, dict) else {}
            wait = min(float(flow.get("in") or 0) / 1000.0, max_wait)
            if status == 200 and flow.get("type", "next") == "next":
                result.delivered_messages += len(chunk)
                if on_delivered:
                    on_delivered(chunk)
                size = max(1, int(flow.get("size") or batch_size))
                if wait:
                    sleep(wait)
                break
            retries += 1
            if retries > max_retries:
                result.undelivered_messages += len(chunk)
                break
            sleep(wait or 0.001)
        position += len(chunk)
    return result


def notify_users(connector: Connector, users: Iterable[SandboxUser] | None = None, **kwargs: Any) -> NotifyResult:
    """A `user:update` for each user (default: users with pending changes or undelivered events)."""
    if users is None:
        organization = connector.hull_organization
        users = [
            u
            for u in SandboxUser.objects.filter(organization=organization).select_related("account")
            if u.pending_changes or u.events.filter(delivered=False).exists()
        ]
    users = list(users)
    messages = [user_message(u) for u in users]
    by_message = {m["message_id"]: u for m, u in zip(messages, users, strict=True)}

    def delivered(chunk: Sequence[Any]) -> None:
        for message in chunk:
            user = by_message[message["message_id"]]
            SandboxUser.objects.filter(pk=user.pk).update(pending_changes={})
            user.events.filter(event_id__in=[e["event_id"] for e in message["events"]]).update(delivered=True)

    return deliver(connector, "user:update", messages, on_delivered=delivered, **kwargs)


def notify_accounts(connector: Connector, accounts: Iterable[SandboxAccount] | None = None, **kwargs: Any) -> NotifyResult:
    if accounts is None:
        accounts = [a for a in SandboxAccount.objects.filter(organization=connector.hull_organization) if a.pending_changes]
    accounts = list(accounts)
    messages = [account_message(a) for a in accounts]
    ids = {m["message_id"]: a.pk for m, a in zip(messages, accounts, strict=True)}

    def delivered(chunk: Sequence[Any]) -> None:
        SandboxAccount.objects.filter(pk__in=[ids[m["message_id"]] for m in chunk]).update(pending_changes={})

    return deliver(connector, "account:update", messages, on_delivered=delivered, **kwargs)


# --- exports ------------------------------------------------------------------------------------


def export_file(lines: Iterable[dict[str, Any]]) -> SandboxExportFile:
    content = "".join(json.dumps(line) + "\n" for line in lines)
    return SandboxExportFile.objects.create(token=secrets.token_hex(16), content=content)


def export_to_connector(
    connector: Connector,
    *,
    object_type: str = "user_report",
    entities: Iterable[Any] | None = None,
    segment_id: str = "",
    file_base_url: str | None = None,
    transport: Transport | None = None,
    path: str | None = None,
) -> tuple[int, Any, SandboxExportFile]:
    """Write an NDJSON export of users (or accounts) and POST `/batch` (or `/batch-accounts`)."""
    organization = connector.hull_organization
    rows: Iterable[Any]  # users or accounts, by object_type
    if object_type == "account_report":
        rows = entities if entities is not None else SandboxAccount.objects.filter(organization=organization)
        lines = [{**platform.account_report(a), "segment_ids": list(a.segment_ids or [])} for a in rows]
        endpoint = "batch-accounts"
    else:
        rows = entities if entities is not None else SandboxUser.objects.filter(organization=organization).select_related("account")
        lines = []
        for user in rows:
            line = platform.user_report(user)
            if user.account is not None:
                line["account"] = platform.account_report(user.account)
            lines.append(line)
        endpoint = "batch"
    export = export_file(lines)
    base = (file_base_url or f"https://{organization}").rstrip("/")
    url = f"{base}/api/v1/_exports/{export.token}"
    query = {"ship": connector.hull_id, "organization": organization, "secret": connector.hull_secret, "source": "sandbox"}
    if segment_id:
        query["segment_id"] = segment_id
    path = path or f"/hull/{connector.slug}/{endpoint}?{urlencode(query)}"  # an extract names its own URL
    body = {
        "url": url,
        "format": "json",
        "object_type": object_type,
        "segments": platform_segments(organization, SandboxSegment.Kind.USERS),
        "accounts_segments": platform_segments(organization, SandboxSegment.Kind.ACCOUNTS),
    }
    send = transport or django_client_transport()
    status, answer = send(path, json.dumps(body).encode(), {})
    SandboxCall.objects.create(
        kind="batch", method="POST", path=path.split("?")[0], connector_id=connector.hull_id,
        body={"url": url, "object_type": object_type, "lines": len(lines)}, status=status,
        response=answer if isinstance(answer, (dict, list)) else None,
    )
    return status, answer, export
