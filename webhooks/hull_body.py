"""A Hull notification body, read without materialising it before the caller is known.

Two passes with msgspec over the raw bytes (issue 13 item 2, issue 17):

1. `body_credentials`, before authentication: only `notification_id` and the `id`/`secret` of
   `configuration` are decoded; every other value is skipped by msgspec's C scanner (syntax is
   checked, nothing is allocated), so a 40 MB body of `[{},{},...]` costs a scan, not gigabytes.
2. `notification_envelope`, after authentication: every top-level value is decoded (with
   json_body's rules: no NaN, bounded nesting, no NUL) except the `messages` of entity channels,
   which stay raw JSON bytes; the worker parses them (`HullNotification.full_payload`). That keeps
   the acknowledgement of a 10,000-message notification well under Hull's timeout.

Both passes read the bytes with the same parser the worker uses later, so the credentials checked
are the ones the stored notification carries (duplicate keys: the last one wins in both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from webhooks.json_body import loads_json_body

# The channels whose messages are synced one by one in the worker (sync/hull/messages.py).
RAW_MESSAGE_CHANNELS = ("user:update", "account:update")

# `\uD800`-`\uDFFF` escapes: msgspec refuses lone surrogates, but only when it decodes a string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class MalformedBody(ValueError):
    """Not a JSON object Hull would send; the endpoint answers 400."""


class _Credentials(msgspec.Struct):
    id: msgspec.Raw = msgspec.Raw()
    secret: msgspec.Raw = msgspec.Raw()


class _CredentialEnvelope(msgspec.Struct):
    notification_id: msgspec.Raw = msgspec.Raw()
    configuration: msgspec.Raw = msgspec.Raw()


_credential_decoder = msgspec.json.Decoder(_CredentialEnvelope)
_top_level_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_message_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class BodyCredentials:
    notification_id: str | None
    hull_id: str | None
    secret: str | None


def _scalar(raw: msgspec.Raw, kinds: Any) -> Any:
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw, type=kinds)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None  # a mistyped credential is a missing one: 401, not 400


def body_credentials(body: bytes) -> BodyCredentials:
    """The notification id and `configuration` credentials; memory bounded whatever the body holds."""
    try:
        envelope = _credential_decoder.decode(body)
        configuration = msgspec.json.decode(envelope.configuration, type=_Credentials) if envelope.configuration else _Credentials()
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise MalformedBody("Malformed JSON body: the notification must be a JSON object.") from exc
    notification_id = _scalar(envelope.notification_id, str | int)
    return BodyCredentials(
        notification_id=None if notification_id is None else str(notification_id),
        hull_id=_scalar(configuration.id, str),
        secret=_scalar(configuration.secret, str),
    )


@dataclass
class NotificationEnvelope:
    """Every top-level field decoded, except `messages` of entity channels (raw JSON, not parsed)."""

    payload: dict[str, Any]
    raw_messages: bytes | None = None
    message_count: int = 0


def notification_envelope(body: bytes) -> NotificationEnvelope:
    """Decode the body for storage; raises MalformedBody (400)."""
    try:
        top = _top_level_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise MalformedBody("Malformed JSON body.") from exc
    channel = _scalar(top.get("channel", msgspec.Raw()), str)
    raw = top.get("messages")
    try:
        if channel not in RAW_MESSAGE_CHANNELS or raw is None:
            return NotificationEnvelope(payload=loads_json_body(body))
        payload = {key: loads_json_body(bytes(value)) for key, value in top.items() if key != "messages"}
        messages = bytes(raw)
        # The scan above checked the syntax; these are what it does not see inside strings.
        messages.decode("utf-8")
        if _SURROGATE_ESCAPE.search(messages):
            loads_json_body(messages)
        try:
            count = len(_message_list_decoder.decode(messages))
        except msgspec.ValidationError:
            count = 0  # not a list: validate_notification answers 400 with its own words
            payload["messages"] = loads_json_body(messages)
            return NotificationEnvelope(payload=payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedBody("Malformed JSON body.") from exc
    return NotificationEnvelope(payload=payload, raw_messages=messages, message_count=count)
