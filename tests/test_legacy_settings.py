"""Importing a legacy connector's settings: every kind of row, and the round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.models import FieldMapping
from sync.services.connectors import connector_create
from sync.services.legacy_settings import (
    LegacySettingsError,
    connector_legacy_settings_export,
    connector_legacy_settings_import,
    legacy_settings_load,
)

LEGACY_FILE = Path(__file__).resolve().parent / "fixtures" / "legacy" / "settings.json"


@pytest.fixture
def legacy_settings() -> dict:
    return legacy_settings_load(LEGACY_FILE)


def rows(connector, direction, entity):
    return set(
        FieldMapping.objects.filter(connector=connector, direction=direction, entity=entity).values_list(
            "intercom_attribute", "hull_attribute", "overwrite"
        )
    )


def reasons(report) -> dict[str, str]:
    """Reason per legacy row (a row imported for users and leads reports the same reason twice)."""
    return {line.source: line.reason for line in report.not_mapped}


def test_the_file_may_be_a_whole_connector_or_just_its_private_settings(tmp_path, legacy_settings):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(legacy_settings))
    assert legacy_settings_load(bare) == legacy_settings
    assert "sync_fields_to_hull" in legacy_settings


@pytest.mark.parametrize("content,message", [("[]", "JSON list"), ("{nope", "not JSON")])
def test_a_file_that_is_not_settings_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(LegacySettingsError, match=message):
        legacy_settings_load(path)


def test_the_single_segment_filter_becomes_the_user_filter(connector, legacy_settings):
    report = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    connector.refresh_from_db()
    assert connector.synchronized_user_segments == ["59f09bc7f9c5a94af600076d", "5a0c1f4e2a0fb6c2f3000f12"]
    assert connector.synchronized_lead_segments == []
    assert "choose the lead segments" in reasons(report)["synchronized_segments"]


def test_incoming_rows_move_from_the_intercom_group_to_the_user_and_lead_groups(connector, legacy_settings):
    connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    for entity, group in (("user", "intercom_user"), ("lead", "intercom_lead")):
        imported = rows(connector, "incoming", entity)
        assert ("custom_attributes.job_title", f"{group}/job_title", True) in imported  # bare name = custom attribute
        assert ("custom_attributes.plan", f"{group}/plan", False) in imported  # overwrite off = setIfNull
        assert ("last_seen_at", f"{group}/last_request_at", True) in imported  # 1.x name
        assert ("location.city", f"{group}/city", True) in imported  # 1.x location_data
        assert ("custom_attributes.favourite_colour", "favourite_colour", True) in imported  # outside the group: kept


def test_incoming_rows_that_cannot_be_carried_over_are_reported_with_why(connector, legacy_settings):
    report = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    why = reasons(report)
    assert "no longer returns" in why["session_count -> intercom/session_count"]
    assert "no longer returns" in why["location_data.postal_code -> intercom/postal_code"]
    assert "needs an Intercom field" in why["? -> intercom/nothing"]
    # A taken target keeps its row: the default avatar mapping is not replaced by phone.
    kept = [line.reason for line in report.not_mapped if line.source == "phone -> intercom/avatar"]
    assert kept == ["kept the existing row avatar -> intercom_user/avatar", "kept the existing row avatar -> intercom_lead/avatar"]
    assert FieldMapping.objects.get(connector=connector, entity="user", direction="incoming", hull_attribute="intercom_user/avatar").intercom_attribute == "avatar"


def test_incoming_rows_the_defaults_already_have_are_unchanged(connector, legacy_settings):
    report = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    unchanged = {(line.kind, line.source) for line in report.unchanged}
    assert ("incoming user mapping", "name -> intercom/name") in unchanged
    assert ("incoming lead mapping", "user_id -> intercom/user_id") in unchanged


def test_outgoing_rows_become_user_and_lead_rows_with_2x_names(connector, legacy_settings):
    connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    for entity in ("user", "lead"):
        assert rows(connector, "outgoing", entity) == {
            ("plan", "plan_name", True),
            ("name", "first_name", True),
            ("external_id", "external_id", True),
            ("last_seen_at", "last_visit_at", True),
            ("seats", "seats", True),
        }


def test_outgoing_rows_that_cannot_be_carried_over_are_reported_with_why(connector, legacy_settings):
    why = reasons(connector_legacy_settings_import(connector=connector, settings=legacy_settings))
    assert "no longer accepts" in why["nickname -> pseudonym"]
    assert "never sent back" in why["intercom/score -> score"]
    assert "connector manages it" in why["company_name -> companies"]
    assert "must be an object" in why['"not a row"']


def test_event_whitelists_and_deleted_user_flags_are_copied(connector, legacy_settings):
    report = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    connector.refresh_from_db()
    assert connector.outgoing_events == ["Signed up", "Plan upgraded", "Page viewed"]
    assert connector.incoming_events == ["user.created", "user.deleted", "contact.created", "conversation.user.created", "user.tag.created"]
    assert "not a topic this connector handles" in reasons(report)["not.a.topic"]
    assert (connector.send_events, connector.mark_deleted_users, connector.ignore_deleted_users) == (True, False, True)


def test_send_events_without_a_whitelist_keeps_sending_every_event(connector):
    connector_legacy_settings_import(connector=connector, settings={"send_events": True})
    connector.refresh_from_db()
    assert connector.outgoing_events == ["all_events"]


def test_secrets_and_legacy_bookkeeping_are_never_imported(connector, legacy_settings):
    token = connector.intercom_access_token
    why = reasons(connector_legacy_settings_import(connector=connector, settings=legacy_settings))
    connector.refresh_from_db()
    assert connector.intercom_access_token == token and connector.webhook_id == ""
    assert "a secret" in why["access_token"]
    for key in ("webhook_id", "last_fetch_started_at", "fetch_count", "is_fetch_completed", "tag_mapping", "intercom_segments"):
        assert why[key].startswith("skipped")
    assert "knows" in why["favourite_setting"]


def test_a_dry_run_reports_the_same_and_changes_nothing(connector, legacy_settings):
    before = (FieldMapping.objects.count(), connector.synchronized_user_segments, connector.outgoing_events)
    dry = connector_legacy_settings_import(connector=connector, settings=legacy_settings, dry_run=True)
    connector.refresh_from_db()
    assert (FieldMapping.objects.count(), connector.synchronized_user_segments, connector.outgoing_events) == before
    real = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    assert dry.lines()[1:] == real.lines()[1:]
    assert dry.lines()[0].startswith("Would map") and real.lines()[0].startswith("Mapped")


def test_importing_twice_changes_nothing_the_second_time(connector, legacy_settings):
    first = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    second = connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    assert first.mapped and second.mapped == []
    assert len(second.unchanged) == len(first.unchanged) + len(first.mapped)


def test_round_trip_export_then_import_into_a_fresh_connector_gives_the_same_connector(connector, legacy_settings):
    connector_legacy_settings_import(connector=connector, settings=legacy_settings)
    exported = connector_legacy_settings_export(connector=connector)
    json.dumps(exported)  # the export is a legacy settings file again
    fresh = connector_create(name="Fresh", slug="fresh")
    report = connector_legacy_settings_import(connector=fresh, settings=exported)
    assert [line.source for line in report.not_mapped] == ["synchronized_segments"]  # only the Lead Filter note
    fresh.refresh_from_db()
    connector.refresh_from_db()
    for direction in ("incoming", "outgoing"):
        for entity in ("user", "lead"):
            assert rows(fresh, direction, entity) == rows(connector, direction, entity)
    for name in ("synchronized_user_segments", "outgoing_events", "incoming_events", "send_events", "mark_deleted_users", "ignore_deleted_users"):
        assert getattr(fresh, name) == getattr(connector, name)
    assert connector_legacy_settings_export(connector=fresh) == exported
