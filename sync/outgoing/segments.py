"""Keeping `HullSegment` rows current from the segment objects Hull sends (for the admin pickers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sync.models import Connector, HullSegment


def _rows(connector: Connector, kind: str, segments: Iterable[Any], *, deleted: bool) -> dict[str, HullSegment]:
    rows: dict[str, HullSegment] = {}
    for segment in segments:
        if not isinstance(segment, Mapping) or not segment.get("id"):
            continue
        hull_id = str(segment["id"])[:64]
        name = str(segment.get("name") or hull_id)[:255]
        rows[hull_id] = HullSegment(connector=connector, kind=kind, hull_id=hull_id, name=name, deleted=deleted)
    return rows


def hull_segments_refresh(
    *,
    connector: Connector,
    user_segments: Iterable[Any] = (),
    account_segments: Iterable[Any] = (),
    deleted: bool = False,
) -> int:
    """Upsert the segments seen (one query per kind); returns how many rows were written."""
    written = 0
    for kind, segments in ((HullSegment.Kind.USER, user_segments), (HullSegment.Kind.ACCOUNT, account_segments)):
        rows = _rows(connector, kind, segments, deleted=deleted)
        if not rows:
            continue
        HullSegment.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["connector", "kind", "hull_id"],
            update_fields=["name", "deleted", "updated_at"],
        )
        written += len(rows)
    return written


def segments_by_id(connector: Connector, kind: str) -> dict[str, dict[str, Any]]:
    """Known segments as Hull's segment objects, to resolve the bare `segment_ids` of export lines."""
    return {
        row.hull_id: {"id": row.hull_id, "name": row.name, "type": f"{'users' if kind == HullSegment.Kind.USER else 'accounts'}_segment"}
        for row in HullSegment.objects.filter(connector=connector, kind=kind, deleted=False)
    }
