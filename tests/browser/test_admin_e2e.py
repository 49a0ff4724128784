"""The admin end to end in headless Chromium: log in, create a connector, connect the sandbox
workspace through OAuth, add an outgoing mapping, fetch all users, find their log rows.

Everything runs against the live test server: the Intercom sandbox at /sandbox/intercom (with the
OAuth pages of sandbox/oauth.py) and the Hull sandbox at /sandbox/hull. django-q2 runs tasks
inline in the test settings, so "Fetch all users" has finished when the dashboard comes back;
the test still polls the dashboard as staff would. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.browser.chromium import ARTIFACTS, chromium_page, requires_chromium

PASSWORD = "e2e-staff-password"
CONTACT_EMAILS = [f"person{n}@e2e.example" for n in range(1, 6)]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    requires_chromium,
]

playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture
def page(live_server) -> Iterator:
    with chromium_page(1400, 1000) as page:
        yield page


def shot(page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=full_page)


def test_staff_connect_intercom_map_a_field_and_fetch_all_users(page, live_server, django_user_model):
    from sandbox.intercom.models import Workspace
    from sync.models import Connector, FieldMapping, SyncLog

    base = live_server.url
    django_user_model.objects.create_superuser("e2e", "e2e@example.com", PASSWORD)

    # Log in.
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "e2e")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # Create a connector: the add page asks for the basics, then the full settings page opens.
    page.goto(f"{base}/admin/sync/connector/add/")
    page.fill("#id_name", "E2E")  # the admin's prepopulate script derives the slug "e2e"
    page.fill("#id_hull_organization", "e2e.hullapp.io")
    page.fill("#id_hull_id", "5c092905c36af496c7000e2e")
    page.fill("#id_hull_secret", "e2e-hull-secret")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/sync/connector/*/change/")
    connector = Connector.objects.get(slug="e2e")
    # Pointing a connector at the sandboxes is the deployment's set-up (sandbox/wiring.py), never a
    # field of the admin: no editor chooses where secrets go (docs/security.md).
    Connector.objects.filter(pk=connector.pk).update(
        hull_firehose_url=f"{base}/sandbox/hull/firehose", intercom_api_base=f"{base}/sandbox/intercom"
    )
    assert page.locator(".intercom-disconnected").is_visible()
    assert connector.hull_secret == "e2e-hull-secret"
    assert "e2e-hull-secret" not in page.content()

    # Connect Intercom through the sandbox's OAuth pages.
    page.click("#connect-intercom")
    page.wait_for_url(re.compile(r".*/sandbox/intercom-oauth/oauth\?.*"))
    shot(page, "oauth-authorize")
    page.click("#authorize")
    page.wait_for_url(f"**/admin/sync/connector/{connector.pk}/change/")
    assert page.locator(".intercom-connected").is_visible()
    assert "Connected to the Intercom workspace" in page.content()
    shot(page, "connector-getting-started", full_page=False)
    connector.refresh_from_db()
    workspace = Workspace.objects.get(id_code=connector.intercom_workspace_id)
    assert connector.intercom_access_token == workspace.token

    # Send everyone, and map a Hull attribute to a new custom Intercom attribute.
    page.click("#tab-button-outgoing")  # the segment filters and outgoing tables are on the Outgoing tab
    page.select_option("#id_synchronized_user_segments", ["ALL"])
    outgoing = page.locator(".inline-group", has_text="User outgoing fields")
    outgoing.locator(".add-row a").click()
    outgoing.locator("input[name$='-hull_attribute']:visible").last.fill("plan")
    outgoing.locator("input[name$='-intercom_attribute']:visible").last.fill("hull_plan")
    shot(page, "connector-settings")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert FieldMapping.objects.filter(connector=connector, direction="outgoing", intercom_attribute="hull_plan").exists()

    # Contacts in the sandbox workspace, created over its HTTP API as Intercom would hold them: long
    # enough ago that its search shows them (seeding opts out of the default search lag).
    Workspace.objects.filter(pk=workspace.pk).update(search_lag_seconds=0)
    headers = {"Authorization": f"Bearer {workspace.token}", "Accept": "application/json", "Content-Type": "application/json"}
    for email in CONTACT_EMAILS:
        created = requests.post(f"{base}/sandbox/intercom/contacts", json={"role": "user", "email": email, "external_id": email.split("@")[0]}, headers=headers, timeout=10)
        assert created.status_code == 200, created.text

    # Fetch all users from the dashboard, confirm, and watch it finish.
    page.goto(f"{base}/admin/sync/connector/{connector.pk}/dashboard/")
    page.click("#fetching a.button:has-text('Fetch all users')")
    page.wait_for_selector("input[type=submit][value='Fetch all users']")
    shot(page, "fetch-all-confirmation")
    page.click("input[type=submit][value='Fetch all users']")
    page.wait_for_url(f"**/admin/sync/connector/{connector.pk}/dashboard/")
    for _ in range(60):
        status = page.locator(".stream-users .fetch-all-status").get_attribute("data-status")
        if status in ("done", "failed", "cancelled"):
            break
        page.wait_for_timeout(1000)
        page.reload()
    shot(page, "dashboard")
    assert status == "done", page.locator("#fetching").inner_text()

    # Every contact has its log row, found by email in the sync log.
    for email in CONTACT_EMAILS:
        assert SyncLog.objects.filter(connector=connector, email=email, direction="incoming").exists(), email
    page.goto(f"{base}/admin/sync/synclog/?q={CONTACT_EMAILS[0]}")
    assert CONTACT_EMAILS[0] in page.locator("#result_list").inner_text()
    page.goto(f"{base}/admin/sync/synclog/?connector__id__exact={connector.pk}")
    shot(page, "sync-log")
    listing = page.locator("#result_list").inner_text()
    assert all(email in listing for email in CONTACT_EMAILS)
