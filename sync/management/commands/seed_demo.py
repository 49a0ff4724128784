"""Creates the demo: a staff login and a connector wired to the local sandboxes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from sync.models import Connector
from sync.services.connectors import connector_create

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"  # noqa: S105 - the local demo's documented login


class Command(BaseCommand):
    help = "Create the demo staff login (admin/admin) and a demo connector talking to the sandboxes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        base_url = base_url.rstrip("/")
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USERNAME).exists():
            User.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
        connector = Connector.objects.filter(slug="demo").first()
        if connector is None:
            connector = connector_create(
                name="Demo (sandbox)",
                slug="demo",
                hull_organization="demo.hullapp.io",
                hull_id="5c092905c36af496c700012e",
                hull_secret="demo-hull-secret",
                hull_firehose_url=f"{base_url}/sandbox/hull/firehose",
                intercom_api_base=f"{base_url}/sandbox/intercom",
                intercom_access_token="demo-intercom-token",
                intercom_workspace_id="demo",
                intercom_workspace_name="Demo workspace (sandbox)",
                intercom_client_secret="demo-client-secret",
                synchronized_user_segments=["ALL"],
            )
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {base_url}/admin/  login {DEMO_USERNAME} / {DEMO_PASSWORD}"))
        self.stdout.write(f"Connector '{connector.name}': {base_url}/admin/sync/connector/{connector.pk}/change/")
