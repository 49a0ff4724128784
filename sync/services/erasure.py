"""Erase one person from Intercom on request (the admin's "Erase a person" page and `manage.py erase_contact`).

The person is named by email, external id or Hull id. We delete every Intercom contact (user or
lead) that this connector linked to them or that Intercom's search finds with that email or
external id (`DELETE /contacts/{id}`: permanent), forget our identity links, and remove the
connector's own sync-log rows about them (they hold the email and ids). What remains is one
`ErasureAudit` row: who asked, when, how many contacts were deleted, and a keyed hash of the
identity (HMAC-SHA256 with the deployment's SECRET_KEY), so a later "was this person erased?" can
be answered by hashing the identity again, without the audit keeping personal data.

What Intercom may still keep is said in `INTERCOM_KEEPS` (shown by the admin and the command).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q

from sync.intercom.errors import IntercomApiError, IntercomNotFound
from sync.models import Connector, Direction, Entity, ErasureAudit, IdentityLink, SyncLog
from sync.synclog import log_outcome
from sync.work import halts, reraise_halt

KINDS = ("email", "external_id", "hull_id")

INTERCOM_KEEPS = (
    "Deleting a contact in Intercom is permanent and removes its attributes, tags, events and company "
    "memberships. Intercom may still keep: the conversations the person had (they stay in the inbox, "
    "attributed to a deleted contact), copies in Intercom's backups until its own retention ends, and data "
    "exported earlier (reports, other integrations). Hull keeps its own profile of the person: erase it in "
    "Hull as well. Hull notifications and Intercom webhooks this connector stored are pruned after 14 days."
)


class ErasureError(Exception):
    """The erasure could not finish (Intercom stopped us); the audit row says so, nothing personal kept."""


@dataclass
class ErasureResult:
    outcome: str  # erased | not_found | partial
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    audit: ErasureAudit | None = None

    @property
    def summary(self) -> str:
        if self.outcome == "not_found":
            return "No Intercom contact matched: nothing to delete (the request is recorded in the erasure audit)."
        text = f"{len(self.deleted)} Intercom contact(s) deleted"
        if self.errors:
            text += f"; {len(self.errors)} could not be deleted: " + "; ".join(self.errors)
        return text + "."


def identity_hash(kind: str, value: str) -> str:
    """Keyed hash of a normalised identity: the same person always gives the same hash, nobody can reverse it."""
    normalised = value.strip().lower() if kind == "email" else value.strip()
    return hmac.new(settings.SECRET_KEY.encode(), f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


def _search(intercom: Any, field_name: str, value: str) -> list[str]:
    found: list[str] = []
    for role in (Entity.USER, Entity.LEAD):
        query = {
            "operator": "AND",
            "value": [
                {"field": field_name, "operator": "=", "value": value},
                {"field": "role", "operator": "=", "value": role},
            ],
        }
        page = intercom.search_contacts_page(query, per_page=50)
        found += [str(c["id"]) for c in page.get("data") or [] if c.get("id")]
    return found


def contacts_to_erase(connector: Connector, intercom: Any, *, kind: str, value: str) -> tuple[list[str], list[IdentityLink]]:
    """Intercom ids of the person's contacts: our links first, then Intercom's search (email / external id)."""
    links = IdentityLink.objects.filter(connector=connector, entity__in=[Entity.USER, Entity.LEAD])
    if kind == "email":
        links = links.filter(email__iexact=value)
    else:
        links = links.filter(**{kind: value})
    found = list(links)
    ids = [link.intercom_id for link in found]
    if kind in ("email", "external_id"):
        ids += _search(intercom, kind, value)
    return list(dict.fromkeys(ids)), found


def erase_person(*, connector: Connector, kind: str, value: str, actor: str, intercom: Any = None) -> ErasureResult:
    """Delete the person's Intercom contacts and our records of them; keep one audit row. Raises ErasureError."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    value = (value or "").strip()
    if not value:
        raise ValueError("The identity to erase is empty.")
    if intercom is None:
        from sync.intercom.client import IntercomClient

        intercom = IntercomClient.for_connector(connector)
    audit = ErasureAudit(connector=connector, actor=actor[:150], identity_kind=kind, identity_hash=identity_hash(kind, value))
    result = ErasureResult(outcome="not_found", audit=audit)
    try:
        ids, links = contacts_to_erase(connector, intercom, kind=kind, value=value)
        for intercom_id in ids:
            try:
                intercom.delete_contact(intercom_id)
            except IntercomNotFound:
                pass  # already gone: erased all the same
            except IntercomApiError as exc:
                reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the batch waits
                result.errors.append(f"{intercom_id}: {exc.message}")
                continue
            result.deleted.append(intercom_id)
    except IntercomApiError as exc:
        if not halts(exc):
            raise
        audit.outcome, audit.contacts_deleted = "failed", len(result.deleted)
        audit.detail = f"Stopped by Intercom ({type(exc).__name__}) after {len(result.deleted)} deletion(s); run it again."
        audit.save()
        _forget(connector, kind, value, result.deleted)
        raise ErasureError(audit.detail) from exc
    result.outcome = "partial" if result.errors else ("erased" if result.deleted else "not_found")
    _forget(connector, kind, value, result.deleted, hull_ids=[link.hull_id for link in links if link.hull_id])
    audit.outcome, audit.contacts_deleted = result.outcome, len(result.deleted)
    audit.detail = result.summary if not result.errors else f"{len(result.deleted)} deleted, {len(result.errors)} refused by Intercom"
    audit.save()
    # The one sync-log row of this erasure: no email, no ids, only what was done and the audit number.
    status = SyncLog.Status.ERROR if result.errors else (SyncLog.Status.SUCCESS if result.deleted else SyncLog.Status.SKIPPED)
    log_outcome(
        connector,
        direction=Direction.OUTGOING,
        entity=SyncLog.EntityType.USER,
        status=status,
        action=f"outgoing.user.erasure.{result.outcome}",
        reason=SyncLog.Reason.ERASURE if status != SyncLog.Status.ERROR else SyncLog.Reason.INTERCOM_ERROR,
        message=f"Erasure request (audit #{audit.pk}, by {audit.actor}): {result.summary}",
        data={"erasure_audit": audit.pk, "contacts_deleted": len(result.deleted)},
    )
    return result


def _forget(connector: Connector, kind: str, value: str, intercom_ids: list[str], hull_ids: Sequence[str] = ()) -> None:
    """Remove our links and sync-log rows about the person (they hold the email and ids)."""
    IdentityLink.objects.filter(connector=connector, intercom_id__in=intercom_ids, entity__in=[Entity.USER, Entity.LEAD]).delete()
    about = Q(intercom_id__in=intercom_ids) if intercom_ids else Q(pk__in=[])
    if kind == "email":
        about |= Q(email__iexact=value)
    elif kind == "external_id":
        about |= Q(external_id=value)
    else:
        about |= Q(hull_id=value)
    if hull_ids:
        about |= Q(hull_id__in=list(hull_ids))
    SyncLog.objects.filter(connector=connector).filter(about).delete()
