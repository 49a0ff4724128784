"""Putting data into the stand-in directly (as if another source had written it), for tests and the demo."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.hull import platform
from sandbox.hull.api import apply_record
from sandbox.hull.models import SandboxAccount, SandboxSegment, SandboxUser


def add_segment(
    organization: str,
    name: str,
    *,
    kind: str = SandboxSegment.Kind.USERS,
    rule: Mapping[str, Any] | None = None,
    member_ids: list[str] | None = None,
    hull_id: str | None = None,
) -> SandboxSegment:
    """A segment; membership by `rule` ({"attribute": "traits_plan", "equals": "pro"}) or static ids."""
    segment = SandboxSegment.objects.create(
        organization=organization, name=name, kind=kind, rule=dict(rule or {}),
        member_ids=list(member_ids or []), hull_id=hull_id or platform.new_hull_id(),
    )
    # Existing entities enter it now (and are notified of it), as when a segment is created in Hull.
    model = SandboxUser if kind == SandboxSegment.Kind.USERS else SandboxAccount
    for entity in model.objects.filter(organization=organization):
        platform.recompute_segments(entity)
        entity.save()
    return segment


def upsert_user(
    organization: str,
    claims: Mapping[str, Any],
    traits: Mapping[str, Any] | None = None,
    *,
    events: Sequence[Mapping[str, Any]] | None = None,
    account: Mapping[str, Any] | None = None,
) -> SandboxUser:
    """Write a user like a firehose `traits` (+ `track`, + link) would, without a JWT."""
    base = {"iss": "sandbox", "io.hull.asUser": dict(claims)}
    apply_record(organization, "traits", {**base, "io.hull.subjectType": "user"}, dict(traits or {}))
    for event in events or []:
        body = {"event_id": secrets.token_hex(8), "properties": {}, **event}
        apply_record(organization, "track", {**base, "io.hull.subjectType": "user"}, body)
    if account:
        apply_record(organization, "traits", {**base, "io.hull.asAccount": dict(account), "io.hull.subjectType": "account"}, {})
    user = platform.resolve_user(organization, claims, create=False)
    assert user is not None
    return user


def upsert_account(organization: str, claims: Mapping[str, Any], traits: Mapping[str, Any] | None = None) -> SandboxAccount:
    apply_record(organization, "traits", {"iss": "sandbox", "io.hull.asAccount": dict(claims), "io.hull.subjectType": "account"}, dict(traits or {}))
    account = platform.resolve_account(organization, claims, create=False)
    assert account is not None
    return account
