"""`manage.py check_connector --connector <slug>`.

Is this connector able to work? Hull credentials (`GET /api/v1/app`), Intercom access (`GET /me` through the Intercom
client), the webhook URL, the Intercom rate budget and the queue (sync/services/ops.py). Prints one
line per check and exits non-zero when any check fails, with the failures as the error message.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.ops import FAIL, WARN, connector_check

MARKS = {"ok": "OK  ", WARN: "WARN", FAIL: "FAIL"}


class Command(BaseCommand):
    help = "Check a connector: Hull credentials, Intercom access, webhook URL, rate budget, queue."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")

    def handle(self, *args: Any, connector: str, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        result = connector_check(connector=found)
        for item in result.items:
            style = {FAIL: self.style.ERROR, WARN: self.style.WARNING}.get(item.level, self.style.SUCCESS)
            text = item.message.removeprefix(f"{item.label}: ")
            self.stdout.write(style(f"[{MARKS[item.level]}] {item.label}: {text}"))
        if not result.ok:
            raise CommandError(f"{found.slug} is not ready: " + " ".join(item.message for item in result.failures))
        self.stdout.write(self.style.SUCCESS(f"{found.slug} is ready."))
