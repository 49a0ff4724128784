"""Shared fixtures. Tests run against the real database and django-q2 in sync mode."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.plugins.intercom_sandbox", "tests.plugins.hull_sandbox", "tests.shared_state"]

from sync.models import Connector
from sync.services.connectors import connector_create

HULL_SECRET = "hull-connector-secret-1234"
INTERCOM_TOKEN = "dG9rOmludGVyY29tLXNhbmRib3gtdG9rZW4="


@pytest.fixture
def connector(db) -> Connector:
    """A configured connector: Hull credentials, an Intercom token, default claims and mappings."""
    return connector_create(
        name="Acme",
        slug="acme",
        hull_organization="acme.hullapp.io",
        hull_id="5c092905c36af496c700012e",
        hull_secret=HULL_SECRET,
        intercom_access_token=INTERCOM_TOKEN,
        intercom_workspace_id="ws_acme",
        intercom_client_secret="sandbox-client-secret",
    )


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", "staff-password")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
