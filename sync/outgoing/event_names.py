"""Intercom's event-name limit made visible, and optionally enforced.

Intercom's help centre documents about 120 distinct event names per workspace; past it new names
are dropped although `POST /events` still answers 202, so nothing tells the sender. We remember
every distinct name this connector has had accepted (`SentEventName`): a lower bound of the
workspace's count, since other sources (Intercom's JS, other integrations) add names too.
The dashboard warns from `warn_at()` (100 with the default limit of 120). With
`Connector.stop_new_event_names_at_limit` on, an event whose name is new once the limit is reached
is not sent and gets a skip row saying why; names already sent keep flowing.

Threads of one notification may both pass the check for two new names at the last free slot: the
count can exceed the limit by the number of worker threads at most (the limit is approximate anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError

from sync.models import Connector, SentEventName, SyncLog
from sync.outgoing.context import OutgoingContext

WARN_MARGIN = 20  # warn this many names before the limit: 100 of Intercom's 120
LIMIT_REACHED = SyncLog.Reason.EVENT_NAME_LIMIT


@dataclass(frozen=True)
class EventNameSkip:
    reason: str
    message: str


def warn_at(connector: Connector) -> int:
    return max(0, connector.event_name_limit - WARN_MARGIN)


def sent_names_count(connector: Connector) -> int:
    return SentEventName.objects.filter(connector=connector).count()


def _known(ctx: OutgoingContext) -> set[str]:
    # Names confirmed during this run (saves a query per event); the table is the truth.
    return ctx.__dict__.setdefault("_sent_event_names", set())


def event_name_skip(ctx: OutgoingContext, name: str) -> EventNameSkip | None:
    """Why this event must not be sent (a new name past the limit), or None."""
    connector = ctx.connector
    if not connector.stop_new_event_names_at_limit or name in _known(ctx):
        return None
    if SentEventName.objects.filter(connector=connector, name=name).exists():
        _known(ctx).add(name)
        return None
    count = sent_names_count(connector)
    if count < connector.event_name_limit:
        return None
    return EventNameSkip(
        LIMIT_REACHED,
        f"Not sent: “{name}” would be a new event name, and this connector has already sent {count} distinct event names "
        f"to Intercom (limit set to {connector.event_name_limit}; Intercom ignores new names past its limit). "
        "Turn off “Stop sending new event names past the limit” or raise the limit to send it.",
    )


def event_name_sent(ctx: OutgoingContext, name: str) -> None:
    """Remember a name Intercom accepted (idempotent, safe under concurrent writers)."""
    known = _known(ctx)
    if name in known:
        return
    try:
        SentEventName.objects.get_or_create(connector=ctx.connector, name=name[:255])
    except IntegrityError:
        pass  # another worker recorded it first
    known.add(name)
