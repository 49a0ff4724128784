"""The identity vocabulary, in one place: attribute groups, anonymous-id formats, loop-guard prefixes,
and the key that names an Intercom workspace (docs/architecture.md, "Identity vocabulary").

Every module that writes or recognises one of these imports it from here, so a format changes once.
It imports nothing from the rest of `sync` beyond the models' typing: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync.models import Connector

# --- Hull attribute groups the connector writes -----------------------------------------------------

USER_GROUP = "intercom_user"
LEAD_GROUP = "intercom_lead"
ACCOUNT_GROUP = "intercom"
GROUP_FOR_ROLE = {"user": USER_GROUP, "lead": LEAD_GROUP}
# Attribute groups the connector writes itself: changes there never trigger a push (no loops).
OWN_GROUPS = (USER_GROUP + "/", LEAD_GROUP + "/", ACCOUNT_GROUP + "/")
# The legacy connector wrote users and leads in the account group too (legacy attribute mode).
LEGACY_GROUP = ACCOUNT_GROUP

# --- anonymous ids ------------------------------------------------------------------------------------

USER_ANONYMOUS_PREFIX = "intercom-user:"  # + "user-<contact id>"
LEAD_ANONYMOUS_PREFIX = "intercom-lead:"  # + "lead-<contact id or visitor id>"
COMPANY_ANONYMOUS_PREFIX = "intercom:"  # + "<company id>"
LEGACY_ANONYMOUS_PREFIX = "intercom:"  # + "<contact id or 1.x user_id>" (legacy mode)
# Anonymous ids the connector adds itself: an alias change carrying one is our own echo (no loops).
OWN_ANONYMOUS_PREFIXES = (USER_ANONYMOUS_PREFIX, LEAD_ANONYMOUS_PREFIX, COMPANY_ANONYMOUS_PREFIX)


def contact_anonymous_id(role: str, intercom_id: str) -> str:
    """`intercom-user:user-<id>` / `intercom-lead:lead-<id>`: a contact's anonymous id in Hull."""
    return f"intercom-{role}:{role}-{intercom_id}"


def company_anonymous_id(intercom_id: str) -> str:
    return f"{COMPANY_ANONYMOUS_PREFIX}{intercom_id}"


def lead_anonymous_id(identifier: str) -> str:
    """The anonymous id of an Intercom lead in Hull, from its contact id or visitor id."""
    return f"{LEAD_ANONYMOUS_PREFIX}lead-{identifier}"


def lead_visitor_anonymous_ids(contact: Mapping[str, Any]) -> list[str]:
    """Extra anonymous ids an incoming lead carries so the snippet's alias finds it.

    `contact` is the normalised v2 contact (a 1.x `user_id` is already `external_id`). Users get
    none: their `external_id` is the customer's own user id, an identity claim, not a visitor id.
    """
    if contact.get("role") != "lead":
        return []
    visitor_id = contact.get("external_id")
    if visitor_id in (None, "") or str(visitor_id) == str(contact.get("id") or ""):
        return []
    return [lead_anonymous_id(str(visitor_id))]


def legacy_anonymous_id(identifier: str) -> str:
    """The legacy connector's anonymous id for an Intercom id or a 1.x user_id."""
    return f"{LEGACY_ANONYMOUS_PREFIX}{identifier}"


# --- the workspace -----------------------------------------------------------------------------------


def workspace_key(connector: Connector) -> str:
    """What names the connector's Intercom workspace for the shared rate budget and metrics."""
    return connector.intercom_workspace_id or f"connector-{connector.pk}"
