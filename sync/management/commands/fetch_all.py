"""`manage.py fetch_all --connector <slug> --entity users|leads|companies [--async] [--restart]`.

The twin of the admin's "Fetch all" action: both call `connector_fetch_all`. By default the pages
run here, one after the other, with progress on stdout; `--async` only enqueues the first page
for the django-q2 workers. Either way the run is resumable: an interrupted run continues from
its last checkpoint the next time it is started (unless `--restart`).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.incoming.fetch import StepResult, connector_fetch_all, fetch_run_to_end
from sync.models import Connector, SyncCursor


class Command(BaseCommand):
    help = "Fetch every Intercom user, lead or company of a connector into Hull."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        parser.add_argument("--entity", required=True, choices=[s.value for s in SyncCursor.Stream])
        parser.add_argument("--async", dest="run_async", action="store_true", help="Enqueue for the workers and return")
        parser.add_argument("--restart", action="store_true", help="Start over instead of resuming an unfinished run")

    def handle(self, *args: Any, connector: str, entity: str, run_async: bool, restart: bool, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}")
        cursor = connector_fetch_all(connector=found, stream=entity, restart=restart, enqueue=run_async)
        if run_async:
            self.stdout.write(f"Fetch all {entity} enqueued (cursor {cursor.pk}).")
            return

        def progress(cursor: SyncCursor, result: StepResult) -> None:
            total = f"/{cursor.total_estimate}" if cursor.total_estimate else ""
            self.stdout.write(
                f"page {cursor.pages}: {cursor.entities}{total} {entity} sent"
                f" (+{result.entities}, {result.skipped} skipped) [{result.status}]"
            )

        cursor = fetch_run_to_end(connector=found, kind=SyncCursor.Kind.FETCH_ALL, stream=entity, on_page=progress)
        self.stdout.write(f"Fetch all {entity}: {cursor.get_status_display()}, {cursor.entities} sent in {cursor.pages} pages.")
        if cursor.last_error:
            self.stderr.write(cursor.last_error)
