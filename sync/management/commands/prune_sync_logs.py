"""`manage.py prune_sync_logs [--older-than <days>] [--connector <slug>]`.

Deletes sync-log rows, Intercom webhook deliveries and Hull notifications past their retention
(each model's RETENTION_PERIOD, or `--older-than` days for all three), in batches, printing the
progress. The same service (sync/services/ops.py) can run from a django-q2 Schedule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.ops import PRUNE_BATCH_SIZE, sync_logs_prune


class Command(BaseCommand):
    help = "Delete sync logs, webhook deliveries and Hull notifications older than their retention period."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--older-than", type=int, default=None, metavar="DAYS", help="Age in days (default: each log's retention period)"
        )
        parser.add_argument("--connector", default=None, help="Only this connector's rows (slug)")
        parser.add_argument("--batch-size", type=int, default=PRUNE_BATCH_SIZE, help="Rows per delete")

    def handle(self, *args: Any, older_than: int | None, connector: str | None, batch_size: int, **options: Any) -> None:
        if older_than is not None and older_than < 0:
            raise CommandError("--older-than must be a number of days, 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        found = None
        if connector:
            found = Connector.objects.filter(slug=connector).first()
            if found is None:
                raise CommandError(f"No connector with slug {connector!r}.")

        def progress(name: str, total: int) -> None:
            self.stdout.write(f"  {name}: {total} deleted so far")

        deleted = sync_logs_prune(
            older_than=timedelta(days=older_than) if older_than is not None else None,
            connector=found,
            batch_size=batch_size,
            on_batch=progress,
        )
        summary = ", ".join(f"{count} {name}" for name, count in deleted.items())
        self.stdout.write(self.style.SUCCESS(f"Pruned {summary}."))
