"""Support context in Hull: per-person traits from Intercom conversations.

With `Connector.support_context_traits` on, every conversation webhook the registry handles also
updates a `SupportConversation` row (state, created, first admin reply, rating), and the person's
traits are recomputed from their rows and sent to Hull in the contact's own group
(`intercom_user/` or `intercom_lead/`, so they never trigger a push back):

- `open_conversations`: conversations not closed (snoozed ones count: they come back open);
- `last_conversation_at`: when the newest conversation started;
- `last_conversation_rating`, `last_conversation_remark`: the newest rating (`conversation.rating.added`);
- `first_admin_reply_seconds`: in the newest conversation an admin answered, seconds from its start
  to the first admin reply (Intercom's `statistics.first_admin_reply_at`, else the first
  `conversation.admin.replied` webhook's time).

Older news never overwrites newer state (`state_at`), so a late redelivery cannot reopen a closed
conversation, and replays give the same traits. Deliveries are pruned after 14 days, so
`support_context_rebuild` (command `rebuild_support_context`) rebuilds the rows from Intercom's
conversation search, which carries the statistics and the rating.
Each delivery's person gets one `incoming.user.*` sync-log row saying what the traits are now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.db import transaction

from sync.incoming.context import IncomingContext
from sync.incoming import ingest
from sync.incoming.ingest import log_incoming_skip
from sync.incoming.payloads import IntercomNotification, contact_role, normalise_contact
from sync.intercom.errors import IntercomNotFound
from sync.incoming.transforms import GROUP_FOR_ROLE, contact_anonymous_id, contact_claims
from sync.models import Connector, DeliveryStatus, Direction, IdentityLink, SupportConversation, SyncLog
from sync.synclog import log_outcome

OPENING_TOPICS = {"conversation.user.created", "conversation.user.replied", "conversation.admin.opened", "conversation.admin.single.created", "conversation.admin.unsnoozed"}  # fmt: skip
STATE_BY_TOPIC = {"conversation.admin.closed": "closed", "conversation.admin.snoozed": "snoozed", **{t: "open" for t in OPENING_TOPICS}}
TRAITS = ("open_conversations", "last_conversation_at", "last_conversation_rating", "last_conversation_remark", "first_admin_reply_seconds")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def conversation_contact(item: Mapping[str, Any]) -> dict[str, Any]:
    """The conversation's person: 1.x `user`, 2.x `contacts.contacts[0]`."""
    from sync.incoming.conversations import ConversationView

    return ConversationView(item, "").contact


def conversation_record(connector: Connector, item: Mapping[str, Any], *, topic: str = "", at: int | None = None) -> SupportConversation | None:
    """Upsert the conversation's row from a webhook item or a search result; None without an id or a person."""
    conversation_id = str(item.get("id") or "")
    contact = conversation_contact(item)
    if not conversation_id or not contact.get("id"):
        return None
    at = at if at is not None else (_int(item.get("updated_at")) or 0)
    state = item.get("state") if item.get("state") in ("open", "closed", "snoozed") else None
    if state is None and isinstance(item.get("open"), bool):
        state = "open" if item["open"] else "closed"
    state = STATE_BY_TOPIC.get(topic) or state
    statistics = item.get("statistics")
    if not isinstance(statistics, Mapping):
        statistics = {}
    rating = item.get("conversation_rating")
    if not isinstance(rating, Mapping):
        rating = {}
    with transaction.atomic():
        row, _ = SupportConversation.objects.select_for_update().get_or_create(
            connector=connector, conversation_id=conversation_id, defaults={"contact_id": str(contact["id"])}
        )
        row.contact_id = str(contact["id"])
        row.created_at_remote = _int(item.get("created_at")) or row.created_at_remote
        if state and at >= row.state_at:
            row.state, row.state_at = state, at
        replied = _int(statistics.get("first_admin_reply_at"))
        if replied is None and topic == "conversation.admin.replied" and row.first_admin_reply_at is None:
            replied = at  # 1.x payloads carry no statistics: the first reply we heard of
        if replied is not None and (row.first_admin_reply_at is None or replied < row.first_admin_reply_at):
            row.first_admin_reply_at = replied
        if _int(rating.get("rating")) is not None:
            rated_at = _int(rating.get("updated_at")) or _int(rating.get("created_at")) or at
            if row.rated_at is None or rated_at >= row.rated_at:
                row.rating, row.remark, row.rated_at = _int(rating["rating"]), str(rating.get("remark") or ""), rated_at
        row.save()
    return row


def _iso(seconds: int | None) -> str | None:
    return datetime.fromtimestamp(seconds, tz=dt_timezone.utc).isoformat().replace("+00:00", "Z") if seconds else None


def contact_traits(connector: Connector, contact_id: str) -> dict[str, Any]:
    """The five traits (bare names) from the person's rows."""
    rows = list(SupportConversation.objects.filter(connector=connector, contact_id=contact_id))
    newest = max(rows, key=lambda r: r.created_at_remote or 0, default=None)
    rated = max((r for r in rows if r.rating is not None), key=lambda r: r.rated_at or 0, default=None)
    answered = max((r for r in rows if r.first_admin_reply_at and r.created_at_remote), key=lambda r: r.created_at_remote or 0, default=None)
    return {
        "open_conversations": sum(1 for r in rows if r.state != "closed"),
        "last_conversation_at": _iso(newest.created_at_remote) if newest else None,
        "last_conversation_rating": rated.rating if rated else None,
        "last_conversation_remark": (rated.remark or None) if rated else None,
        "first_admin_reply_seconds": (
            max(0, answered.first_admin_reply_at - answered.created_at_remote)
            if answered and answered.first_admin_reply_at and answered.created_at_remote
            else None
        ),
    }


def _role(ctx: IncomingContext, contact: Mapping[str, Any]) -> str:
    known = set(
        IdentityLink.objects.filter(connector=ctx.connector, entity__in=("user", "lead"), intercom_id=str(contact["id"])).values_list("entity", flat=True)
    )
    return contact_role(contact) or (known.pop() if len(known) == 1 else "") or "user"


def traits_send(ctx: IncomingContext, contact: Mapping[str, Any], *, why: str) -> dict[str, Any]:
    """Send the person's support traits to Hull; writes the person's one sync-log row. Returns the traits."""
    intercom_id = str(contact["id"])
    role = _role(ctx, contact)
    group = GROUP_FOR_ROLE[role]
    traits = {f"{group}/{name}": value for name, value in contact_traits(ctx.connector, intercom_id).items()}
    claims = contact_claims(ctx, role, normalise_contact(contact, role=role)) if len(contact) > 2 else {"anonymous_id": contact_anonymous_id(role, intercom_id)}
    with ingest.open_firehose(ctx.connector) as batch:  # looked up at call time (tests swap it)
        batch.traits(claims, traits)
    bare = {k.split("/", 1)[1]: v for k, v in traits.items()}
    summary = f"{bare['open_conversations']} open conversation(s)"
    if bare["last_conversation_rating"] is not None:
        summary += f", last rating {bare['last_conversation_rating']}"
    log_outcome(
        ctx.connector,
        direction=Direction.INCOMING,
        entity=SyncLog.EntityType.USER if role == "user" else SyncLog.EntityType.LEAD,
        status=SyncLog.Status.SUCCESS,
        action="incoming.user.success",
        message=f"Support context ({why}): {summary}",
        intercom_id=intercom_id,
        email=str(claims.get("email") or ""),
        data={"traits": traits},
        delivery=ctx.delivery,
    )
    return traits


def support_context_update(ctx: IncomingContext, note: IntercomNotification) -> None:
    """After a conversation topic's own handler: record the news and refresh the person's traits."""
    if not ctx.connector.support_context_traits:
        return
    row = conversation_record(ctx.connector, note.item, topic=note.topic, at=note.created_at)
    if row is not None:
        traits_send(ctx, conversation_contact(note.item), why=note.topic)


def with_support_context(handler: Callable[[IncomingContext, IntercomNotification], Any]) -> Callable[[IncomingContext, IntercomNotification], Any]:
    """Wrap a conversation topic's handler (topics.py) so support context follows its success."""

    def run(ctx: IncomingContext, note: IntercomNotification) -> Any:
        outcome = handler(ctx, note)
        if getattr(outcome, "status", None) == DeliveryStatus.DONE and not getattr(outcome, "reason", ""):
            support_context_update(ctx, note)
        return outcome

    run.__name__ = getattr(handler, "__name__", "conversation_handler")
    return run


def conversation_rating_added(ctx: IncomingContext, note: IntercomNotification) -> Any:
    """`conversation.rating.added`: no Hull event of its own; the rating goes to the person's traits."""
    from sync.incoming.handlers import DONE, Outcome

    if not ctx.connector.support_context_traits:
        log_incoming_skip(
            ctx,
            entity=SyncLog.EntityType.USER,
            reason=SyncLog.Reason.SUPPORT_CONTEXT_OFF,
            message="conversation.rating.added: “Write support context to Hull” is off, so the rating is not kept.",
            delivery=ctx.delivery,
        )
        return Outcome(DeliveryStatus.DONE, "support_context_off")
    contact = conversation_contact(note.item)
    if not contact.get("id") or not note.item.get("id"):
        log_incoming_skip(
            ctx, entity=SyncLog.EntityType.USER, reason=SyncLog.Reason.NO_CONTACT, message=f"{note.topic}: the conversation names no user or lead.", delivery=ctx.delivery
        )
        return Outcome(DeliveryStatus.DONE, "no_contact")
    conversation_record(ctx.connector, note.item, topic=note.topic, at=note.created_at)
    traits_send(ctx, contact, why="rating added")
    return DONE


# --- rebuild from Intercom -----------------------------------------------------------------------


def support_context_rebuild(*, connector: Connector, contact_ids: Iterable[str] | None = None, since: int = 0) -> dict[str, int]:
    """Rebuild the rows and traits from Intercom's conversation search (all conversations, or these contacts')."""
    ctx = IncomingContext(connector=connector)
    if contact_ids:
        query: dict[str, Any] = {"field": "contact_ids", "operator": "IN", "value": [str(c) for c in contact_ids]}
    else:
        query = {"field": "updated_at", "operator": ">", "value": int(since)}
    people: dict[str, dict[str, Any]] = {}
    seen = 0
    for item in ctx.intercom.search_conversations(query):
        row = conversation_record(connector, item, at=_int(item.get("updated_at")) or 0)
        seen += 1
        if row is not None:
            people.setdefault(row.contact_id, conversation_contact(item))
    for contact_id in contact_ids or ():
        people.setdefault(str(contact_id), {"id": str(contact_id), "type": "contact"})  # no conversations: zeros
    for contact in people.values():
        try:
            full = ctx.intercom.get_contact(str(contact["id"]))  # role and claims for the Hull profile
        except IntercomNotFound:
            full = contact  # deleted in Intercom meanwhile: its slim reference still names the Hull profile
        traits_send(ctx, full, why="rebuilt from Intercom")
    return {"conversations": seen, "people": len(people)}
