"""Routing (docs/intercom-behaviour.md#outgoing-routing decision order, docs/decisions.md#routing) and the mapping helpers, one rule per test."""

from __future__ import annotations

import pytest

from sync.hull.messages import normalise_account_message, normalise_user_message
from sync.mapping import build_outgoing_attributes, coerce_custom_value, intercom_data_type, map_incoming, to_unix_seconds
from sync.models import Entity, IdentityLink, SyncLog
from sync.outgoing.notifications import notification_process
from sync.outgoing.routing import COMPANY, LEAD, SKIP, USER, SkipReason, route_message
from tests.fixtures.outgoing.helpers import (  # noqa: F401 - pytest fixture
    account_message,
    add_mapping,
    event,
    recording_firehose,
    segment,
    store_notification,
    user_message,
)


@pytest.fixture
def routed(connector):
    connector.synchronized_user_segments = ["users"]
    connector.synchronized_lead_segments = ["leads"]
    connector.synchronized_account_segments = ["accounts"]
    connector.save()
    add_mapping(connector, Entity.USER, "plan", "plan")
    add_mapping(connector, Entity.LEAD, "plan", "plan")
    add_mapping(connector, Entity.COMPANY, "plan", "plan")
    return connector


def route(connector, raw, *, account=False, is_export=False):
    message = normalise_account_message(raw, is_export=is_export) if account else normalise_user_message(raw, is_export=is_export)
    return route_message(connector, message)


SYNCED = {"id": "u1", "email": "a@b.c", "traits_intercom_user/id": "c1", "traits_intercom_lead/id": "l1"}


# --- filters -------------------------------------------------------------------------------------


def test_a_user_in_no_synchronized_segment_is_skipped(routed):
    decision = route(routed, user_message({"id": "u1"}, segments=[segment("other")]))
    assert (decision.target, decision.reason) == (SKIP, SkipReason.NOT_IN_SEGMENT)
    assert "not present in any of the defined segments" in decision.message


def test_a_user_in_the_user_filter_goes_as_a_user(routed):
    assert route(routed, user_message({"id": "u1"}, segments=[segment("users")])).target == USER


def test_a_user_in_both_filters_goes_as_a_lead(routed):
    assert route(routed, user_message({"id": "u1"}, segments=[segment("users"), segment("leads")])).target == LEAD


def test_an_empty_filter_sends_nobody(routed):
    routed.synchronized_user_segments = []
    routed.synchronized_lead_segments = []
    assert route(routed, user_message({"id": "u1"}, segments=[segment("users")])).reason == SkipReason.NOT_IN_SEGMENT


@pytest.mark.parametrize("everyone", ["ALL", "all_segments"])
def test_all_sends_everyone_even_users_in_no_segment(routed, everyone):
    routed.synchronized_user_segments = [everyone]
    routed.synchronized_lead_segments = []
    assert route(routed, user_message({"id": "u1"})).target == USER


def test_filters_match_segment_ids_not_names(routed):
    assert route(routed, user_message({"id": "u1"}, segments=[{"id": "x", "name": "users"}])).target == SKIP


def test_exports_bypass_filters_and_use_send_batch_as(routed):
    routed.send_batch_as = "Leads"
    assert route(routed, user_message({"id": "u1"}), is_export=True).target == LEAD
    routed.send_batch_as = "Users"
    assert route(routed, user_message({"id": "u1"}), is_export=True).target == USER


def test_an_export_without_a_batch_type_is_skipped(routed):
    routed.send_batch_as = ""
    assert route(routed, user_message({"id": "u1"}), is_export=True).reason == SkipReason.NO_BATCH_TYPE


def test_a_connector_without_intercom_token_skips_everything(routed):
    routed.intercom_access_token = ""
    assert route(routed, user_message({"id": "u1"}, segments=[segment("users")])).reason == SkipReason.NOT_CONFIGURED


# --- deleted -------------------------------------------------------------------------------------


def test_a_deleted_user_is_skipped_when_ignore_deleted_is_on(routed):
    raw = user_message({"id": "u1", "traits_intercom_user/deleted_at": "2020-01-01T00:00:00Z"}, segments=[segment("users")])
    assert route(routed, raw).reason == SkipReason.DELETED
    routed.ignore_deleted_users = False
    assert route(routed, raw).target == USER


def test_a_deleted_lead_is_caught_on_its_own_group(routed):
    raw = user_message({"id": "u1", "traits_intercom_lead/deleted_at": "2020-01-01T00:00:00Z"}, segments=[segment("leads")])
    decision = route(routed, raw)
    assert (decision.target, decision.reason) == (SKIP, SkipReason.DELETED)


def test_a_deleted_account_is_skipped(routed):
    raw = account_message({"id": "a1", "intercom/deleted_at": 1596662517}, account_segments=[segment("accounts")])
    assert route(routed, raw, account=True).reason == SkipReason.DELETED


# --- triggers and changes ------------------------------------------------------------------------


def test_entering_a_synchronized_segment_sends(routed):
    raw = user_message(SYNCED, segments=[segment("users")], changes={"segments": {"entered": [segment("users")]}})
    assert route(routed, raw).trigger == "entered_segment"


def test_a_whitelisted_event_sends_but_not_one_from_intercom(routed):
    routed.outgoing_events = ["Signed Up"]
    routed.tag_users = False
    raw = user_message(SYNCED, segments=[segment("users")], events=[event("Signed Up")])
    assert route(routed, raw).trigger == "event"
    raw = user_message(SYNCED, segments=[segment("users")], events=[event("Signed Up", source="intercom")])
    assert route(routed, raw).reason == SkipReason.NO_CHANGES


def test_all_events_whitelists_every_event(routed):
    routed.outgoing_events = ["all_events"]
    assert route(routed, user_message(SYNCED, segments=[segment("users")], events=[event("Anything")])).trigger == "event"


def test_an_account_link_sends_when_link_users_in_intercom_is_on(routed):
    routed.link_users_in_service = True
    raw = user_message(SYNCED, segments=[segment("users")], changes={"account": {"id": [None, "a1"]}})
    assert route(routed, raw).trigger == "account_linked"


def test_no_outgoing_attributes_is_skipped(connector):
    connector.synchronized_user_segments = ["users"]
    assert route(connector, user_message(SYNCED, segments=[segment("users")])).reason == SkipReason.NO_OUTGOING_ATTRIBUTES


def test_a_never_synced_user_is_sent(routed):
    assert route(routed, user_message({"id": "u1"}, segments=[segment("users")])).trigger == "never_synced"


def test_an_identity_link_counts_as_synced(routed):
    IdentityLink.objects.create(connector=routed, entity=Entity.USER, hull_id="u9", intercom_id="c9", last_payload_hash="abc")
    assert route(routed, user_message({"id": "u9"}, segments=[segment("users")])).reason == SkipReason.NO_CHANGES


def test_a_link_whose_write_back_never_reached_hull_is_not_synced_yet(routed):
    IdentityLink.objects.create(connector=routed, entity=Entity.USER, hull_id="u9", intercom_id="c9", last_payload_hash="")
    assert route(routed, user_message({"id": "u9"}, segments=[segment("users")])).trigger == "never_synced"


def test_a_change_of_a_mapped_attribute_sends(routed):
    raw = user_message(SYNCED, segments=[segment("users")], changes={"user": {"traits_plan": ["free", "pro"]}})
    assert route(routed, raw).trigger == "changed"


def test_array_index_suffixes_are_stripped_from_changes(routed):
    add_mapping(routed, Entity.USER, "roles", "roles")
    raw = user_message(SYNCED, segments=[segment("users")], changes={"user": {"roles[1]": [None, "admin"]}})
    assert route(routed, raw).trigger == "changed"


def test_an_account_attribute_mapped_on_users_triggers_as_account_dot(routed):
    add_mapping(routed, Entity.USER, "account.industry", "industry")
    raw = user_message(SYNCED, segments=[segment("users")], changes={"account": {"industry": ["a", "b"]}})
    assert route(routed, raw).trigger == "changed"


def test_an_unmapped_change_is_skipped(routed):
    raw = user_message(SYNCED, segments=[segment("users")], changes={"user": {"coconuts": [1, 2]}})
    assert route(routed, raw).reason == SkipReason.NO_MAPPED_CHANGES


def test_no_changes_at_all_is_skipped(routed):
    assert route(routed, user_message(SYNCED, segments=[segment("users")])).reason == SkipReason.NO_CHANGES


def test_own_group_changes_never_trigger_a_push_even_when_mapped(routed):
    add_mapping(routed, Entity.USER, "intercom_user/name", "name")
    raw = user_message(
        SYNCED,
        segments=[segment("users")],
        changes={"user": {"traits_intercom_user/name": ["A", "B"], "traits_intercom_user/updated_at": [1, 2]}},
    )
    assert route(routed, raw).reason == SkipReason.OWN_CHANGES_ONLY


def test_segment_changes_push_when_tagging_is_on(routed):
    raw = user_message(SYNCED, segments=[segment("users")], changes={"segments": {"left": [segment("old")]}})
    assert route(routed, raw).trigger == "segments_changed"
    routed.tag_users = False
    assert route(routed, raw).reason == SkipReason.NO_CHANGES


# --- accounts ------------------------------------------------------------------------------------


def test_an_account_in_the_company_filter_goes_as_a_company(routed):
    assert route(routed, account_message({"id": "a1"}, account_segments=[segment("accounts")]), account=True).target == COMPANY


def test_an_account_outside_the_company_filter_is_skipped(routed):
    decision = route(routed, account_message({"id": "a1"}, account_segments=[segment("x")]), account=True)
    assert decision.reason == SkipReason.NOT_IN_SEGMENT and "Account is not present" in decision.message


def test_account_own_group_changes_are_skipped(routed):
    raw = account_message(
        {"id": "a1", "intercom/id": "co1"}, account_segments=[segment("accounts")], changes={"account": {"intercom/website": ["a", "b"]}}
    )
    assert route(routed, raw, account=True).reason == SkipReason.OWN_CHANGES_ONLY


# --- every skip ends in one SyncLog row ----------------------------------------------------------


def test_each_skipped_message_ends_in_one_skip_row_with_its_reason(routed, intercom_sandbox, recording_firehose):
    messages = [
        user_message({"id": "u1"}, segments=[segment("other")], events=[event("Page")]),
        user_message({"id": "u2", "traits_intercom_user/deleted_at": 5}, segments=[segment("users")]),
        user_message({**SYNCED, "id": "u3"}, segments=[segment("users")], changes={"user": {"coconuts": [1, 2]}}),
        user_message({**SYNCED, "id": "u4"}, segments=[segment("users")], changes={"user": {"traits_intercom_user/x": [1, 2]}}),
        user_message({**SYNCED, "id": "u5"}, segments=[segment("users")]),
    ]
    notification_process(notification=store_notification(routed, messages))
    rows = {r.hull_id: (r.action, r.reason, r.entity) for r in SyncLog.objects.filter(connector=routed)}
    assert rows == {
        "u1": ("outgoing.user.skip", SkipReason.NOT_IN_SEGMENT, "user"),
        "u2": ("outgoing.user.skip", SkipReason.DELETED, "user"),
        "u3": ("outgoing.user.skip", SkipReason.NO_MAPPED_CHANGES, "user"),
        "u4": ("outgoing.user.skip", SkipReason.OWN_CHANGES_ONLY, "user"),
        "u5": ("outgoing.user.skip", SkipReason.NO_CHANGES, "user"),
    }
    assert SyncLog.objects.get(hull_id="u1").data == {"events_not_sent": 1}
    assert intercom_sandbox.calls == []


def test_a_user_without_email_or_external_id_cannot_become_an_intercom_user(routed, intercom_sandbox, recording_firehose):
    notification_process(notification=store_notification(routed, [user_message({"id": "u1", "traits_plan": "pro"}, segments=[segment("users")])]))
    row = SyncLog.objects.get(connector=routed)
    assert (row.action, row.reason) == ("outgoing.user.skip", SkipReason.MISSING_IDENTITY)
    assert intercom_sandbox.calls == []


# --- mapping helpers -----------------------------------------------------------------------------


def test_custom_values_arrays_and_objects_become_json_and_long_strings_are_truncated():
    assert coerce_custom_value(["a", "b"]) == ('["a", "b"]', False)
    assert coerce_custom_value({"b": 1, "a": [1]}) == ('{"a": [1], "b": 1}', False)
    value, truncated = coerce_custom_value("x" * 300)
    assert len(value) == 255 and truncated


def test_dates_become_unix_seconds_rounded_up():
    assert to_unix_seconds("2020-08-04T15:32:01.666Z") == 1596555122
    assert to_unix_seconds("2018-03-30 14:38:02 UTC") == 1522420682
    assert to_unix_seconds("1596228035") == 1596228035
    assert coerce_custom_value("2020-08-04T15:32:01Z", hull_attribute="trial_ends_at") == (1596555121, False)


@pytest.mark.parametrize(
    ("value", "name", "expected"),
    [(True, "x", "boolean"), (3, "x", "integer"), (2.5, "x", "float"), ("a", "x", "string"), ("2020-01-01T00:00:00Z", "paid_at", "date"), (1596555121, "paid_at", "date")],
)
def test_created_attribute_types_follow_the_hull_value(value, name, expected):
    assert intercom_data_type(value, hull_attribute=name) == expected


def test_standard_fields_go_top_level_and_others_to_custom_attributes(connector):
    add_mapping(connector, Entity.USER, "name", "name")
    add_mapping(connector, Entity.USER, "signed_up", "signed_up_at")
    add_mapping(connector, Entity.USER, "plan", "plan")
    add_mapping(connector, Entity.USER, "missing", "missing_attr")
    add_mapping(connector, Entity.USER, "nothing", "nothing_attr")
    attrs = build_outgoing_attributes(
        connector, Entity.USER, {"name": "Bob", "signed_up": "2020-08-04T15:32:01Z", "plan": "pro", "nothing": None}
    )
    assert attrs.payload == {
        "name": "Bob",
        "signed_up_at": 1596555121,
        "custom_attributes": {"plan": "pro", "nothing_attr": None},  # undefined: not written; null: written
    }


def test_overwrite_off_outgoing_is_sent_on_create_only(connector):
    add_mapping(connector, Entity.USER, "plan", "plan", overwrite=False)
    assert build_outgoing_attributes(connector, Entity.USER, {"plan": "pro"}, creating=True).payload == {"custom_attributes": {"plan": "pro"}}
    assert build_outgoing_attributes(connector, Entity.USER, {"plan": "pro"}, creating=False).payload == {}


def test_segment_names_can_be_mapped_out(connector):
    add_mapping(connector, Entity.USER, "segments.name[]", "hull_segments")
    attrs = build_outgoing_attributes(connector, Entity.USER, {}, segments=[segment("s1", "VIP"), segment("s2", "Trial")])
    assert attrs.payload == {"custom_attributes": {"hull_segments": '["VIP", "Trial"]'}}


def test_map_incoming_applies_the_default_mappings_with_set_if_null_and_social_urls(connector):
    add_mapping(connector, Entity.USER, "intercom_user/job_title", "custom_attributes.job_title", direction="incoming", overwrite=False)
    contact = {
        "id": "c1",
        "role": "user",
        "email": "bob@rei.com",
        "external_id": "ext-1",
        "name": "Bob",
        "phone": None,
        "location": {"city": "Atlanta"},
        "updated_at": "2020-08-04T15:32:01.666Z",
        "custom_attributes": {"job_title": "sales"},
        "social_profiles": {"type": "list", "data": [{"type": "social_profile", "name": "Twitter", "url": "https://twitter.com/bob"}]},
        "tags": {"type": "list", "data": [{"id": "7", "type": "tag", "name": "VIP"}]},
    }
    traits = map_incoming(connector, Entity.USER, contact)
    assert traits["intercom_user/id"] == "c1"
    assert traits["intercom_user/user_id"] == "ext-1"
    assert traits["intercom_user/email"] == "bob@rei.com"
    assert traits["intercom_user/phone"] is None
    assert traits["intercom_user/location_city_name"] == "Atlanta"
    assert traits["intercom_user/updated_at"] == 1596555122
    assert traits["intercom_user/job_title"] == {"operation": "setIfNull", "value": "sales"}
    assert traits["intercom_user/twitter_url"] == "https://twitter.com/bob"
    assert traits["intercom_user/social_profiles"] == ["https://twitter.com/bob"]
    assert traits["intercom_user/tags"] == ["VIP"]
    assert traits["name"] == {"operation": "setIfNull", "value": "Bob"}
    assert "intercom_user/avatar" not in traits  # absent from the contact: not written
