"""Options for the attribute pickers: Intercom's data attributes, cached, with standard fields as fallback.

Like Hull's schema dropdowns (docs/intercom-behaviour.md#schema-pickers): incoming pickers list every
attribute by `full_name` (custom ones as `custom_attributes.<name>`) plus the pseudo-fields; outgoing
pickers list only `api_writable` attributes by bare `name`. The picker is a suggestion list: staff may
type any name (a missing custom attribute is created when settings are saved).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.core.cache import cache

from sync import defaults
from sync.models import Connector

logger = logging.getLogger(__name__)

# Intercom's schema changes rarely; ten minutes keeps the form fast without going stale for long.
CACHE_SECONDS = 600
# A page of the admin never waits long on Intercom: (connect, read) seconds for calls made while a
# member of staff waits (the token check on save, the attribute pickers), and no retries.
ADMIN_TIMEOUT = (2.0, 3.0)
# After Intercom failed to answer, the pickers use the standard fields for a minute rather than
# asking again for every table of the page.
UNAVAILABLE_SECONDS = 60

CONTACT_PSEUDO_FIELDS = ["companies", "tags", "social_profiles", "segments"]
COMPANY_PSEUDO_FIELDS = ["tags"]

# Writable standard fields when Intercom cannot be asked (not connected, offline): from the
# data-attribute schema Hull's tests use (docs/intercom-behaviour.md#schema-pickers).
CONTACT_WRITABLE_FIELDS = [
    "role", "name", "owner_id", "email", "phone", "external_id", "signed_up_at", "last_seen_at",
    "unsubscribed_from_emails", "avatar",
]
COMPANY_WRITABLE_FIELDS = ["name", "remote_created_at", "monthly_spend", "size", "industry", "website", "company_id", "plan"]

# Fields Intercom computes itself: an outgoing mapping to one of them can never be written.
READ_ONLY_INTERCOM_FIELDS = {
    "contact": {
        "id", "type", "workspace_id", "created_at", "updated_at", "last_replied_at", "last_contacted_at",
        "last_email_opened_at", "last_email_clicked_at", "has_hard_bounced", "marked_email_as_spam", "browser",
        "browser_version", "browser_language", "os", "location", "android_app_name", "ios_app_name",
        *CONTACT_PSEUDO_FIELDS,
    },
    "company": {"id", "type", "app_id", "created_at", "updated_at", "last_request_at", "user_count", "session_count", "segments", "tags"},
}


class AttributeOption(NamedTuple):
    value: str
    label: str


def _fallback(model: str, *, writable: bool) -> list[AttributeOption]:
    if model == "contact":
        names = CONTACT_WRITABLE_FIELDS if writable else [f for f, _ in defaults.CONTACT_INCOMING_FIELDS] + CONTACT_PSEUDO_FIELDS
    else:
        names = COMPANY_WRITABLE_FIELDS if writable else [f for f, _ in defaults.COMPANY_INCOMING_FIELDS] + ["name", "plan", "size", "industry", "monthly_spend"]
    return [AttributeOption(name, name) for name in dict.fromkeys(names)]


def _cache_key(connector: Connector, model: str) -> str:
    return f"settings_ui:data_attributes:{connector.pk}:{connector.intercom_workspace_id}:{model}"


def _unavailable_key(connector: Connector) -> str:
    return f"settings_ui:intercom_unavailable:{connector.pk}"


def intercom_data_attributes(connector: Connector, model: str) -> list[dict] | None:
    """Intercom's `GET /data_attributes?model=` for this workspace, cached; None when Intercom can't be asked."""
    if not connector.pk or not connector.is_intercom_connected:
        return None
    key = _cache_key(connector, model)
    cached = cache.get(key)
    if cached is not None:
        return cached
    if cache.get(_unavailable_key(connector)):
        return None
    try:
        from sync.intercom.client import IntercomClient

        # No retries, short timeouts: a slow Intercom must not hold the settings page; the fallback list is fine.
        response = IntercomClient.for_connector(connector, max_retries=0, timeout=ADMIN_TIMEOUT).list_data_attributes(model)
    except Exception:  # the picker degrades to standard fields; the form must still open
        logger.warning("admin.schema.unavailable", extra={"connector": connector.pk, "model": model}, exc_info=True)
        cache.set(_unavailable_key(connector), True, UNAVAILABLE_SECONDS)
        return None
    attributes = response.get("data", []) if isinstance(response, dict) else list(response)
    cache.set(key, attributes, CACHE_SECONDS)
    return attributes


def forget_data_attributes(connector: Connector) -> None:
    """Drop the cached schema (after syncing data attributes or reconnecting)."""
    cache.delete_many([_cache_key(connector, model) for model in ("contact", "company")] + [_unavailable_key(connector)])


def attribute_options(connector: Connector | None, model: str, *, writable: bool) -> list[AttributeOption]:
    """Picker options for one Intercom model, outgoing (`writable`) or incoming."""
    attributes = intercom_data_attributes(connector, model) if connector is not None else None
    if attributes is None:
        return _fallback(model, writable=writable)
    options: list[AttributeOption] = []
    if writable:
        for attribute in attributes:
            if attribute.get("api_writable"):
                options.append(AttributeOption(attribute.get("name", ""), attribute.get("label") or attribute.get("name", "")))
    else:
        pseudo = CONTACT_PSEUDO_FIELDS if model == "contact" else COMPANY_PSEUDO_FIELDS
        options += [AttributeOption(name, name) for name in pseudo]
        for attribute in attributes:
            name = attribute.get("full_name") or attribute.get("name", "")
            options.append(AttributeOption(name, attribute.get("label") or name))
    return [option for option in dict.fromkeys(options) if option.value]


def read_only_reason(connector: Connector | None, model: str, name: str) -> str | None:
    """Why an outgoing mapping to `name` can never be written, or None when it can."""
    if name in READ_ONLY_INTERCOM_FIELDS[model]:
        return f"“{name}” is set by Intercom itself and cannot be written; map the Hull attribute to another field."
    if any(char in name for char in ".$~`!@#%^&*'{}|\"\\"):
        return f"“{name}” is not a valid Intercom attribute name: no dots, $ or ~`!@#%^&*'{{}}|\\\" characters."
    attributes = intercom_data_attributes(connector, model) if connector is not None else None
    for attribute in attributes or []:
        if attribute.get("name") == name and attribute.get("api_writable") is False:
            return f"Intercom marks “{name}” as not writable through the API; choose another field."
    return None
