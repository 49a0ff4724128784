"""The removal policy: what happens in Intercom when a Hull user is deleted or leaves every synced segment.

`Connector.removal_policy` chooses: nothing (the default, as Hull's own connector), archive or
delete. Two causes reach here:
- Hull's `user:delete` channel (its payload is unspecified, reference/hull-platform.md §2: we read
  each message as a user message and need at least the Hull id);
- a `user:update` whose router said "not in any synchronized segment" while `changes.segments.left`
  holds a segment of the User or Lead filter: the user just left the last synced segment.
Only contacts this connector linked to the Hull user (IdentityLink, or the `intercom_user/id` /
`intercom_lead/id` write-back on the profile) are touched: we never guess by email here.
Each user ends in one SyncLog row saying what was done and why. An archived contact is remembered
(`IdentityLink.archived_at`) and unarchived when the user is sent again (`unarchive_returning`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from sync.defaults import LEAD_GROUP, USER_GROUP
from sync.work import reraise_halt
from sync.intercom.errors import IntercomApiError, IntercomNotFound
from sync.models import Connector, Entity, IdentityLink, SyncLog
from sync.outgoing.context import OutgoingContext
from sync.outgoing.routing import SKIP, Decision, SkipReason, matches_filter, message_field, segment_ids

USER_ENTITY = "user"  # removal rows are user rows (Hull's outgoing.user.* names), for users and leads alike
DELETED_IN_HULL = "deleted_in_hull"
LEFT_SEGMENTS = "left_synced_segments"

CAUSE_TEXT = {
    DELETED_IN_HULL: "the user was deleted in Hull",
    LEFT_SEGMENTS: "the user left every synchronized segment (User and Lead filters)",
}


class RemovalReason:
    """Reason codes on the removal's SyncLog row (members of the one SyncLog.Reason)."""

    POLICY_NOTHING = SyncLog.Reason.REMOVAL_POLICY_NOTHING
    NO_CONTACT = SyncLog.Reason.REMOVAL_NO_CONTACT
    ARCHIVED = SyncLog.Reason.REMOVAL_ARCHIVED
    DELETED = SyncLog.Reason.REMOVAL_DELETED


def left_every_synced_segment(connector: Connector, message: Any, decision: Decision) -> bool:
    """True when this skip is the moment the user left the last synced segment (the policy applies)."""
    if decision.target != SKIP or decision.reason != SkipReason.NOT_IN_SEGMENT:
        return False
    if connector.removal_policy == Connector.RemovalPolicy.NOTHING or message_field(message, "is_export", False):
        return False
    changes = message_field(message, "changes") or {}
    left = segment_ids((changes.get("segments") or {}).get("left") or [])
    if not left:
        return False
    synced = [*(connector.synchronized_user_segments or []), *(connector.synchronized_lead_segments or [])]
    # `ALL` matches everyone: nobody can leave it, so it never counts as left.
    return matches_filter([s for s in synced if s not in ("ALL", "all_segments")], left)


def linked_contacts(connector: Connector, user: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(entity, Intercom id) of the contacts this connector linked to the Hull user."""
    hull_id = str(user.get("id") or "")
    found: dict[str, str] = {}
    if hull_id:
        for link in IdentityLink.objects.filter(connector=connector, hull_id=hull_id, entity__in=[Entity.USER, Entity.LEAD]):
            found[link.intercom_id] = link.entity
    for entity, group in ((Entity.USER, USER_GROUP), (Entity.LEAD, LEAD_GROUP)):
        stored = user.get(f"{group}/id")
        if stored and not user.get(f"{group}/deleted_at"):
            found.setdefault(str(stored), entity)
    return [(entity, intercom_id) for intercom_id, entity in found.items()]


def contact_removal(ctx: OutgoingContext, *, message: Any, cause: str) -> str:
    """Apply the connector's removal policy to one Hull user; writes its one SyncLog row. Returns the reason code."""
    user: Mapping[str, Any] = message_field(message, "user") or {}
    common = {"hull_id": str(user.get("id") or ""), "email": str(user.get("email") or ""), "external_id": str(user.get("external_id") or "")}
    policy = ctx.connector.removal_policy
    why = CAUSE_TEXT[cause]
    data: dict[str, Any] = {"cause": cause, "policy": policy}
    if not ctx.connector.is_intercom_connected:
        text = f"Nothing done in Intercom ({why}): the connector is not connected to Intercom"
        ctx.log(USER_ENTITY, SyncLog.Status.SKIPPED, reason=SkipReason.NOT_CONFIGURED, message=text, data=data, **common)
        return SkipReason.NOT_CONFIGURED
    if policy == Connector.RemovalPolicy.NOTHING:
        text = f"Nothing done in Intercom: {why}, and the removal policy is “do nothing”"
        ctx.log(USER_ENTITY, SyncLog.Status.SKIPPED, reason=RemovalReason.POLICY_NOTHING, message=text, data=data, **common)
        return RemovalReason.POLICY_NOTHING
    contacts = linked_contacts(ctx.connector, user)
    if not contacts:
        text = f"No Intercom contact is linked to this user: nothing to {policy} ({why})"
        ctx.log(USER_ENTITY, SyncLog.Status.SKIPPED, reason=RemovalReason.NO_CONTACT, message=text, data=data, **common)
        return RemovalReason.NO_CONTACT
    done: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    for entity, intercom_id in contacts:
        try:
            if policy == Connector.RemovalPolicy.DELETE:
                ctx.intercom.delete_contact(intercom_id)
            else:
                ctx.intercom.archive_contact(intercom_id)
        except IntercomNotFound:
            done.append({"id": intercom_id, "role": entity, "result": "already gone"})
            IdentityLink.objects.filter(connector=ctx.connector, entity=entity, intercom_id=intercom_id).delete()
            continue
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the batch waits
            errors.append({"id": intercom_id, "role": entity, "error": exc.message})
            continue
        links = IdentityLink.objects.filter(connector=ctx.connector, entity=entity, intercom_id=intercom_id)
        if policy == Connector.RemovalPolicy.DELETE:
            links.delete()
        else:
            links.update(archived_at=timezone.now())
        done.append({"id": intercom_id, "role": entity, "result": "deleted" if policy == Connector.RemovalPolicy.DELETE else "archived"})
    data["contacts"] = done
    ids = ", ".join(c["id"] for c in done + errors)
    if errors:
        data["errors"] = errors
        text = f"Intercom refused to {policy} contact(s) ({why}): " + "; ".join(e["error"] for e in errors)
        ctx.log(USER_ENTITY, SyncLog.Status.ERROR, reason=SyncLog.Reason.INTERCOM_ERROR, message=text, intercom_id=ids[:64], data=data, **common)
        return "intercom_error"
    verb = "Deleted" if policy == Connector.RemovalPolicy.DELETE else "Archived"
    reason = RemovalReason.DELETED if policy == Connector.RemovalPolicy.DELETE else RemovalReason.ARCHIVED
    text = f"{verb} in Intercom because {why} (removal policy: {policy})"
    ctx.log(USER_ENTITY, SyncLog.Status.SUCCESS, reason=reason, message=text, intercom_id=ids[:64], data=data, **common)
    return reason


def unarchive_returning(ctx: OutgoingContext, *, message: Any, target: str) -> None:
    """A user sent again whose contact the policy archived: unarchive it first, so the push updates it.

    (Intercom keeps archived contacts and refuses to create another with the same details.)
    """
    user = message_field(message, "user") or {}
    hull_id = str(user.get("id") or "")
    if not hull_id:
        return
    for link in IdentityLink.objects.filter(connector=ctx.connector, hull_id=hull_id, archived_at__isnull=False):
        try:
            ctx.intercom.unarchive_contact(link.intercom_id)
        except IntercomNotFound:
            link.delete()  # gone meanwhile: the push resolves the contact again
            continue
        IdentityLink.objects.filter(pk=link.pk).update(archived_at=None, last_payload_hash="")


def deleted_user_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Hull's `user:delete` messages as messages the outgoing run sends to the removal policy.

    The channel's payload is unspecified: a message is either `{"user": {...}}` or the user itself.
    """
    out: list[dict[str, Any]] = []
    for raw in messages:
        if not isinstance(raw, Mapping):
            continue
        inner = raw.get("user")
        fields: Mapping[Any, Any] = inner if isinstance(inner, Mapping) else raw
        user = {k[len("traits_"):] if k.startswith("traits_") else k: v for k, v in fields.items()}
        out.append({"user": user, "removal_cause": DELETED_IN_HULL, "events": [], "changes": {}})
    return out
