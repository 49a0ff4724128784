"""IdentityLink bookkeeping and the helpers every outgoing push shares.

The link is what we know joins a Hull entity to an Intercom object, written right after a push
succeeds: it is the first place the next push looks (before Intercom's search index, which lags
a few minutes after a create), and it remembers the hash of the last payload sent so an
identical one is not sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from sync.intercom.errors import IntercomUnknownAttribute
from sync.models import Connector, IdentityLink
from sync.outgoing.attributes import data_attribute_create
from sync.outgoing.context import OutgoingContext


def payload_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def link_for(connector: Connector, entity: str, hull_id: str) -> IdentityLink | None:
    if not hull_id:
        return None
    return IdentityLink.objects.filter(connector=connector, entity=entity, hull_id=hull_id).first()


def link_save(
    connector: Connector,
    *,
    entity: str,
    hull_id: str,
    intercom_id: str,
    email: str = "",
    external_id: str = "",
    payload_digest: str = "",
    current: IdentityLink | None = None,
) -> IdentityLink | None:
    """Point the Hull entity at the Intercom object (both sides unique).

    The push's payload hash is normally left empty here (`payload_digest=""`) and recorded by
    `OutgoingContext.record_sent_payloads` once the write-back reached Hull.
    """
    if current is not None and current.pk and current.intercom_id == intercom_id and current.hull_id == (hull_id or ""):
        # The steady state: same link, new payload. One UPDATE instead of a transaction.
        IdentityLink.objects.filter(pk=current.pk).update(
            last_payload_hash=payload_digest,
            last_pushed_at=timezone.now(),
            email=(email or "")[:255],
            external_id=(external_id or "")[:255],
        )
        return current
    fields = {
        "hull_id": hull_id or "",
        "email": (email or "")[:255],
        "external_id": (external_id or "")[:255],
        "last_payload_hash": payload_digest,
        "last_pushed_at": timezone.now(),
    }
    for _attempt in range(3):
        try:
            with transaction.atomic():
                if hull_id:
                    # The Hull entity moved to another Intercom object (merged, re-created): forget the old one.
                    IdentityLink.objects.filter(connector=connector, entity=entity, hull_id=hull_id).exclude(
                        intercom_id=intercom_id
                    ).delete()
                link, _ = IdentityLink.objects.update_or_create(
                    connector=connector, entity=entity, intercom_id=intercom_id, defaults=fields
                )
                return link
        except IntegrityError:
            continue  # a concurrent writer of the same link: read its row and retry
    return None


def link_forget(connector: Connector, entity: str, *, hull_id: str = "", intercom_id: str = "") -> None:
    rows = IdentityLink.objects.filter(connector=connector, entity=entity)
    if intercom_id:
        rows.filter(intercom_id=intercom_id).delete()
    elif hull_id:
        rows.filter(hull_id=hull_id).delete()


def call_with_attribute_retry(
    ctx: OutgoingContext, *, model: str, call: Callable[[], dict], custom_sources: Mapping[str, Any]
) -> dict:
    """Run a write; when Intercom rejects an unknown custom attribute, create it and retry (once per attribute)."""
    created: set[str] = set()
    while True:
        try:
            return call()
        except IntercomUnknownAttribute as exc:
            name = exc.attribute
            if not name or name in created:
                raise
            hull_attribute, value = custom_sources.get(name, ("", None))
            data_attribute_create(intercom=ctx.intercom, model=model, name=name, hull_attribute=hull_attribute, value=value)
            created.add(name)
