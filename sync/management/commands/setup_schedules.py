"""`manage.py setup_schedules`: create, update or remove every connector's incremental-fetch Schedules,
and the deployment-wide retention and status-report schedules.

Idempotent (schedules are keyed by name, `intercom-fetch:<pk>:<stream>`): safe on every deploy.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from sync.incoming.fetch import connector_schedules_update
from sync.models import Connector
from sync.services.schedules import global_schedules_update


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of every connector's incremental fetches."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"deployment: {', '.join(global_schedules_update())}")
        for connector in Connector.objects.order_by("pk"):
            names = connector_schedules_update(connector=connector)
            self.stdout.write(f"{connector.slug}: {', '.join(names) or 'no schedules'}")
