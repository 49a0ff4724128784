"""Hull accounts -> Intercom companies (docs/intercom-behaviour.md#company-linking, #accounts-to-companies).

`POST /companies` is Intercom's upsert keyed by `company_id` (ours: the account claim, by default
`external_id`). Then company tags, then the write-back of the company to the Hull account
(`intercom/` group, anonymous id `intercom:<id>`). Called for `account:update` messages and, when
"link users in Intercom" is on, for the account of a user just pushed (then the contact is
attached to the company).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync.intercom.errors import IntercomApiError
from sync.mapping import build_outgoing_attributes, claim_rows, coerce_standard_value, map_incoming, to_unix_seconds
from sync.models import Entity, SyncLog
from sync.outgoing.context import OutgoingContext
from sync.outgoing.links import call_with_attribute_retry, link_for, link_save, payload_hash
from sync.outgoing.routing import SkipReason, skip_message
from sync.outgoing.tags import TagChanges, company_tags_sync, tags_attribute
from sync.identity import company_anonymous_id
from sync.work import reraise_halt



@dataclass
class CompanyOutcome:
    status: str
    intercom_id: str = ""
    company: dict | None = None


def _attribute_types(ctx: OutgoingContext) -> dict[str, str]:
    """The workspace's company custom attributes and their `data_type`, once per outgoing run."""
    cached = getattr(ctx, "_company_attribute_types", None)
    if cached is None:
        answer = ctx.intercom.list_data_attributes("company")
        cached = {
            str(a.get("name")): str(a.get("data_type") or "")
            for a in answer.get("data") or []
            if isinstance(a, Mapping) and a.get("custom", True)
        }
        ctx._company_attribute_types = cached  # type: ignore[attr-defined]
    return cached


def _as_type(value: Any, data_type: str) -> Any:
    """A Hull value as Intercom's attribute type wants it; unchanged when it cannot be (Intercom
    then refuses it and the account's error row says why). None stays None: it clears the value."""
    if value is None:
        return None
    try:
        if data_type == "string":
            return ("true" if value else "false") if isinstance(value, bool) else str(value)
        if data_type == "integer" and not isinstance(value, bool):
            number = float(value)
            return int(number) if number.is_integer() else value
        if data_type == "float" and not isinstance(value, bool):
            return float(value)
        if data_type == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if data_type == "date" and not isinstance(value, (int, float)):
            seconds = to_unix_seconds(value)
            return value if seconds is None else seconds
    except (TypeError, ValueError):
        return value
    return value


def typed_custom_attributes(ctx: OutgoingContext, custom: Mapping[str, Any]) -> dict[str, Any]:
    """Company custom values typed by the attribute's `data_type` in Intercom (a "500" for an
    integer attribute, a 500 for a string one); attributes not created yet keep the Hull value's
    own type, which is the type they are created with."""
    types = _attribute_types(ctx)
    return {name: _as_type(value, types[name]) if name in types else value for name, value in custom.items()}


def build_company_payload(ctx: OutgoingContext, account: Mapping[str, Any], account_segments: Iterable[Any] = ()) -> tuple[dict, Any]:
    attrs = build_outgoing_attributes(ctx.connector, Entity.COMPANY, account, account_segments=account_segments)
    payload = dict(attrs.payload)
    if payload.get("custom_attributes"):
        payload["custom_attributes"] = typed_custom_attributes(ctx, payload["custom_attributes"])
    for claim in claim_rows(ctx.connector, Entity.COMPANY):
        value = account.get(claim.hull_attribute)
        if value not in (None, ""):
            payload[claim.intercom_attribute] = coerce_standard_value(claim.intercom_attribute, value)
    if not payload.get("company_id") and account.get("intercom/company_id"):
        # Known from an earlier write-back (the company came from Intercom without our external_id).
        payload["company_id"] = str(account["intercom/company_id"])
    return payload, attrs


def company_write_back(
    ctx: OutgoingContext, *, account: Mapping[str, Any], company: Mapping[str, Any], tags: TagChanges | None = None
) -> None:
    traits = map_incoming(ctx.connector, Entity.COMPANY, company, tag_names=ctx.tags.name_for)
    if tags is not None and (tags.added or tags.removed):
        # The company came back before we tagged it: write the tags it has now.
        attribute = tags_attribute(ctx, Entity.COMPANY)
        before = traits.get(attribute)
        before = before.get("value") if isinstance(before, dict) else before
        traits[attribute] = tags.final_names(before or [])
    claims: dict[str, Any] = {"anonymous_id": company_anonymous_id(str(company["id"]))}
    if account.get("id"):
        claims["id"] = account["id"]
    for claim in claim_rows(ctx.connector, Entity.COMPANY):
        value = company.get(claim.intercom_attribute)
        if value not in (None, "") and claim.hull_attribute in ("external_id", "domain"):
            claims[claim.hull_attribute] = value
    ctx.firehose.account_traits(claims, traits)


def account_sync(
    ctx: OutgoingContext,
    *,
    account: Mapping[str, Any],
    account_segments: Iterable[Any] = (),
    changes: Mapping[str, Any] | None = None,
) -> CompanyOutcome:
    """Upsert one account as an Intercom company; writes the account's one SyncLog row."""
    account_segments = list(account_segments or ())
    changes = changes or {}
    hull_id = str(account.get("id") or "")
    common: dict[str, Any] = {"hull_id": hull_id, "external_id": str(account.get("external_id") or "")}
    payload, attrs = build_company_payload(ctx, account, account_segments)
    if not payload.get("company_id"):
        ctx.log(
            "account",
            SyncLog.Status.SKIPPED,
            reason=SkipReason.MISSING_IDENTITY,
            message="Account has no company_id claim value (external_id): Intercom companies are keyed by company_id",
            **common,
        )
        return CompanyOutcome(SyncLog.Status.SKIPPED)
    digest = payload_hash(payload)
    link = link_for(ctx.connector, Entity.COMPANY, hull_id)
    data: dict[str, Any] = {"data": payload, "type": "Company"}
    if attrs.truncated:
        data["truncated"] = attrs.truncated
    company: dict | None = None
    reason: str
    if link is not None and digest in (link.last_payload_hash, ctx.pending_payload(Entity.COMPANY, link.intercom_id)):
        intercom_id = link.intercom_id
        status, reason, message = SyncLog.Status.SKIPPED, SkipReason.IDENTICAL_PAYLOAD, skip_message(SkipReason.IDENTICAL_PAYLOAD, "account")
    else:
        try:
            company = call_with_attribute_retry(
                ctx, model="company", call=lambda: ctx.intercom.upsert_company(payload), custom_sources=attrs.custom_sources
            )
        except IntercomApiError as exc:
            reraise_halt(exc)  # a rate limit, a refused token, a lost answer: the whole batch waits
            ctx.log("account", SyncLog.Status.ERROR, reason=SyncLog.Reason.INTERCOM_ERROR, message=exc.message, data=data, **common)
            return CompanyOutcome(SyncLog.Status.ERROR)
        intercom_id = str(company["id"])
        link_save(
            ctx.connector,
            entity=Entity.COMPANY,
            hull_id=hull_id,
            intercom_id=intercom_id,
            external_id=str(payload.get("company_id") or ""),
            payload_digest="",  # recorded after the write-back is flushed (OutgoingContext.record_sent_payloads)
            current=link,
        )
        status, reason, message = SyncLog.Status.SUCCESS, "", ""
    tags = None
    if ctx.connector.tag_companies:
        tags = company_tags_sync(
            ctx, company_id=intercom_id, account=account, account_segments=account_segments, changes=changes
        )
        if tags.added or tags.removed or tags.errors:
            data["tags"] = {"added": tags.added, "removed": tags.removed, "errors": tags.errors}
    if company is not None:
        company_write_back(ctx, account=account, company=company, tags=tags)
        ctx.payload_written_back(Entity.COMPANY, intercom_id, digest)
    ctx.log("account", status, reason=reason, message=message, intercom_id=intercom_id, data=data, **common)
    return CompanyOutcome(status, intercom_id=intercom_id, company=company)
