"""`manage.py import_legacy_settings --connector <slug> --file settings.json [--dry-run]`.

Migration action items 1-3: copy a legacy Intercom connector's mappings, segment filter and
event whitelists into this connector (sync/services/legacy_settings.py), and print what was
mapped and what could not be, with the reason for each row.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.legacy_settings import LegacySettingsError, connector_legacy_settings_import, legacy_settings_load


class Command(BaseCommand):
    help = "Import a legacy Intercom connector's settings (JSON) into a connector: mappings, filters, whitelists."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Slug of the connector to fill")
        parser.add_argument("--file", required=True, help="The legacy connector's settings as JSON (private_settings)")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be imported; change nothing")

    def handle(self, *args: Any, connector: str, file: str, dry_run: bool, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        try:
            settings = legacy_settings_load(file)
        except LegacySettingsError as error:
            raise CommandError(f"Cannot read the legacy settings: {error}") from error
        report = connector_legacy_settings_import(connector=found, settings=settings, dry_run=dry_run)
        for line in report.lines():
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing was changed."))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported into {found.slug}: {len(report.mapped)} mapped, {len(report.unchanged)} already there, "
                    f"{len(report.not_mapped)} not mapped."
                )
            )
