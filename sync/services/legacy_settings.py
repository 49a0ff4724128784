"""Importing a legacy (API 1.x) Intercom connector's settings into a connector of this project.

Migration action items 1-3 of the spec ("copy the attribute mapping", "copy the outgoing events
whitelist", "populate incoming events"), done by `manage.py import_legacy_settings` instead of by
hand. The legacy settings (docs/intercom-behaviour.md#legacy-connector) differ from ours:

- one segment filter, `synchronized_segments`, for users and leads (the legacy connector routed
  by the Hull attribute `intercom/is_lead`): it becomes the User Filter; the Lead Filter is left
  as it is, because no legacy setting said which Hull users were leads;
- one table per direction for users and leads together (`sync_fields_to_intercom`,
  `sync_fields_to_hull`): each row becomes a user row and a lead row;
- Intercom 1.x field names: `user_id` is `external_id` in 2.x, `last_request_at` is
  `last_seen_at`, `location_data.city_name` is `location.city`, and a list of fields no longer
  exists (the spec's "no longer retrievable" list): those rows are reported, not imported;
- incoming rows wrote the single `intercom/` group: they now write `intercom_user/` and
  `intercom_lead/` (legacy attribute mode, sync/legacy.py, writes `intercom/` too);
- `send_events` without a whitelist sent every event; our empty whitelist sends none, so it
  becomes `all_events`.

Secrets and the legacy connector's own bookkeeping (tokens, webhook id, fetch cursors, tag and
segment caches) are never imported; they are listed as skipped. Rows the connector already has
are left alone, so importing twice changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from sync.defaults import ACCOUNT_GROUP, CONTACT_INCOMING_FIELDS, LEAD_GROUP, USER_GROUP
from sync.models import Connector, Direction, Entity, FieldMapping

# 1.x contact field -> 2.x field (spec: "The Contact field user_id is now external_id").
V1_TO_V2_FIELDS = {
    "user_id": "external_id",
    "last_request_at": "last_seen_at",
    "location_data.city_name": "location.city",
    "location_data.country_name": "location.country",
    "location_data.region_name": "location.region",
    "avatar.image_url": "avatar",
}
V2_TO_V1_FIELDS = {v2: v1 for v1, v2 in V1_TO_V2_FIELDS.items()}
# The spec's list of 1.x fields the 2.x API no longer returns (and so no longer accepts).
REMOVED_FIELDS = frozenset(
    {
        "anonymous",
        "pseudonym",
        "session_count",
        "referrer",
        "utm_campaign",
        "utm_content",
        "utm_medium",
        "utm_source",
        "utm_term",
        "postal_code",
        "timezone",
        "continent_code",
        "country_code",
        "user_agent_data",
        "latitude",
        "longitude",
        "last_seen_ip",
    }
)
# 2.x contact fields readable by path; any other bare legacy name is a custom attribute.
CONTACT_FIELDS = frozenset({source for source, _ in CONTACT_INCOMING_FIELDS} | {"role", "segments"})
# Writable from outgoing mappings besides custom attributes (docs/intercom-behaviour.md#schema-pickers, the writable list).
WRITABLE_CONTACT_FIELDS = frozenset(
    {"role", "name", "owner_id", "email", "phone", "external_id", "signed_up_at", "last_seen_at", "unsubscribed_from_emails", "avatar"}
)
# The connector writes these itself; a legacy row may not redirect them.
NOT_WRITABLE_OUTGOING = frozenset({"role", "companies", "tags", "segments", "social_profiles", "id"})

BOOLEAN_SETTINGS = ("send_events", "mark_deleted_users", "ignore_deleted_users")
EVENT_WHITELIST_KEYS = ("outgoing_events", "events_whitelist", "event_whitelist", "send_events_whitelist")
# Legacy settings that are the legacy connector's own state or secrets: never imported.
SKIPPED_SETTINGS = {
    "access_token": "a secret: connect Intercom from the admin instead",
    "oauth": "a secret: connect Intercom from the admin instead",
    "token_fetched_at": "OAuth bookkeeping",
    "refresh_token": "a secret: connect Intercom from the admin instead",
    "webhook_id": "the legacy connector's webhook; this connector registers its own",
    "last_fetch_started_at": "the legacy fetch cursor; this connector keeps its own",
    "last_fetch_at": "the legacy fetch cursor; this connector keeps its own",
    "fetch_count": "the legacy fetch cursor; this connector keeps its own",
    "is_fetch_completed": "the legacy fetch cursor; this connector keeps its own",
    "skip_users_already_synced": "no equivalent: identical payloads are never re-sent anyway",
    "tag_mapping": "a cache of tag ids; tags are looked up by name",
    "intercom_segments": "a cache of Intercom segment names",
    "app_id": "read from Intercom when it is connected",
}
ENTITIES = (Entity.USER, Entity.LEAD)
GROUP_FOR_ENTITY: dict[str, str] = {Entity.USER: USER_GROUP, Entity.LEAD: LEAD_GROUP}


class LegacySettingsError(ValueError):
    """The file is not a legacy connector's settings."""


@dataclass
class ImportLine:
    kind: str  # "segments" | "incoming mapping" | "outgoing mapping" | "setting" | "events" | ...
    source: str
    target: str = ""
    reason: str = ""


@dataclass
class LegacyImportReport:
    mapped: list[ImportLine] = field(default_factory=list)  # written to the connector
    unchanged: list[ImportLine] = field(default_factory=list)  # the connector already had it
    not_mapped: list[ImportLine] = field(default_factory=list)  # could not be carried over, with why
    dry_run: bool = False

    def lines(self) -> list[str]:
        """Human-readable report, one line each, in the order: mapped, unchanged, not mapped."""
        out: list[str] = []
        verb = "would map" if self.dry_run else "mapped"
        for title, rows in ((verb, self.mapped), ("already there", self.unchanged), ("not mapped", self.not_mapped)):
            out.append(f"{title.capitalize()}: {len(rows)}")
            for row in rows:
                arrow = f"  =>  {row.target}" if row.target else ""
                why = f" ({row.reason})" if row.reason else ""
                out.append(f"  [{row.kind}] {row.source}{arrow}{why}")
        return out


def legacy_settings_load(path: str | Path) -> dict[str, Any]:
    """The private settings from a file: a whole connector export (`private_settings`) or the settings alone."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise LegacySettingsError(f"no such file: {path}") from error
    except json.JSONDecodeError as error:
        raise LegacySettingsError(f"{path} is not JSON: {error}") from error
    if not isinstance(data, Mapping):
        raise LegacySettingsError(f"{path} holds a JSON {type(data).__name__}, not the connector's settings object")
    settings = data.get("private_settings", data)
    if not isinstance(settings, Mapping):
        raise LegacySettingsError("private_settings is not an object")
    return dict(settings)


def connector_legacy_settings_import(*, connector: Connector, settings: Mapping[str, Any], dry_run: bool = False) -> LegacyImportReport:
    """Fill the connector's filters, mappings and whitelists from legacy settings; report each row.

    With `dry_run` the same code runs inside a transaction that is rolled back, so the report is
    exactly what a real import would do.
    """
    report = LegacyImportReport(dry_run=dry_run)
    with transaction.atomic():
        locked = Connector.objects.select_for_update().get(pk=connector.pk)
        for key, value in settings.items():
            _import_setting(locked, key, value, settings, report)
        locked.save()
        if dry_run:
            transaction.set_rollback(True)
    connector.refresh_from_db()  # the caller's instance shows what is stored now
    return report


def _import_setting(connector: Connector, key: str, value: Any, settings: Mapping[str, Any], report: LegacyImportReport) -> None:
    if key == "synchronized_segments":
        _import_segments(connector, value, report)
    elif key == "sync_fields_to_hull":
        for row in _rows(value, key, report):
            _import_incoming_row(connector, row, report)
    elif key == "sync_fields_to_intercom":
        for row in _rows(value, key, report):
            _import_outgoing_row(connector, row, report)
    elif key in EVENT_WHITELIST_KEYS:
        _import_event_whitelist(connector, value, report)
    elif key == "incoming_events":
        _import_incoming_events(connector, value, report)
    elif key in BOOLEAN_SETTINGS:
        _import_boolean(connector, key, value, settings, report)
    elif key in SKIPPED_SETTINGS:
        report.not_mapped.append(ImportLine("setting", key, reason=f"skipped: {SKIPPED_SETTINGS[key]}"))
    else:
        report.not_mapped.append(ImportLine("setting", key, reason="not a legacy Intercom connector setting this import knows"))


def _rows(value: Any, key: str, report: LegacyImportReport) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        report.not_mapped.append(ImportLine("setting", key, reason="expected a list of rows"))
        return []
    rows = []
    for row in value:
        if isinstance(row, Mapping):
            rows.append(row)
        else:
            report.not_mapped.append(ImportLine("mapping", json.dumps(row), reason="a row must be an object"))
    return rows


def _merge_list(
    connector: Connector, setting: str, values: list[str], kind: str, target: str, report: LegacyImportReport
) -> None:
    """Append each value the connector's list setting does not have yet; report each one."""
    for value in values:
        current = list(getattr(connector, setting) or [])
        if value in current:
            report.unchanged.append(ImportLine(kind, value, target))
        else:
            setattr(connector, setting, [*current, value])
            report.mapped.append(ImportLine(kind, value, target))


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _import_segments(connector: Connector, value: Any, report: LegacyImportReport) -> None:
    if not _is_string_list(value):
        report.not_mapped.append(ImportLine("segments", "synchronized_segments", reason="expected a list of segment ids"))
        return
    _merge_list(connector, "synchronized_user_segments", value, "segments", "User Filter", report)
    if value:
        report.not_mapped.append(
            ImportLine(
                "segments",
                "synchronized_segments",
                "Lead Filter",
                reason="left as it is: the legacy filter covered users and leads; choose the lead segments in the admin",
            )
        )


def _hull_name(raw: Any) -> str:
    """The Hull side of a row without the UI's `traits_` prefix (docs/intercom-behaviour.md#settings)."""
    return str(raw or "").strip().removeprefix("traits_")


def _row_sides(row: Mapping[str, Any], *intercom_keys: str) -> tuple[str, str]:
    intercom = next((str(row[k]).strip() for k in intercom_keys if row.get(k)), "")
    return _hull_name(row.get("hull")), intercom


def incoming_source_from_legacy(name: str) -> tuple[str | None, str]:
    """The 2.x contact path for a legacy incoming field, or None and why not."""
    name = name.strip()
    if name in V1_TO_V2_FIELDS:
        return V1_TO_V2_FIELDS[name], ""
    bare = name.removeprefix("location_data.")
    if bare in REMOVED_FIELDS or name.startswith("location_data.") or name.startswith("user_agent_data"):
        return None, "Intercom's API 2.x no longer returns this field"
    if name.startswith("custom_attributes.") or name in CONTACT_FIELDS or "." in name:
        return name, ""
    # The legacy table listed custom attributes by their bare name.
    return f"custom_attributes.{name}", ""


def _import_incoming_row(connector: Connector, row: Mapping[str, Any], report: LegacyImportReport) -> None:
    hull, intercom = _row_sides(row, "name", "service", "intercom")
    label = f"{intercom or '?'} -> {hull or '?'}"
    if not hull or not intercom:
        report.not_mapped.append(ImportLine("incoming mapping", label, reason="the row needs an Intercom field and a Hull attribute"))
        return
    source, why = incoming_source_from_legacy(intercom)
    if source is None:
        report.not_mapped.append(ImportLine("incoming mapping", label, reason=why))
        return
    overwrite = bool(row.get("overwrite", True))
    for entity in ENTITIES:
        target = _incoming_target(hull, entity)
        _upsert_mapping(connector, entity, Direction.INCOMING, target, source, overwrite, f"{intercom} -> {hull}", report)


def _incoming_target(hull: str, entity: str) -> str:
    """The legacy single `intercom/` group becomes the role's own group; other attributes stay."""
    prefix = ACCOUNT_GROUP + "/"
    if hull.startswith(prefix):
        return f"{GROUP_FOR_ENTITY[entity]}/{hull[len(prefix):]}"
    return hull


def outgoing_target_from_legacy(name: str) -> tuple[str | None, str]:
    """The 2.x writable field or custom attribute name for a legacy outgoing field, or None and why not."""
    name = name.strip().removeprefix("custom_attributes.")
    name = V1_TO_V2_FIELDS.get(name, name)
    if name in REMOVED_FIELDS:
        return None, "Intercom's API 2.x no longer accepts this field"
    if name in NOT_WRITABLE_OUTGOING or "." in name:
        return None, "not writable through a mapping (the connector manages it)"
    return name, ""


def _import_outgoing_row(connector: Connector, row: Mapping[str, Any], report: LegacyImportReport) -> None:
    hull, intercom = _row_sides(row, "name", "service", "intercom")
    label = f"{hull or '?'} -> {intercom or '?'}"
    if not hull or not intercom:
        report.not_mapped.append(ImportLine("outgoing mapping", label, reason="the row needs a Hull attribute and an Intercom field"))
        return
    target, why = outgoing_target_from_legacy(intercom)
    if target is None:
        report.not_mapped.append(ImportLine("outgoing mapping", label, reason=why))
        return
    if hull.startswith((USER_GROUP + "/", LEAD_GROUP + "/", ACCOUNT_GROUP + "/")):
        report.not_mapped.append(
            ImportLine("outgoing mapping", label, reason="the connector's own attributes are never sent back (no loops)")
        )
        return
    for entity in ENTITIES:
        _upsert_mapping(connector, entity, Direction.OUTGOING, hull, target, True, label, report)


def _upsert_mapping(
    connector: Connector,
    entity: str,
    direction: str,
    hull_attribute: str,
    intercom_attribute: str,
    overwrite: bool,
    label: str,
    report: LegacyImportReport,
) -> None:
    """Create the row unless the target is taken; a taken target is kept and reported (never replaced)."""
    kind = f"{direction} {entity} mapping"
    # The unique target is the Hull attribute for incoming rows, the Intercom field for outgoing ones.
    target_lookup = (
        {"hull_attribute": hull_attribute} if direction == Direction.INCOMING else {"intercom_attribute": intercom_attribute}
    )
    existing = FieldMapping.objects.filter(connector=connector, entity=entity, direction=direction, **target_lookup).first()
    shown = f"{intercom_attribute} -> {hull_attribute}" if direction == Direction.INCOMING else f"{hull_attribute} -> {intercom_attribute}"
    if existing is None:
        FieldMapping.objects.create(
            connector=connector,
            entity=entity,
            direction=direction,
            hull_attribute=hull_attribute,
            intercom_attribute=intercom_attribute,
            overwrite=overwrite,
        )
        report.mapped.append(ImportLine(kind, label, shown))
    elif (existing.hull_attribute, existing.intercom_attribute) == (hull_attribute, intercom_attribute):
        report.unchanged.append(ImportLine(kind, label, shown))
    else:
        current = (
            f"{existing.intercom_attribute} -> {existing.hull_attribute}"
            if direction == Direction.INCOMING
            else f"{existing.hull_attribute} -> {existing.intercom_attribute}"
        )
        report.not_mapped.append(ImportLine(kind, label, shown, reason=f"kept the existing row {current}"))


def _import_event_whitelist(connector: Connector, value: Any, report: LegacyImportReport) -> None:
    if not _is_string_list(value):
        report.not_mapped.append(ImportLine("events", "outgoing events whitelist", reason="expected a list of event names"))
        return
    _merge_list(connector, "outgoing_events", value, "events", "Hull Events Whitelist", report)


def _import_incoming_events(connector: Connector, value: Any, report: LegacyImportReport) -> None:
    if not _is_string_list(value):
        report.not_mapped.append(ImportLine("topics", "incoming_events", reason="expected a list of topics"))
        return
    supported = _supported_topics()
    known = [topic for topic in value if supported is None or topic in supported or topic in connector.incoming_events]
    for topic in value:
        if topic not in known:
            report.not_mapped.append(ImportLine("topics", topic, reason="not a topic this connector handles"))
    _merge_list(connector, "incoming_events", known, "topics", "Intercom Events Whitelist", report)


def _supported_topics() -> set[str] | None:
    try:
        from sync.incoming.topics import SUPPORTED_TOPICS
    except ImportError:  # the incoming package is optional for this import
        return None
    return set(SUPPORTED_TOPICS)


def _import_boolean(connector: Connector, key: str, value: Any, settings: Mapping[str, Any], report: LegacyImportReport) -> None:
    if not isinstance(value, bool):
        report.not_mapped.append(ImportLine("setting", key, reason="expected true or false"))
        return
    line = ImportLine("setting", key, f"{key} = {str(value).lower()}")
    (report.unchanged if getattr(connector, key) == value else report.mapped).append(line)
    setattr(connector, key, value)
    if key == "send_events" and value and not any(k in settings for k in EVENT_WHITELIST_KEYS):
        # The legacy connector sent every event when send_events was on; our empty whitelist sends none.
        _import_event_whitelist(connector, ["all_events"], report)


def connector_legacy_settings_export(*, connector: Connector) -> dict[str, Any]:
    """The connector's settings in the legacy shape: the inverse of the import, for checking it.

    Only what the import can write is exported (rows beyond the connector's defaults, user rows
    standing for user and lead alike), so `import(export(c))` into a fresh connector gives `c` back.
    """
    defaults = {(f"{USER_GROUP}/{hull}", intercom) for intercom, hull in CONTACT_INCOMING_FIELDS}
    incoming = []
    for row in FieldMapping.objects.filter(connector=connector, entity=Entity.USER, direction=Direction.INCOMING).order_by("id"):
        if (row.hull_attribute, row.intercom_attribute) in defaults:
            continue
        hull = row.hull_attribute
        if hull.startswith(USER_GROUP + "/"):
            hull = f"{ACCOUNT_GROUP}/{hull[len(USER_GROUP) + 1:]}"
        source = V2_TO_V1_FIELDS.get(row.intercom_attribute, row.intercom_attribute)
        incoming.append({"name": source, "hull": f"traits_{hull}", "overwrite": row.overwrite})
    outgoing = [
        {"hull": f"traits_{row.hull_attribute}", "name": V2_TO_V1_FIELDS.get(row.intercom_attribute, row.intercom_attribute)}
        for row in FieldMapping.objects.filter(connector=connector, entity=Entity.USER, direction=Direction.OUTGOING).order_by("id")
    ]
    return {
        "synchronized_segments": list(connector.synchronized_user_segments),
        "sync_fields_to_hull": incoming,
        "sync_fields_to_intercom": outgoing,
        "outgoing_events": list(connector.outgoing_events),
        "incoming_events": list(connector.incoming_events),
        **{key: getattr(connector, key) for key in BOOLEAN_SETTINGS},
    }

