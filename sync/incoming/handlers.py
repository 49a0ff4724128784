"""The webhook topic handlers: each turns one notification into its Hull writes and SyncLog rows.

The table that maps topics to these functions is sync/incoming/topics.py; variants of one
behaviour (user or lead, tag added or removed) are `functools.partial`s of one function here.
Every handler writes to Hull through one FirehoseBatch, flushed before the SyncLog rows are
written (sync/incoming/ingest.py), and returns an `Outcome` for the WebhookDelivery row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.db import transaction

from sync.defaults import ACCOUNT_GROUP
from sync.incoming.context import IncomingContext
from sync.incoming.conversations import PropertyReader, conversation_event_properties
from sync.incoming.ingest import (
    IngestedEntity,
    log_incoming_skip,
    open_firehose,
    record_ingested,
    send_account_update,
    send_user_update,
)
from sync.incoming.payloads import IntercomNotification, contact_role, dotted_get, normalise_company, normalise_contact
from sync.incoming.transforms import (
    GROUP_FOR_ROLE,
    company_anonymous_id,
    company_to_hull_account,
    contact_anonymous_id,
    contact_claims,
    contact_tag_names,
    contact_to_hull_user,
)
from sync.intercom.errors import IntercomNotFound
from sync.mapping import mapping_rows
from sync.models import DeliveryStatus, Direction, IdentityLink, SyncLog
from sync.synclog import log_outcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended: `status` is a DeliveryStatus value; `reason` a stable code."""

    status: str
    reason: str = ""
    message: str = ""


DONE = Outcome(DeliveryStatus.DONE)


# --- contacts -------------------------------------------------------------------------------


def contact_upsert(
    ctx: IncomingContext,
    note: IntercomNotification,
    *,
    role: str | None = None,
    event: str | None = None,
    extra_traits: Mapping[str, Any] | None = None,
    event_properties: tuple[str, ...] = (),
) -> Outcome:
    """Upsert the contact as a Hull user of its role; optionally also an event and fixed traits.

    Used for `user.created`/`contact.created` (and their 2.x names), `*.updated`,
    `contact.added_email` ("Updated email address"), `user.unsubscribed` ("Unsubscribed from emails").
    """
    item = _contact_item(note)
    if not item.get("id"):
        return _skip_no_id(ctx, note)
    # The item decides the role; the topic's role only fills in for payloads that do not say
    # (API 1.x `user.*` topics also carry leads: `type: contact`, `anonymous: true`).
    role = contact_role(item) or role or _known_role(ctx, str(item["id"])) or "user"
    contact = normalise_contact(item, role=role)
    update = contact_to_hull_user(ctx, contact, role=role)
    for name, value in (extra_traits or {}).items():
        update.traits[name.format(group=update.group)] = value
    with open_firehose(ctx.connector) as batch:
        send_user_update(batch, update)
        if event:
            properties = {"topic": note.topic, **{k: contact.get(k) for k in event_properties if contact.get(k) is not None}}
            _track(batch, note, update.claims, event, properties, contact_id=update.intercom_id, ip=_event_ip(role, item))
    record_ingested(ctx, [IngestedEntity.of_user(update, topic=note.topic)], source="webhook", delivery=ctx.delivery)
    if event:
        _log_event(ctx, note, event, update.intercom_id, update.email)
    return DONE


def contact_signed_up(ctx: IncomingContext, note: IntercomNotification) -> Outcome:
    """Lead became a user: upsert as a user, and `intercom_lead/is_lead: false` on the lead profile."""
    item = _contact_item(note)
    if not item.get("id"):
        return _skip_no_id(ctx, note)
    contact = normalise_contact(item, role="user")
    update = contact_to_hull_user(ctx, contact, role="user")
    lead_claims = contact_claims(ctx, "lead", contact)
    with open_firehose(ctx.connector) as batch:
        send_user_update(batch, update)
        # Same person: the lead profile keeps its history, flagged as converted.
        batch.traits(lead_claims, {f"{GROUP_FOR_ROLE['lead']}/is_lead": False})
    record_ingested(ctx, [IngestedEntity.of_user(update, topic=note.topic)], source="webhook", delivery=ctx.delivery)
    return DONE


def contact_tag_changed(ctx: IncomingContext, note: IntercomNotification, *, added: bool, role: str | None = None) -> Outcome:
    """Refresh the tags attribute; a tag that is not a Hull segment's name is also an event."""
    item = note.item
    tag = value if isinstance(value := item.get("tag"), Mapping) else {}
    embedded = item.get("contact") or item.get("user") or item.get("lead") or {}
    if not embedded.get("id"):
        return _skip_no_id(ctx, note)
    role = contact_role(embedded) or role or _known_role(ctx, str(embedded["id"])) or "user"
    contact = normalise_contact(embedded, role=role)
    claims = contact_claims(ctx, role, contact)
    traits: dict[str, Any] = {}
    rows = mapping_rows(ctx.connector, role, Direction.INCOMING)
    tag_attributes = [row.hull_attribute for row in rows if row.intercom_attribute == "tags"]
    if tag_attributes:
        # The embedded list may predate the change: ask Intercom for the current tags.
        try:
            names = contact_tag_names(ctx, {**contact, "tags": {"data": [], "has_more": True}})
            traits = {attribute: names for attribute in tag_attributes}
        except IntercomNotFound:
            traits = {}  # the contact is gone (deleted since): the event still stands
    tag_name = tag.get("name")
    send_event = bool(tag_name) and str(tag_name).casefold() not in ctx.segment_names
    event = "Added Tag" if added else "Removed Tag"
    with open_firehose(ctx.connector) as batch:
        if traits:
            batch.traits(claims, traits)
        if send_event:
            # Several tags can change in one second: the tag id keeps their event ids apart.
            suffix = f"-{tag.get('id')}" if tag.get("id") else ""
            _track(batch, note, claims, event, {"topic": note.topic, "tag": tag_name}, contact_id=str(contact["id"]), suffix=suffix)
    if traits:
        user = IngestedEntity(role, str(contact["id"]), None, str(claims.get("email") or ""), str(claims.get("external_id") or ""))
        record_ingested(ctx, [user], source="webhook", delivery=ctx.delivery)
    if send_event:
        _log_event(ctx, note, event, str(contact["id"]), str(claims.get("email") or ""))
    elif not traits:
        log_incoming_skip(
            ctx,
            entity=SyncLog.EntityType.EVENT,
            reason=SyncLog.Reason.TAG_IS_SEGMENT,
            message=f"Tag {tag_name!r} mirrors a Hull segment and tags are not mapped: nothing to write.",
            intercom_id=str(contact["id"]),
            delivery=ctx.delivery,
        )
    return DONE


def contact_deleted(ctx: IncomingContext, note: IntercomNotification, *, role: str | None = None) -> Outcome:
    """`<group>/deleted_at` and a cleared `<group>/id` on the profile of the contact's role (docs/decisions.md#webhook-topics)."""
    item = note.item
    if not item.get("id"):
        return _skip_no_id(ctx, note)
    intercom_id = str(item["id"])
    role = role or contact_role(item) or _known_role(ctx, intercom_id) or "user"
    entity = SyncLog.EntityType.LEAD if role == "lead" else SyncLog.EntityType.USER
    if not ctx.connector.mark_deleted_users:
        log_incoming_skip(
            ctx,
            entity=entity,
            reason=SyncLog.Reason.MARK_DELETED_USERS_OFF,
            message="Intercom deleted or archived this contact; Mark Deleted Users is off.",
            intercom_id=intercom_id,
            delivery=ctx.delivery,
        )
        return Outcome(DeliveryStatus.DONE, "mark_deleted_users_off")
    group = GROUP_FOR_ROLE[role]
    claims = {"anonymous_id": contact_anonymous_id(role, intercom_id)}
    with open_firehose(ctx.connector) as batch:
        batch.traits(claims, {f"{group}/deleted_at": note.created_at, f"{group}/id": None})
    with transaction.atomic():
        IdentityLink.objects.filter(connector=ctx.connector, entity=role, intercom_id=intercom_id).delete()
        log_outcome(
            ctx.connector,
            direction=Direction.INCOMING,
            entity=entity,
            status=SyncLog.Status.SUCCESS,
            action="incoming.user.success",
            intercom_id=intercom_id,
            data={"type": role.capitalize(), "source": "webhook", "topic": note.topic, "deleted_at": note.created_at},
            delivery=ctx.delivery,
        )
    return DONE


# --- companies ------------------------------------------------------------------------------


def company_upsert(ctx: IncomingContext, note: IntercomNotification) -> Outcome:
    item = value if isinstance(value := note.item.get("company"), Mapping) else note.item
    if not item.get("id"):
        return _skip_no_id(ctx, note, entity=SyncLog.EntityType.ACCOUNT)
    update = company_to_hull_account(ctx, normalise_company(item))
    with open_firehose(ctx.connector) as batch:
        send_account_update(batch, update)
    record_ingested(ctx, [IngestedEntity.of_account(update, topic=note.topic)], source="webhook", delivery=ctx.delivery)
    return DONE


def company_deleted(ctx: IncomingContext, note: IntercomNotification) -> Outcome:
    """`intercom/deleted_at` and a cleared `intercom/id` on the account, when Mark Deleted Accounts is on."""
    intercom_id = str(note.item.get("id") or "")
    if not intercom_id:
        return _skip_no_id(ctx, note, entity=SyncLog.EntityType.ACCOUNT)
    if not ctx.connector.mark_deleted_accounts:
        log_incoming_skip(
            ctx,
            entity=SyncLog.EntityType.ACCOUNT,
            reason=SyncLog.Reason.MARK_DELETED_ACCOUNTS_OFF,
            message="Intercom deleted this company; Mark Deleted Accounts is off.",
            intercom_id=intercom_id,
            delivery=ctx.delivery,
        )
        return Outcome(DeliveryStatus.DONE, "mark_deleted_accounts_off")
    with open_firehose(ctx.connector) as batch:
        batch.account_traits(
            {"anonymous_id": company_anonymous_id(intercom_id)},
            {f"{ACCOUNT_GROUP}/deleted_at": note.created_at, f"{ACCOUNT_GROUP}/id": None},
        )
    with transaction.atomic():
        IdentityLink.objects.filter(connector=ctx.connector, entity="company", intercom_id=intercom_id).delete()
        log_outcome(
            ctx.connector,
            direction=Direction.INCOMING,
            entity=SyncLog.EntityType.ACCOUNT,
            status=SyncLog.Status.SUCCESS,
            action="incoming.account.success",
            intercom_id=intercom_id,
            data={"type": "Company", "source": "webhook", "topic": note.topic, "deleted_at": note.created_at},
            delivery=ctx.delivery,
        )
    return DONE


# --- conversations --------------------------------------------------------------------------


def conversation_event(ctx: IncomingContext, note: IntercomNotification, *, event: str, reader: PropertyReader) -> Outcome:
    """One Hull event named as in the spec table, on the conversation's contact (docs/intercom-behaviour.md#conversation-events)."""
    from sync.incoming.conversations import ConversationView

    contact = ConversationView(note.item, note.app_id).contact
    if not contact.get("id"):
        log_incoming_skip(
            ctx,
            entity=SyncLog.EntityType.EVENT,
            reason=SyncLog.Reason.NO_CONTACT,
            message=f"{note.topic}: the conversation names no user or lead.",
            delivery=ctx.delivery,
        )
        return Outcome(DeliveryStatus.DONE, "no_contact")
    intercom_id = str(contact["id"])
    role = (
        contact_role(contact)
        or _known_role(ctx, intercom_id)
        or _role_from_intercom(ctx, intercom_id)
        or _role_from_author(note.item, intercom_id)
        or "user"
    )
    claims = contact_claims(ctx, role, normalise_contact(contact, role=role))
    properties = conversation_event_properties(note, reader)
    with open_firehose(ctx.connector) as batch:
        _track(batch, note, claims, event, properties, contact_id=intercom_id, ip=_event_ip(role, contact))
    _log_event(ctx, note, event, intercom_id, str(claims.get("email") or ""))
    return DONE


# --- helpers --------------------------------------------------------------------------------


def event_id_for(contact_id: str, note: IntercomNotification, suffix: str = "") -> str:
    """Deterministic (docs/decisions.md#webhook-topics): a redelivered or replayed notification is the same Hull event."""
    return f"{contact_id}-{note.topic}-{note.created_at}{suffix}"


def _track(
    batch: Any,
    note: IntercomNotification,
    claims: dict[str, Any],
    event: str,
    properties: dict[str, Any],
    *,
    contact_id: str,
    suffix: str = "",
    ip: str | None = None,
) -> None:
    created_at = (
        datetime.fromtimestamp(note.created_at, tz=dt_timezone.utc).isoformat().replace("+00:00", "Z")
        if note.created_at is not None
        else None
    )
    context: dict[str, Any] = {"source": "intercom", "event_type": note.item_type}
    if ip:
        context["ip"] = ip
    batch.track(claims, event, properties, event_id=event_id_for(contact_id, note, suffix), created_at=created_at, context=context)


def _log_event(ctx: IncomingContext, note: IntercomNotification, event: str, intercom_id: str, email: str) -> None:
    log_outcome(
        ctx.connector,
        direction=Direction.INCOMING,
        entity=SyncLog.EntityType.EVENT,
        status=SyncLog.Status.SUCCESS,
        action="incoming.event.success",
        intercom_id=intercom_id,
        email=email,
        data={"event": event, "topic": note.topic, "notification_id": note.notification_id},
        delivery=ctx.delivery,
    )


CONTACT_ITEM_TYPES = ("contact", "user", "lead")


def _contact_item(note: IntercomNotification) -> dict[str, Any]:
    """The contact inside `data.item`: the item itself, or the contact it wraps, whatever the
    wrapper's type (`contact.unsubscribed` sends a `contact_unsubscribe` around the contact; other
    topics send subscriptions or tag links)."""
    item = note.item
    if item.get("type") in CONTACT_ITEM_TYPES:
        return item
    for key in ("contact", "user", "lead"):
        wrapped = item.get(key)
        if isinstance(wrapped, Mapping) and wrapped.get("id"):
            return dict(wrapped)
    return item


def _event_ip(role: str, contact: Mapping[str, Any]) -> str | None:
    """A lead's event carries the IP its 1.x payload gives (`last_seen_ip`); no payload IP, no IP."""
    ip = contact.get("last_seen_ip")
    return str(ip) if role == "lead" and ip else None


def _role_from_author(item: Mapping[str, Any], intercom_id: str) -> str | None:
    """The conversation payload's own word when the author lookup fails: `source.author.type`
    (1.x: `conversation_message.author.type`), when that author is the event's contact."""
    for path in ("source.author", "conversation_message.author"):
        author = dotted_get(item, path)
        if isinstance(author, Mapping) and author.get("type") in ("user", "lead"):
            if not author.get("id") or str(author["id"]) == intercom_id:
                return str(author["type"])
    return None


def _known_role(ctx: IncomingContext, intercom_id: str) -> str | None:
    """Slim 2.x payloads (`contact.deleted`, conversations) omit the role: ask our own links first."""
    entities = IdentityLink.objects.filter(
        connector=ctx.connector, entity__in=("user", "lead"), intercom_id=intercom_id
    ).values_list("entity", flat=True)
    roles = set(entities)
    return roles.pop() if len(roles) == 1 else None


def _role_from_intercom(ctx: IncomingContext, intercom_id: str) -> str | None:
    """Last resort for an event's profile: the contact's role from Intercom (one API call)."""
    from sync.intercom.errors import IntercomApiError
    from sync.work import reraise_halt

    try:
        contact = ctx.intercom.get_contact(intercom_id)
    except IntercomApiError as exc:
        reraise_halt(exc)  # rate limit, refused token: the delivery waits, not processed with a guessed role
        return None
    return contact_role(contact or {})


def _skip_no_id(ctx: IncomingContext, note: IntercomNotification, *, entity: str = SyncLog.EntityType.USER) -> Outcome:
    log_incoming_skip(
        ctx,
        entity=entity,
        reason=SyncLog.Reason.NO_INTERCOM_ID,
        message=f"{note.topic}: the payload carries no Intercom id.",
        data={"topic": note.topic},
        delivery=ctx.delivery,
    )
    return Outcome(DeliveryStatus.DONE, "no_intercom_id")
