"""Send a demo `user:update` from the Hull stand-in to a connector's smart-notifier.

    manage.py sandbox_hull_notify --connector acme --email jane@example.com --trait plan=pro --event "Signed Up"
    manage.py sandbox_hull_notify --connector acme --export            # a /batch export of every sandbox user
    manage.py sandbox_hull_notify --connector acme --url http://localhost:8000   # over HTTP to a running server
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sandbox.hull.notifier import export_to_connector, http_transport, notify_users
from sandbox.hull.seed import upsert_user
from sync.models import Connector


class Command(BaseCommand):
    help = "Send a demo user:update (or a batch export) from the Hull sandbox to a connector."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug.")
        parser.add_argument("--email", default="demo.user@example.com")
        parser.add_argument("--name", default="Demo User")
        parser.add_argument("--trait", action="append", default=[], help="name=value (repeatable).")
        parser.add_argument("--event", action="append", default=[], help="An event name to include (repeatable).")
        parser.add_argument("--domain", default="", help="Link the user to the account with this domain.")
        parser.add_argument("--export", action="store_true", help="Send a /batch export instead of a notification.")
        parser.add_argument("--url", default="", help="Base URL of a running connector (default: in-process).")

    def handle(self, *args: Any, **options: Any) -> None:
        connector = Connector.objects.filter(slug=options["connector"]).first()
        if connector is None:
            raise CommandError(f"No connector with slug {options['connector']!r}.")
        if not connector.is_hull_configured:
            raise CommandError("The connector has no Hull organization, id and secret.")
        transport = http_transport(options["url"]) if options["url"] else None
        if options["export"]:
            base = options["url"].rstrip("/") + "/sandbox/hull" if options["url"] else None
            status, answer, _export = export_to_connector(connector, file_base_url=base, transport=transport)
            self.stdout.write(json.dumps({"status": status, "answer": answer}))
            return
        traits: dict[str, Any] = {"name": options["name"]}
        for pair in options["trait"]:
            name, _, value = pair.partition("=")
            traits[name] = value
        events = [{"event": name, "source": "sandbox"} for name in options["event"]]
        account = {"domain": options["domain"]} if options["domain"] else None
        user = upsert_user(connector.hull_organization, {"email": options["email"]}, traits, events=events, account=account)
        result = notify_users(connector, [user], transport=transport)
        for delivery in result.deliveries:
            self.stdout.write(json.dumps({"notification_id": delivery.notification_id, "status": delivery.status, "answer": delivery.answer}))
