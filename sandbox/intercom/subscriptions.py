"""Subscription types and a contact's subscriptions (2.15): `GET /subscription_types`,
`GET|POST /contacts/{id}/subscriptions`, `DELETE /contacts/{id}/subscriptions/{subscription_id}`.

Attaching a contact to an opt_in type opts them in; to an opt_out type opts them out; detaching
returns to the type's default. The body's `consent_type` must be the type's own: the sandbox refuses
a mismatch with a 400 (Intercom's documentation gives no other meaning to it), and refuses draft or
archived types, so a client that sends the wrong one finds out in the tests.
"""

from __future__ import annotations

from typing import Any

from sandbox.intercom.errors import invalid, not_found
from sandbox.intercom.models import SubscriptionType
from sandbox.intercom.state import SandboxRequest, contact_or_404


def render_subscription_type(subscription: SubscriptionType) -> dict[str, Any]:
    translation = {"name": subscription.name, "description": subscription.description, "locale": "en"}
    return {
        "type": "subscription",
        "id": subscription.type_id,
        "state": subscription.state,
        "default_translation": translation,
        "translations": [translation],
        "consent_type": subscription.consent_type,
        "content_types": list(subscription.content_types or ["email"]),
    }


def list_subscription_types(req: SandboxRequest) -> tuple[int, Any]:
    types = SubscriptionType.objects.filter(workspace=req.workspace)
    return 200, {"type": "list", "data": [render_subscription_type(t) for t in types]}


def list_contact_subscriptions(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    types = SubscriptionType.objects.filter(workspace=req.workspace, contacts=contact)
    return 200, {"type": "list", "data": [render_subscription_type(t) for t in types]}


def _type_or_404(req: SandboxRequest, type_id: Any) -> SubscriptionType:
    subscription = SubscriptionType.objects.filter(workspace=req.workspace, type_id=str(type_id)).first()
    if subscription is None:
        raise not_found("Resource Not Found")
    return subscription


def attach_subscription(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    body = req.json_object()
    if not body.get("id") or not body.get("consent_type"):
        raise invalid("id and consent_type are required", code="parameter_not_found")
    subscription = _type_or_404(req, body["id"])
    if subscription.state != "live":
        raise invalid(f"Subscription type {subscription.type_id} is {subscription.state}")
    if body["consent_type"] != subscription.consent_type:
        raise invalid(f"consent_type must be {subscription.consent_type} for subscription type {subscription.type_id}")
    subscription.contacts.add(contact)
    return 200, render_subscription_type(subscription)


def detach_subscription(req: SandboxRequest) -> tuple[int, Any]:
    contact = contact_or_404(req.workspace, req.match["id"], "User Not Found")
    subscription = _type_or_404(req, req.match["subscription_id"])
    subscription.contacts.remove(contact)
    return 200, render_subscription_type(subscription)
