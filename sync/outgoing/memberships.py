"""Company moves: when a Hull user's account changes, the Intercom contact leaves the previous company.

Intercom lets a contact belong to many companies and `POST /contacts/{id}/companies` only adds,
so without this a user who moved from account A to account B ends attached to both. With "link
users in Intercom" and `Connector.move_company_memberships` on, after the contact is attached to
its current account's company (contacts.py `_link_company`), the company of the *previous* Hull
account is detached (`DELETE /contacts/{id}/companies/{company_id}`).

The previous account comes from the message's `changes.account` (Hull sends `id: [old, new]`, and
`external_id: [old, new]` when it changed): its company is the one our IdentityLink joins to that
Hull account id (or, failing that, to its external id, our company_id claim). Companies attached
in Intercom by hand, or by another source, are never detached: we only undo our own attachment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.defaults import ACCOUNT_GROUP
from sync.work import reraise_halt
from sync.intercom.errors import IntercomApiError, IntercomNotFound
from sync.models import Entity, IdentityLink
from sync.outgoing.context import OutgoingContext
from sync.outgoing.routing import message_field


def _previous(diff: Any) -> str:
    """The old value of a Hull change `[old, new]` ('' when there was none)."""
    if isinstance(diff, (list, tuple)) and len(diff) == 2 and diff[0] not in (None, "") and diff[0] != diff[1]:
        return str(diff[0])
    return ""


def previous_companies(ctx: OutgoingContext, *, message: Any, current_company: str | None) -> list[str]:
    """Intercom ids of the companies of the user's previous Hull account (not the current one)."""
    changes: Mapping[str, Any] = message_field(message, "changes") or {}
    account_changes: Mapping[str, Any] = changes.get("account") or {}
    old_hull_id = _previous(account_changes.get("id"))
    old_external_id = _previous(account_changes.get("external_id"))
    old_intercom_id = _previous(account_changes.get(f"{ACCOUNT_GROUP}/id"))
    links = IdentityLink.objects.filter(connector=ctx.connector, entity=Entity.COMPANY)
    found: list[str] = []
    if old_hull_id:
        found += list(links.filter(hull_id=old_hull_id).values_list("intercom_id", flat=True))
    if not found and old_external_id:
        found += list(links.filter(external_id=old_external_id).values_list("intercom_id", flat=True))
    if not found and old_intercom_id and links.filter(intercom_id=old_intercom_id).exists():
        found.append(old_intercom_id)
    return [c for c in dict.fromkeys(found) if c and c != current_company]


def company_moves(ctx: OutgoingContext, *, message: Any, intercom_id: str, current_company: str | None) -> dict | None:
    """Detach the contact from its previous account's company; returns what was done (for the log row's data)."""
    if not ctx.connector.move_company_memberships:
        return None
    stale = previous_companies(ctx, message=message, current_company=current_company)
    if not stale:
        return None
    detached: list[str] = []
    errors: dict[str, str] = {}
    for company_id in stale:
        try:
            ctx.intercom.detach_company(intercom_id, company_id)
        except IntercomNotFound:
            detached.append(company_id)  # the company (or the membership) is gone already
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the batch waits
            errors[company_id] = exc.message
        else:
            detached.append(company_id)
    result: dict[str, Any] = {"detached": detached}
    if errors:
        result["errors"] = errors
    return result


def moved_text(moved: Mapping[str, Any]) -> str:
    """The log row's words for a company move."""
    parts = []
    if moved.get("detached"):
        parts.append(f"Account changed in Hull: detached from the previous company ({', '.join(moved['detached'])})")
    if moved.get("errors"):
        parts.append("Intercom refused to detach " + "; ".join(f"{k}: {v}" for k, v in moved["errors"].items()))
    return ". ".join(parts)
