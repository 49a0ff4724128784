"""Shared fixtures. Tests run against the real database and django-q2 in sync mode."""

from __future__ import annotations

import pytest

from sync.models import Connector
from sync.services.connectors import connector_create

pytest_plugins = ["tests.plugins.intercom_sandbox", "tests.plugins.hull_sandbox", "tests.shared_state"]

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


@pytest.fixture(autouse=True)
def every_skip_and_error_row_says_why():
    """The rule 'a skip with a human reason, an error with the remote message', checked on every
    SyncLog row any test makes the connector write."""
    from django.db.models.signals import post_save

    from sync.models import SyncLog

    unexplained: list[tuple[str, str]] = []

    def check(sender, instance, **kwargs):
        if instance.status != SyncLog.Status.SUCCESS and not (instance.message or "").strip():
            unexplained.append((instance.action, instance.reason))

    post_save.connect(check, sender=SyncLog, weak=False, dispatch_uid="every_skip_and_error_row_says_why")
    yield
    post_save.disconnect(sender=SyncLog, dispatch_uid="every_skip_and_error_row_says_why")
    assert not unexplained, f"SyncLog rows without a human message: {unexplained}"
