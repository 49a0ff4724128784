"""Consent toward Intercom: Hull consent attributes -> the contact's subscription types.

`Connector.consent_mappings` pairs a Hull attribute with an Intercom subscription type (by name or
id, resolved once per run from `GET /subscription_types`). A true value means the person consents,
false that they refuse, anything else is left alone. Intercom's model (2.15): attaching a contact
to an opt_in type opts them in, to an opt_out type opts them out; detaching returns to the default.
So: opt_in + true -> attach, opt_in + false -> detach; opt_out + false -> attach, opt_out + true ->
detach (the request's `consent_type` is always the type's own).

When: the attributes that changed in this message, or all of them when the person is first sent
(or re-enters a synced segment, or comes in an export). A message whose only change is a consent
attribute is not pushed as a contact (routing finds no mapped change) but still updates consent,
and its sync-log row says so instead of the skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.work import reraise_halt
from sync.intercom.errors import IntercomApiError
from sync.models import Entity, IdentityLink, SyncLog
from sync.outgoing.context import OutgoingContext
from sync.outgoing.routing import LEAD, USER, Decision, SkipReason, message_field

FIRST_SEND_TRIGGERS = {"never_synced", "entered_segment", "export"}
CONSENT_ONLY_SKIPS = {SkipReason.NO_MAPPED_CHANGES, SkipReason.NO_OUTGOING_ATTRIBUTES, SkipReason.OWN_CHANGES_ONLY}
TRUE_TEXT = {"true", "yes", "1", "on"}
FALSE_TEXT = {"false", "no", "0", "off"}


def _consent_value(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_TEXT | FALSE_TEXT:
        return value.strip().lower() in TRUE_TEXT
    return None


def wanted_consent(connector: Any, message: Any, *, every: bool) -> dict[str, bool]:
    """subscription type (as configured) -> consents?, for the changed (or, with `every`, all) consent attributes."""
    rows = connector.consent_mappings or []
    if not rows:
        return {}
    user: Mapping[str, Any] = message_field(message, "user") or {}
    changed = set((message_field(message, "changes") or {}).get("user") or {})
    wanted: dict[str, bool] = {}
    for row in rows:
        attribute = str(row.get("hull_attribute") or "")
        if not every and attribute not in changed:
            continue
        value = _consent_value(user.get(attribute))
        if value is not None:
            wanted[str(row.get("subscription_type"))] = value
    return wanted


def _types(ctx: OutgoingContext) -> dict[str, dict]:
    cache = ctx.__dict__.get("_subscription_types")
    if cache is None:
        listing = ctx.intercom.list_subscription_types()
        cache = {}
        for item in listing.get("data") or []:
            cache[str(item.get("id"))] = item
            name = ((item.get("default_translation") or {}).get("name") or "").strip().casefold()
            if name:
                cache.setdefault(f"name:{name}", item)
        ctx.__dict__["_subscription_types"] = cache
    return cache


def consent_sync(ctx: OutgoingContext, *, intercom_id: str, wanted: Mapping[str, bool]) -> dict[str, Any]:
    """Apply the wanted consent to the contact; returns {"applied": {type: text}, "errors": {type: message}}."""
    applied: dict[str, str] = {}
    errors: dict[str, str] = {}
    types = _types(ctx)
    for configured, consents in wanted.items():
        item = types.get(configured) or types.get(f"name:{configured.strip().casefold()}")
        if item is None:
            errors[configured] = "no such subscription type in Intercom (check the name or id in the settings)"
            continue
        name = (item.get("default_translation") or {}).get("name") or str(item["id"])
        opt_in = item.get("consent_type") == "opt_in"
        attach = consents if opt_in else not consents
        try:
            if attach:
                ctx.intercom.attach_subscription(intercom_id, str(item["id"]), str(item.get("consent_type")))
            else:
                ctx.intercom.detach_subscription(intercom_id, str(item["id"]))
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the batch waits
            errors[name] = exc.message
            continue
        applied[name] = "subscribed" if consents else "unsubscribed"
    result: dict[str, Any] = {"applied": applied}
    if errors:
        result["errors"] = errors
    return result


def consent_text(result: Mapping[str, Any]) -> str:
    parts = [f"{name}: {state}" for name, state in (result.get("applied") or {}).items()]
    text = f"Consent sent to Intercom ({', '.join(parts)})" if parts else ""
    if result.get("errors"):
        text += ("; " if text else "") + "consent not sent: " + "; ".join(f"{k}: {v}" for k, v in result["errors"].items())
    return text


def consent_after_push(ctx: OutgoingContext, *, message: Any, target: str, trigger: str, intercom_id: str, status: str) -> None:
    """After the contact's push: send its consent and add what was done to the contact's sync-log row."""
    if not intercom_id or status == SyncLog.Status.ERROR:
        return
    wanted = wanted_consent(ctx.connector, message, every=trigger in FIRST_SEND_TRIGGERS)
    if not wanted:
        return
    result = consent_sync(ctx, intercom_id=intercom_id, wanted=wanted)
    user = message_field(message, "user") or {}
    row = (
        SyncLog.objects.filter(connector=ctx.connector, notification=ctx.notification, entity=target, hull_id=str(user.get("id") or ""))
        .order_by("-id")
        .first()
    )
    if row is None:
        return
    row.data = {**(row.data or {}), "consent": result}
    text = consent_text(result)
    if result.get("applied") and row.status == SyncLog.Status.SKIPPED:
        row.status, row.action, row.reason, row.message = SyncLog.Status.SUCCESS, "outgoing.user.success", "", text
    else:
        row.message = "; ".join(p for p in (row.message, text) if p)
    row.save(update_fields=["data", "status", "action", "reason", "message"])


def consent_only(ctx: OutgoingContext, *, message: Any, decision: Decision) -> bool:
    """A skip whose message changed only consent attributes of a linked contact: send the consent instead."""
    if decision.reason not in CONSENT_ONLY_SKIPS or not ctx.connector.consent_mappings:
        return False
    wanted = wanted_consent(ctx.connector, message, every=False)
    user = message_field(message, "user") or {}
    hull_id = str(user.get("id") or "")
    if not wanted or not hull_id:
        return False
    link = IdentityLink.objects.filter(connector=ctx.connector, hull_id=hull_id, entity__in=[Entity.USER, Entity.LEAD]).first()
    if link is None:
        return False
    result = consent_sync(ctx, intercom_id=link.intercom_id, wanted=wanted)
    status = SyncLog.Status.ERROR if result.get("errors") and not result.get("applied") else SyncLog.Status.SUCCESS
    ctx.log(
        LEAD if link.entity == Entity.LEAD else USER,
        status,
        reason=SyncLog.Reason.INTERCOM_ERROR if status == SyncLog.Status.ERROR else "",
        message=consent_text(result),
        hull_id=hull_id,
        intercom_id=link.intercom_id,
        email=str(user.get("email") or ""),
        external_id=str(user.get("external_id") or ""),
        data={"consent": result, "skipped_push": decision.reason},
    )
    return True
