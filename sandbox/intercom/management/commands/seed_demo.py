"""Creates the demo: a staff login, a connector wired to the local sandboxes, and some Intercom data."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from sandbox.intercom.api import handle_request
from sandbox.intercom.models import Contact
from sandbox.wiring import connector_on_http_sandboxes
from sync.models import Connector, FieldMapping

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"  # noqa: S105 - the local demo's documented login
DEMO_TOKEN = "demo-intercom-token"  # noqa: S105 - the sandbox's demo workspace token

DEMO_CONTACTS = [
    {"role": "user", "email": "ada@example.com", "external_id": "u-1", "name": "Ada Lovelace"},
    {"role": "user", "email": "grace@example.com", "external_id": "u-2", "name": "Grace Hopper"},
    {"role": "user", "email": "alan@example.com", "external_id": "u-3", "name": "Alan Turing"},
    {"role": "lead", "email": "visitor1@example.com", "name": "First Visitor"},
    {"role": "lead", "email": "visitor2@example.com", "name": "Second Visitor"},
]

# (name, kind, membership rule) of the Hull sandbox's demo segments.
DEMO_SEGMENTS = [
    ("Paying customers", "users_segment", {"attribute": "traits_plan", "equals": "pro"}),
    ("Trial users", "users_segment", {"attribute": "traits_plan", "equals": "trial"}),
    ("Enterprise accounts", "accounts_segment", {"attribute": "plan", "equals": "enterprise"}),
]


class Command(BaseCommand):
    help = "Create the demo staff login (admin/admin), a demo connector talking to the sandboxes, and demo contacts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        base_url = base_url.rstrip("/")
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USERNAME).exists():
            User.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
        connector = Connector.objects.filter(slug="demo").first()
        if connector is None:
            connector = connector_on_http_sandboxes(
                base_url=base_url,
                token=DEMO_TOKEN,
                workspace="demo",
                name="Demo (sandbox)",
                slug="demo",
                hull_organization="demo.hullapp.io",
                hull_id="5c092905c36af496c700012e",
                hull_secret="demo-hull-secret",
                intercom_workspace_name="Demo workspace (sandbox)",
                intercom_client_secret="demo-client-secret",
                synchronized_user_segments=["ALL"],
            )
            FieldMapping.objects.create(
                connector=connector, entity="user", direction="outgoing", hull_attribute="name", intercom_attribute="name"
            )
        self._seed_intercom_contacts()
        self._seed_hull_segments(connector.hull_organization)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {base_url}/admin/  login {DEMO_USERNAME} / {DEMO_PASSWORD}"))
        self.stdout.write(f"Connector '{connector.name}': {base_url}/admin/sync/connector/{connector.pk}/change/")

    def _seed_hull_segments(self, organization: str) -> None:
        """A few segments in the Hull sandbox, so the segment filters and "push segment" have choices."""
        from sandbox.hull.models import SandboxSegment
        from sandbox.hull.seed import add_segment

        for name, kind, rule in DEMO_SEGMENTS:
            if not SandboxSegment.objects.filter(organization=organization, name=name, kind=kind).exists():
                add_segment(organization, name, kind=kind, rule=rule)

    def _seed_intercom_contacts(self) -> None:
        """Create the demo contacts through the sandbox API (so they look exactly like API-made ones)."""
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}", "Accept": "application/json"}
        for contact in DEMO_CONTACTS:
            if Contact.objects.filter(workspace__id_code="demo", email=contact["email"]).exists():
                continue
            handle_request("POST", "/contacts", {}, headers, contact)
