"""`manage.py rebuild_support_context --connector <slug> [--intercom-id ID ...] [--since UNIX]`.

Rebuilds the support-context traits (sync/incoming/support_context.py) from Intercom's conversation
search, which carries each conversation's statistics and rating: webhook deliveries are pruned
after 14 days, Intercom keeps the conversations.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.incoming.support_context import support_context_rebuild
from sync.models import Connector


class Command(BaseCommand):
    help = "Rebuild the per-person support-context Hull traits from Intercom's conversations."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        parser.add_argument("--intercom-id", dest="intercom_ids", action="append", help="Only this contact (repeatable)")
        parser.add_argument("--since", type=int, default=0, help="Only conversations updated after this unix time")

    def handle(self, *args: Any, connector: str, intercom_ids: list[str] | None, since: int, **options: Any) -> None:
        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        if not found.support_context_traits:
            raise CommandError("“Write support context to Hull” is off for this connector: turn it on first.")
        counts = support_context_rebuild(connector=found, contact_ids=intercom_ids, since=since)
        self.stdout.write(self.style.SUCCESS(f"{counts['conversations']} conversation(s) read, traits sent for {counts['people']} person(s)."))
