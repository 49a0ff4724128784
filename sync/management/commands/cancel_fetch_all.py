"""`manage.py cancel_fetch_all --connector <slug>`: the twin of the admin's "Cancel running fetch-all".

Both call `sync.services.ops.fetch_all_cancel`: every running fetch-all stops after its page in progress.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.ops import fetch_all_cancel


class Command(BaseCommand):
    help = "Stop every running fetch-all of a connector after the page in progress."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")

    def handle(self, *args: Any, connector: str, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}")
        for cursor in fetch_all_cancel(connector=found):
            self.stdout.write(f"fetch all {cursor.stream}: {cursor.get_status_display()}{' (stops after its page)' if cursor.cancel_requested and cursor.status == 'running' else ''}")
