"""`make run` seeds the demo on every start: a login, a connector wired to the HTTP sandboxes, contacts."""

from __future__ import annotations

import io

from django.core.management import call_command

from sandbox.intercom.models import Contact, Workspace
from sync.models import Connector


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", base_url="http://testserver/", stdout=out)
    return out.getvalue()


def test_the_demo_connector_talks_to_the_sandboxes_and_the_documented_login_works(db, client):
    printed = seed()

    assert "login admin / admin" in printed
    connector = Connector.objects.get(slug="demo")
    assert connector.hull_firehose_url == "http://testserver/sandbox/hull/firehose"
    assert connector.intercom_api_base == "http://testserver/sandbox/intercom"
    assert connector.synchronized_user_segments == ["ALL"]
    assert connector.intercom_workspace_id == Workspace.objects.get(token=connector.intercom_access_token).id_code
    me = client.get("/sandbox/intercom/me", HTTP_AUTHORIZATION=f"Bearer {connector.intercom_access_token}")
    assert me.status_code == 200 and me.json()["app"]["id_code"] == "demo"
    assert me.headers["X-RateLimit-Limit"] == "1666"  # Intercom's default, so the dashboard shows a budget
    assert Contact.objects.filter(workspace__id_code="demo").count() == 5

    assert client.login(username="admin", password="admin")
    assert client.get(f"/admin/sync/connector/{connector.pk}/change/").status_code == 200


def test_seeding_again_on_the_next_start_changes_nothing(db):
    seed()
    seed()
    assert Connector.objects.filter(slug="demo").count() == 1
    assert Workspace.objects.filter(id_code="demo").count() == 1
    assert Contact.objects.filter(workspace__id_code="demo").count() == 5
