"""`manage.py fetch_recent --connector <slug> --entity users|leads|companies`: one incremental run now.

The same run the django-q2 Schedule starts every few minutes, in this process, to the last page.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.incoming.fetch import fetch_run_to_end
from sync.models import Connector, SyncCursor


class Command(BaseCommand):
    help = "Run the incremental fetch of one stream now."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        parser.add_argument("--entity", required=True, choices=[s.value for s in SyncCursor.Stream])

    def handle(self, *args: Any, connector: str, entity: str, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}")
        cursor = fetch_run_to_end(connector=found, kind=SyncCursor.Kind.INCREMENTAL, stream=entity)
        mark = cursor.high_water_mark.isoformat() if cursor.high_water_mark else "none"
        self.stdout.write(
            f"Incremental {entity}: {cursor.get_status_display()}, {cursor.entities} sent, high-water mark {mark}."
        )
        if cursor.last_error:
            self.stderr.write(cursor.last_error)
