"""`manage.py sync_data_attributes --connector <slug>`: the twin of the admin's "Sync data attributes".

Both call `sync.services.ops.data_attributes_create`: the custom attributes the outgoing mappings
write and that Intercom does not have yet are created, with the data type of the Hull value.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.ops import data_attributes_create


class Command(BaseCommand):
    help = "Create in Intercom the custom attributes a connector's outgoing mappings write."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")

    def handle(self, *args: Any, connector: str, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}")
        if not found.is_intercom_connected:
            raise CommandError("Connect Intercom first (Getting started).")
        created = data_attributes_create(connector=found)
        if not created:
            self.stdout.write("Every mapped Intercom attribute already exists.")
        for model, name in created:
            self.stdout.write(f"created {model} attribute {name}")
