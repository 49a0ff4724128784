"""The browser snippet (spec: "Linking website anonymous traffic with Intercom Leads").

A website tracked with Hull.js loads `GET /hull/<slug>/ship.js` from this connector. The script
reads the Intercom visitor id in the browser and adds it to the Hull visitor's aliases, so the
Hull web-visitor profile and the Intercom lead profile merge; it also forwards Hull.js tracking
and traits calls to the Intercom messenger.

Which id the browser can see (the decision, also in docs/migration.md):
`Intercom('getVisitorId')` returns the visitor's *user_id*, the auto-generated id of an anonymous
Intercom visitor that a lead keeps (1.x leads carry it as `user_id`; the REST 2.x contact shows
1.x `user_id` as `external_id`, and our payload normaliser maps one onto the other). The 24-hex
contact `id` that the connector's primary lead anonymous id is built from
(`intercom-lead:lead-<contact id>`, docs/decisions.md#identity) never reaches the browser. So:

- the snippet aliases `intercom-lead:lead-<visitor id>`;
- an incoming lead that carries a visitor id (`external_id`) gets the same
  `intercom-lead:lead-<visitor id>` as an extra alias (`lead_visitor_anonymous_ids`), besides its
  primary `intercom-lead:lead-<contact id>`.

Both sides build the id with `lead_anonymous_id`, so they cannot drift apart. In legacy attribute
mode the snippet also aliases `intercom:<visitor id>`, the legacy snippet's format, which is the
`intercom:<external id>` that legacy mode gives leads (sync/legacy.py).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

from sync.defaults import OWN_GROUPS
from sync.identity import LEAD_ANONYMOUS_PREFIX as _LEAD_PREFIX, LEGACY_ANONYMOUS_PREFIX, lead_anonymous_id, lead_visitor_anonymous_ids  # noqa: F401
from sync.models import Connector, Direction, Entity, FieldMapping

LEAD_ANONYMOUS_PREFIX = _LEAD_PREFIX + "lead-"  # what the browser snippet puts before a visitor id
SNIPPET_SOURCE = Path(__file__).resolve().parent.parent.parent / "webhooks" / "static" / "webhooks" / "ship.js"
CONFIG_PLACEHOLDER = "__HULL_INTERCOM_CONFIG__"
# Browsers re-validate after this long; a 304 costs a few bytes. Short, because pausing the
# connector or changing the outgoing mappings must reach websites within minutes.
CACHE_MAX_AGE_SECONDS = 300
# Hull.js and the Intercom messenger load asynchronously; the snippet gives up after these.
HULL_TIMEOUT_MS = 10_000
INTERCOM_TIMEOUT_MS = 5_000
# Intercom's messenger refuses or ignores these from the browser, or names them differently:
# identity and ownership changes belong to the server-side sync.
_MESSENGER_NAMES = {"external_id": "user_id", "signed_up_at": "created_at"}
_NOT_FROM_THE_BROWSER = {"role", "owner_id", "unsubscribed_from_emails"}
_NOT_HULL_JS_PREFIXES = (*OWN_GROUPS, "account.", "account/")


@lru_cache(maxsize=1)
def _snippet_source() -> str:
    return SNIPPET_SOURCE.read_text(encoding="utf-8")


def snippet_version() -> str:
    """Changes whenever the script itself changes: the `?v=` of the tag."""
    return hashlib.sha256(_snippet_source().encode()).hexdigest()[:10]


def snippet_config(*, connector: Connector) -> dict[str, Any]:
    """What the served script is told about this connector. Public: never a secret in here."""
    rows = (
        FieldMapping.objects.filter(
            connector=connector, direction=Direction.OUTGOING, entity__in=[Entity.USER, Entity.LEAD]
        )
        .order_by("id")
        .values_list("hull_attribute", "intercom_attribute")
    )
    mapping: list[list[str]] = []
    for hull_attribute, intercom_attribute in rows:
        if intercom_attribute in _NOT_FROM_THE_BROWSER or hull_attribute.startswith(_NOT_HULL_JS_PREFIXES):
            # The connector's own groups and account attributes never come from Hull.js calls.
            continue
        pair = [hull_attribute.removeprefix("traits_"), _MESSENGER_NAMES.get(intercom_attribute, intercom_attribute)]
        if pair not in mapping:
            mapping.append(pair)
    alias_prefixes = [LEAD_ANONYMOUS_PREFIX]
    if connector.legacy_attribute_mode:
        alias_prefixes.append(LEGACY_ANONYMOUS_PREFIX)
    return {
        "version": snippet_version(),
        "connector": connector.slug,
        "active": bool(connector.is_active),
        "aliasPrefixes": alias_prefixes,
        "sendEvents": bool(connector.send_events),
        "events": list(connector.outgoing_events or []),
        "mapping": mapping,
        "hullTimeoutMs": HULL_TIMEOUT_MS,
        "intercomTimeoutMs": INTERCOM_TIMEOUT_MS,
    }


def snippet_render(*, connector: Connector) -> str:
    """The script with this connector's configuration embedded (no build step: one replace)."""
    # `<` escaped so no value can close a surrounding <script> if someone inlines the file.
    config = json.dumps(snippet_config(connector=connector), separators=(",", ":"), sort_keys=True).replace("<", "\\u003c")
    return _snippet_source().replace(CONFIG_PLACEHOLDER, config, 1)


def snippet_url(connector: Connector, *, base_url: str | None = None) -> str:
    base = (base_url or settings.PUBLIC_BASE_URL).rstrip("/")
    return f"{base}/hull/{connector.slug}/ship.js?v={snippet_version()}"


def snippet_tag(connector: Connector, *, base_url: str | None = None) -> str:
    """The one-line tag the admin shows (with a copy button) for the website's <head>."""
    return f'<script async src="{snippet_url(connector, base_url=base_url)}"></script>'
