"""Bodies as Hull and Intercom send them, built by hand for the tests that post them to an endpoint.

(Tests that seed the Hull sandbox build theirs from its rows instead: sandbox/hull/notifier.py.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

INDEXED_AT = "2024-01-01T00:00:00+00:00"


def hull_user_message(
    *,
    hull_id: str,
    email: str,
    name: str,
    segment: dict[str, str],
    external_id: str = "",
    events: Iterable[dict[str, Any]] = (),
    entered: bool = False,
) -> dict[str, Any]:
    """One `user:update` message of a new user in `segment` (`entered`: the change says it just entered)."""
    user = {"id": hull_id, "email": email, "name": name, "indexed_at": INDEXED_AT, "segment_ids": [segment["id"]]}
    if external_id:
        user["external_id"] = external_id
    return {
        "message_id": uuid.uuid4().hex,
        "user": user,
        "segments": [segment],
        "account": {},
        "account_segments": [],
        "changes": {"is_new": True, "user": {}, "account": {}, "segments": {"entered": [segment]} if entered else {}, "account_segments": {}},
        "events": list(events),
    }


def hull_user_update(
    *, notification_id: str, hull_id: str, secret: str, organization: str, segment: dict[str, str], messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """A `user:update` notification of the connector `hull_id` (docs/hull-protocol.md#notifications)."""
    return {
        "notification_id": notification_id,
        "channel": "user:update",
        "configuration": {"id": hull_id, "secret": secret, "organization": organization},
        "connector": {"id": hull_id, "private_settings": {}},
        "segments": [segment],
        "accounts_segments": [],
        "messages": messages,
    }


def intercom_user_created(*, notification_id: str, app_id: str, contact_id: str, email: str, external_id: str, created_at: int) -> bytes:
    """A `contact.user.created` webhook notification, as Intercom posts it."""
    return json.dumps(
        {
            "type": "notification_event",
            "id": notification_id,
            "topic": "contact.user.created",
            "app_id": app_id,
            "created_at": created_at,
            "delivery_attempts": 1,
            "data": {
                "type": "notification_event_data",
                "item": {"type": "contact", "id": contact_id, "role": "user", "email": email, "external_id": external_id},
            },
        }
    ).encode()
