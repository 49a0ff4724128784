"""Consent from Intercom: a contact's subscription types -> Hull traits and events.

Intercom's `granular.subscribe` / `granular.unsubscribe` topics say a contact's subscription to one
type changed. Their payload shape is not documented, so the handler only takes the contact's id from
it (`item.contact.id`, or the item itself when it is a contact) and reads the truth from the API:
`GET /contacts/{id}/subscriptions` and `GET /subscription_types`. For each live type the person is
subscribed unless attached to an opt_out type, and not subscribed unless attached to an opt_in type.

Hull gets, in the contact's own group (never pushed back: no loop), one trait per type,
`subscription_<name>` (true = subscribed, name lower-cased with non-alphanumerics as `_`), and for
each type whose state differs from the last one seen (`ConsentState`), an event
"Subscription changed" {subscription_type, subscribed, consent_type}, with a deterministic id.
(`contact.subscribed` / `contact.unsubscribed`, the all-emails switch, are handled elsewhere.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sync.incoming import ingest
from sync.incoming.context import IncomingContext
from sync.incoming.ingest import log_incoming_skip
from sync.incoming.payloads import IntercomNotification, contact_role, normalise_contact
from sync.incoming.transforms import GROUP_FOR_ROLE, contact_claims
from sync.models import ConsentState, DeliveryStatus, Direction, IdentityLink, SyncLog
from sync.synclog import log_outcome

EVENT = "Subscription changed"


def trait_name(name: str) -> str:
    return "subscription_" + (re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_") or "unnamed")


def _contact_ref(item: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item.get("contact"), Mapping) and item["contact"].get("id"):
        return dict(item["contact"])
    if item.get("type") == "contact" and item.get("id"):
        return dict(item)
    return {}


def subscription_states(intercom: Any, contact_id: str) -> dict[str, dict[str, Any]]:
    """type id -> {name, consent_type, subscribed} for the workspace's live types."""
    attached = {str(t.get("id")) for t in (intercom.list_contact_subscriptions(contact_id).get("data") or [])}
    states: dict[str, dict[str, Any]] = {}
    for item in intercom.list_subscription_types().get("data") or []:
        if item.get("state") != "live":
            continue
        type_id = str(item.get("id"))
        opt_in = item.get("consent_type") == "opt_in"
        name = (item.get("default_translation") or {}).get("name") or type_id
        states[type_id] = {"name": name, "consent_type": item.get("consent_type"), "subscribed": (type_id in attached) == opt_in}
    return states


def subscription_changed(ctx: IncomingContext, note: IntercomNotification) -> Any:
    from sync.incoming.handlers import DONE, Outcome, _track

    ref = _contact_ref(note.item)
    if not ref:
        log_incoming_skip(ctx, entity=SyncLog.EntityType.USER, reason=SyncLog.Reason.NO_CONTACT, message=f"{note.topic}: the payload names no contact.", delivery=ctx.delivery)
        return Outcome(DeliveryStatus.DONE, "no_contact")
    contact_id = str(ref["id"])
    full = ctx.intercom.get_contact(contact_id)
    role = contact_role(full) or "user"
    if not IdentityLink.objects.filter(connector=ctx.connector, intercom_id=contact_id).exists() and role not in GROUP_FOR_ROLE:
        role = "user"
    group = GROUP_FOR_ROLE[role]
    states = subscription_states(ctx.intercom, contact_id)
    stored, _ = ConsentState.objects.get_or_create(connector=ctx.connector, contact_id=contact_id)
    before = dict(stored.states or {})
    claims = contact_claims(ctx, role, normalise_contact(full, role=role))
    changed = []
    with ingest.open_firehose(ctx.connector) as batch:
        batch.traits(claims, {f"{group}/{trait_name(s['name'])}": s["subscribed"] for s in states.values()})
        for type_id, state in states.items():
            if before.get(type_id) is None or before[type_id] != state["subscribed"]:
                properties = {"subscription_type": state["name"], "subscribed": state["subscribed"], "consent_type": state["consent_type"]}
                _track(batch, note, claims, EVENT, properties, contact_id=contact_id, suffix=f"-{type_id}")
                changed.append(f"{state['name']}: {'subscribed' if state['subscribed'] else 'unsubscribed'}")
    stored.states = {type_id: s["subscribed"] for type_id, s in states.items()}
    stored.save(update_fields=["states"])
    log_outcome(
        ctx.connector,
        direction=Direction.INCOMING,
        entity=SyncLog.EntityType.USER if role == "user" else SyncLog.EntityType.LEAD,
        status=SyncLog.Status.SUCCESS,
        action="incoming.user.success",
        message=f"Subscriptions from Intercom ({note.topic}): " + (", ".join(changed) or "no change"),
        intercom_id=contact_id,
        email=str(claims.get("email") or ""),
        data={"subscriptions": states},
        delivery=ctx.delivery,
    )
    return DONE
