"""Where each setting sits on the connector page: tabs, the sections inside them, their fields.

The one place to edit when a setting is added: put its field name in a section's "fields" (or add a
section to a tab). The admin builds its fieldsets from SECTIONS, the template its tabs from TABS,
and a table (inline) joins a section by naming it in its `section` attribute (settings_ui/admin.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from settings_ui import spec_texts
from settings_ui.features import FEATURE_FIELDSETS

FEATURE_SECTIONS: dict[str, dict[str, Any]] = dict(FEATURE_FIELDSETS)


class Tab(NamedTuple):
    id: str
    label: str
    sections: tuple[str, ...]


GETTING_STARTED = "Getting started"

TABS: list[Tab] = [
    Tab("connection", "Connection", (GETTING_STARTED,)),
    Tab(
        "outgoing",
        "Outgoing (Hull → Intercom)",
        (
            "Users",
            "Leads",
            "Companies",
            "Hull events",
            "Removal and erasure",
            "Company moves",
            "Intercom event-name limit",
            "Consent (Intercom subscription types)",
        ),
    ),
    Tab("incoming", "Incoming (Intercom → Hull)", ("Incoming fields", "Fetching", "Support context")),
    Tab("webhooks", "Webhooks", ("Intercom webhooks",)),
    Tab("advanced", "Advanced", ("Advanced", "Alerts")),
]

SECTIONS: dict[str, dict[str, Any]] = {
    GETTING_STARTED: {
        "description": spec_texts.GETTING_STARTED,
        "fields": (
            ("name", "slug"),
            "is_active",
            "hull_organization",
            ("hull_id", "hull_secret"),
            "intercom_region",
            "intercom_connection",
            "intercom_access_token",
            "intercom_client_secret",
            "website_snippet",
        ),
    },
    "Users": {"description": spec_texts.USERS, "fields": ("synchronized_user_segments", "tag_users", "send_batch_as")},
    "Leads": {"description": spec_texts.LEADS, "fields": ("synchronized_lead_segments", "tag_leads", "convert_leads")},
    "Companies": {"description": spec_texts.COMPANIES, "fields": ("synchronized_account_segments", "tag_companies")},
    "Hull events": {
        "description": "Hull events sent to Intercom on the corresponding lead or user.",
        "fields": ("send_events", "outgoing_events"),
    },
    "Incoming fields": {
        "description": (
            "Which Intercom attributes are written to which Hull attributes, for users, leads and companies. "
            "Open a table to change it."
        ),
        "fields": (),
    },
    "Fetching": {
        "description": spec_texts.FETCHING,
        "fields": (
            "fetch_users",
            "fetch_users_interval",
            "fetch_leads",
            "fetch_leads_interval",
            "fetch_companies",
            "fetch_companies_interval",
            "fetch_buttons",
        ),
    },
    "Intercom webhooks": {
        "description": "The Intercom webhook topics the connector acts on, and where Intercom sends them.",
        "fields": ("webhook_url", "receive_events", "incoming_events", "incoming_event_patterns"),
    },
    "Advanced": {
        "description": spec_texts.ADVANCED,
        "fields": (
            "legacy_attribute_mode",
            ("ignore_deleted_users", "mark_deleted_users"),
            ("ignore_deleted_accounts", "mark_deleted_accounts"),
            ("link_users_in_hull", "link_users_in_service"),
        ),
    },
}


# The sections of the features beyond the specification (removal, company moves, event-name limit,
# consent, support context, alerts) are defined next to their admin pages.
SECTIONS.update(FEATURE_SECTIONS)


def fieldsets() -> list[tuple[str, dict[str, Any]]]:
    """The admin's fieldsets, in tab order."""
    return [(name, SECTIONS[name]) for tab in TABS for name in tab.sections]


def add_page_fieldsets() -> list[tuple[str, dict[str, Any]]]:
    """A new connector's page asks only for the basics; the full page opens right after."""
    return [(GETTING_STARTED, SECTIONS[GETTING_STARTED])]
