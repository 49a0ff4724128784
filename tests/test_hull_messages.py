"""Parsing and normalising Hull notifications (docs/hull-protocol.md#notifications)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sync.hull.messages import (
    AccountMessage,
    NotificationError,
    UserMessage,
    dedupe_messages,
    export_line_message,
    normalise_user_message,
    parse_hull_datetime,
    parse_notification,
    strip_traits_prefix,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hull"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_bytes())


def test_user_update_fixture_is_normalised():
    parsed = parse_notification(load("user_update.json"))
    assert parsed.channel == "user:update"
    assert parsed.notification_id == "90aae375-1c5b-4939-8077-6b4d8f76afc3"
    assert [s["id"] for s in parsed.segments] == ["5bd720690026ca86b000004f", "5bd720690026ca86b0000050"]
    assert [s["name"] for s in parsed.account_segments] == ["Bad guys"]
    fett = parsed.messages[0]
    assert isinstance(fett, UserMessage)
    assert fett.user["coconuts"] == 38
    assert fett.user["outreach/id"] == 18
    assert not any(key.startswith("traits_") for key in fett.user)
    assert fett.changes["user"] == {
        "coconuts": [None, 38],
        "last_seen_at": ["2018-12-01T10:00:00Z", "2018-12-10T09:00:00Z"],
        "anonymous_ids[1]": [None, "hubspot:151"],
    }
    assert fett.segment_ids == ["5bd720690026ca86b000004f"]
    assert fett.account["domain"] == "jabbasgang.com"
    assert fett.account_segments[0]["id"] == "5bd7201aa682bc4a4d00001e"
    assert fett.hull_id == "5bd329d5e2bcf3eeaf00009f"
    assert fett.message_id == "3fa25759edd2f823ba9bbd5e84ff21b55f45cfb4"
    assert fett.is_export is False


def test_event_dates_in_hull_format_become_iso():
    fett = parse_notification(load("user_update.json")).messages[0]
    [event] = fett.events
    assert event["created_at"] == "2018-03-30T14:38:02Z"
    assert event["created_at_raw"] == "2018-03-30 14:38:02 UTC"


def test_segment_left_is_kept_on_changes():
    leia = parse_notification(load("user_update.json")).messages[1]
    assert [s["id"] for s in leia.changes["segments"]["left"]] == ["5bd720690026ca86b0000050"]
    assert leia.user["intercom_user/id"] == "5f3a1b2c3d4e5f6a7b8c9d0e"
    assert leia.account == {}


def test_account_update_fixture_keeps_unprefixed_keys():
    parsed = parse_notification(load("account_update.json"))
    [message] = parsed.messages
    assert isinstance(message, AccountMessage)
    assert message.account["closeio/address_business_zipcode"] == "RI"
    assert message.changes["account"]["closeio/address_business_zipcode"] == ["TX", "RI"]
    assert message.account_segment_ids == ["5bd7201aa682bc4a4d00001e"]


def test_minihull_spellings_are_accepted():
    parsed = parse_notification(load("minihull_user_update.json"))
    assert [s["id"] for s in parsed.segments] == ["5bd720690026ca86b000004f"]
    assert [s["id"] for s in parsed.account_segments] == ["5bd7201aa682bc4a4d00001e"]
    assert parsed.messages[0].segment_ids == ["5bd720690026ca86b000004f"]


def test_dedupe_keeps_latest_indexed_at_and_merges_events():
    parsed = parse_notification(load("minihull_user_update.json"))
    [han] = dedupe_messages(parsed.messages)
    assert han.user["credits"] == 10
    assert [e["event_id"] for e in han.events] == ["e-1", "e-2"]
    assert han.changes["user"] == {"ship": [None, "Millennium Falcon"], "credits": [None, 10]}


def test_dedupe_order_does_not_matter():
    payload = load("minihull_user_update.json")
    payload["messages"].reverse()
    [han] = dedupe_messages(parse_notification(payload).messages)
    assert han.user["credits"] == 10
    assert {e["event_id"] for e in han.events} == {"e-1", "e-2"}


def test_dedupe_keeps_distinct_users_apart():
    messages = parse_notification(load("user_update.json")).messages
    assert len(dedupe_messages(messages)) == 2


def test_traits_prefix_collision_keeps_top_level_value():
    message = normalise_user_message({"user": {"id": "1", "email": "a@b.c", "traits_email": "other@b.c", "traits_traits_x": 1}})
    assert message.user["email"] == "a@b.c"
    assert message.user["traits_x"] == 1  # one prefix goes, as in Hull's framework


def test_strip_traits_prefix_for_mapping_values():
    assert strip_traits_prefix("traits_hubspot/id") == "hubspot/id"
    assert strip_traits_prefix("email") == "email"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2018-03-30 14:38:02 UTC", datetime(2018, 3, 30, 14, 38, 2, tzinfo=timezone.utc)),
        ("2018-12-11T14:20:33+00:00", datetime(2018, 12, 11, 14, 20, 33, tzinfo=timezone.utc)),
        ("2018-10-26T14:51:01Z", datetime(2018, 10, 26, 14, 51, 1, tzinfo=timezone.utc)),
        ("2018-10-26T14:51:01.250Z", datetime(2018, 10, 26, 14, 51, 1, 250000, tzinfo=timezone.utc)),
        (1522420682, datetime(2018, 3, 30, 14, 38, 2, tzinfo=timezone.utc)),
        (1522420682000, datetime(2018, 3, 30, 14, 38, 2, tzinfo=timezone.utc)),
        ("not a date", None),
        (None, None),
    ],
)
def test_parse_hull_datetime(value, expected):
    assert parse_hull_datetime(value) == expected


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p.pop("channel"), "channel"),
        (lambda p: p.pop("notification_id"), "notification_id"),
        (lambda p: p.update(messages="nope"), "messages"),
        (lambda p: p["messages"][0].pop("user"), "user"),
    ],
)
def test_malformed_notifications_are_refused(mutate, message):
    payload = copy.deepcopy(load("user_update.json"))
    mutate(payload)
    with pytest.raises(NotificationError, match=message):
        parse_notification(payload)


def test_export_line_becomes_export_message():
    line = {"id": "u1", "email": "a@b.c", "traits_plan": "pro", "segment_ids": ["s1"], "account": {"domain": "b.c"}}
    message = export_line_message(line, object_type="user", segments_by_id={"s1": {"id": "s1", "name": "Pro"}})
    assert message.is_export
    assert message.user == {"id": "u1", "email": "a@b.c", "plan": "pro"}
    assert message.segments == [{"id": "s1", "name": "Pro"}]
    assert message.account == {"domain": "b.c"}
