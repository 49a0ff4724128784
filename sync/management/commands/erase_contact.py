"""`manage.py erase_contact --connector <slug> (--email X | --external-id X | --hull-id X)`.

The twin of the admin's "Erase a person from Intercom" page (sync/services/erasure.py): deletes
the person's Intercom contacts, forgets our links and log rows about them, keeps an audit row.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.erasure import INTERCOM_KEEPS, ErasureError, erase_person


class Command(BaseCommand):
    help = "Delete one person's Intercom contacts (by email, external id or Hull id) and keep an audit row."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--external-id", dest="external_id")
        who.add_argument("--hull-id", dest="hull_id")

    def handle(self, *args: Any, connector: str, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        if not found.is_intercom_connected:
            raise CommandError("The connector is not connected to Intercom.")
        kind = next(k for k in ("email", "external_id", "hull_id") if options.get(k))
        try:
            actor = f"command ({getpass.getuser()})"
        except (KeyError, OSError):
            actor = "command"
        try:
            result = erase_person(connector=found, kind=kind, value=options[kind], actor=actor)
        except ErasureError as error:
            raise CommandError(f"Erasure stopped: {error}") from error
        assert result.audit is not None  # erase_person always records the audit row
        self.stdout.write(result.summary)
        self.stdout.write(f"Audit row #{result.audit.pk} ({result.outcome}).")
        self.stdout.write(INTERCOM_KEEPS)
        if result.errors:
            raise CommandError("Some contacts could not be deleted; run the command again.")
