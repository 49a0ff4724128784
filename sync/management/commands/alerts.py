"""`manage.py alerts --connector <slug> [--check] [--acknowledge [--alert ID]]`.

The twin of the dashboard's alert panel (sync/services/alerts.py): lists the open alerts, runs the
periodic check now (`--check`: error state, failure threshold, due digest), or acknowledges them.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.alerts import acknowledge_alerts, alerts_check, open_alerts


class Command(BaseCommand):
    help = "List, check or acknowledge a connector's alerts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        parser.add_argument("--check", action="store_true", help="Run the alert check now (and send a due digest)")
        parser.add_argument("--acknowledge", action="store_true", help="Acknowledge the open alerts")
        parser.add_argument("--alert", type=int, help="With --acknowledge: only this alert id")

    def handle(self, *args: Any, connector: str, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        if options["check"]:
            raised = alerts_check(found)
            self.stdout.write(f"Check done: {len(raised)} alert(s) raised or repeated.")
        if options["acknowledge"]:
            try:
                actor = f"command ({getpass.getuser()})"
            except (KeyError, OSError):
                actor = "command"
            count = acknowledge_alerts(connector=found, actor=actor, alert_id=options.get("alert"))
            self.stdout.write(self.style.SUCCESS(f"{count} alert(s) acknowledged."))
        alerts = open_alerts(found)
        if not alerts:
            self.stdout.write("No open alerts.")
        for alert in alerts:
            self.stdout.write(f"#{alert.pk} {alert.get_kind_display()} (x{alert.occurrences}, since {alert.created_at:%Y-%m-%d %H:%M}): {alert.text}")
