"""`manage.py replay --connector <slug> --kind deliveries|notifications [--since T] [--until T] [--dry-run]`.

The twin of the admin's "Replay" actions: the failed Intercom webhook deliveries or Hull
notifications received in [since, until) go back to the queue (sync/services/replay.py) and are
processed again by the same task. Processing is idempotent, so nothing is duplicated.
Times are ISO-8601 dates or datetimes (`2026-11-01`, `2026-11-01T12:00:00Z`), UTC when no zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from datetime import timezone as dt_timezone
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from sync.models import Connector
from sync.services.ops import failed_deliveries, failed_notifications
from sync.services.replay import hull_notifications_replay, webhook_deliveries_replay

# kind -> (select the failed rows, replay them, the replay's keyword, what the rows are called)
KINDS: dict[str, tuple[Callable[..., QuerySet[Any]], Callable[..., int], str, str]] = {
    "deliveries": (failed_deliveries, webhook_deliveries_replay, "deliveries", "Intercom webhook deliveries"),
    "notifications": (failed_notifications, hull_notifications_replay, "notifications", "Hull notifications"),
}
BATCH = 200  # rows re-enqueued per transaction, with a progress line each


def parse_moment(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"{option} {value!r} is not an ISO-8601 date or datetime (e.g. 2026-11-01T12:00:00Z).")
        moment = datetime.combine(day, time.min)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_timezone.utc)
    return moment


class Command(BaseCommand):
    help = "Re-enqueue a connector's failed webhook deliveries or Hull notifications in a time range."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        parser.add_argument("--kind", required=True, choices=sorted(KINDS))
        parser.add_argument("--since", default=None, help="Received at or after (ISO-8601)")
        parser.add_argument("--until", default=None, help="Received before (ISO-8601)")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be replayed")

    def handle(self, *args: Any, connector: str, kind: str, since: str | None, until: str | None, dry_run: bool, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
        if start and end and start >= end:
            raise CommandError("--since must be before --until.")
        select, replay, _, label = KINDS[kind]
        ids = list(select(connector=found, since=start, until=end).values_list("pk", flat=True))
        if dry_run:
            self.stdout.write(f"{len(ids)} failed {label} would be replayed.")
            return
        model = select(connector=found).model
        done = 0
        for offset in range(0, len(ids), BATCH):
            done += replay(**{KINDS[kind][2]: model.objects.filter(pk__in=ids[offset : offset + BATCH])})
            self.stdout.write(f"  {done}/{len(ids)} re-enqueued")
        self.stdout.write(self.style.SUCCESS(f"Replayed {done} failed {label} of {found.slug}."))
