"""`manage.py requeue_stale_work`: enqueue again the deliveries and notifications a dead worker left open."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from sync.services.replay import stale_work_requeue


class Command(BaseCommand):
    help = "Enqueue again webhook deliveries and Hull notifications still pending/processing long after they arrived."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--older-than-seconds", type=int, default=None, help="Default: settings.STALE_WORK_AFTER_SECONDS (600)."
        )

    def handle(self, *args: Any, older_than_seconds: int | None, **options: Any) -> None:
        older_than = timedelta(seconds=older_than_seconds) if older_than_seconds is not None else None
        deliveries, notifications = stale_work_requeue(older_than=older_than)
        self.stdout.write(f"Requeued {deliveries} webhook deliveries and {notifications} notifications.")
