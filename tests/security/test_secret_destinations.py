"""Issue 13 item 3, issue 18 item 3: no editable field decides where a secret is sent.

The recording transport shows where each secret would actually go: the Intercom token, the
deployment-wide INTERCOM_CLIENT_SECRET (OAuth token exchange), the Hull secret.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from settings_ui.forms import ConnectorForm
from settings_ui.oauth import SESSION_CONNECTOR_KEY
from sync.hull.client import HullApiError, HullClient
from sync.intercom.client import IntercomClient
from sync.models import Connector

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "sandbox-client-secret"  # settings_test's INTERCOM_CLIENT_SECRET
EVIL = "https://collector.evil.example"


def test_the_admin_form_has_no_host_fields_only_a_region():
    fields = ConnectorForm().fields
    assert "intercom_region" in fields
    assert {"intercom_api_base", "hull_firehose_url"}.isdisjoint(fields)
    assert [value for value, _ in fields["intercom_region"].choices if value] == ["us", "eu", "au"]


def test_the_connector_page_offers_no_api_base_to_type(staff_client, connector):
    page = staff_client.get(reverse("admin:sync_connector_change", args=[connector.pk])).content.decode()
    assert 'name="intercom_region"' in page
    assert 'name="intercom_api_base"' not in page and 'name="hull_firehose_url"' not in page


@pytest.mark.parametrize("region,host", [("us", "api.intercom.io"), ("eu", "api.eu.intercom.io"), ("au", "api.au.intercom.io")])
def test_the_intercom_token_goes_to_the_regions_host_only(connector, transport, region, host):
    connector.intercom_region = region
    connector.intercom_api_base = EVIL  # what an editor could type before: now ignored
    connector.save()
    transport.answer = lambda c: (200, {"Content-Type": "application/json"}, b'{"type":"admin","app":{"id_code":"ws_acme"}}')
    IntercomClient.for_connector(connector, max_retries=0).me()
    assert transport.hosts == [host]
    assert transport.contacts[0].scheme == "https" and transport.contacts[0].port == 443


def test_a_deployment_override_is_the_only_other_intercom_host(connector, transport, settings):
    settings.INTERCOM_API_BASE_OVERRIDE = "https://intercom-proxy.internal.example"
    transport.answer = lambda c: (200, {"Content-Type": "application/json"}, b'{"type":"admin","app":{}}')
    IntercomClient.for_connector(connector, max_retries=0).me()
    assert transport.hosts == ["intercom-proxy.internal.example"]


def test_a_sandbox_base_on_the_connector_counts_only_while_the_sandbox_is_on(connector, settings):
    connector.intercom_api_base = "http://127.0.0.1:9/sandbox/intercom"
    assert IntercomClient.for_connector(connector).base_url == "http://127.0.0.1:9/sandbox/intercom"
    settings.SANDBOX_ENABLED = False
    assert IntercomClient.for_connector(connector).base_url == "https://api.intercom.io"


# -- OAuth: the client secret only ever goes to Intercom's token host ---------------------------


def _start(client, connector) -> str:
    client.get(reverse("admin:sync_connector_intercom_connect", args=[connector.pk]))
    assert client.session[SESSION_CONNECTOR_KEY] == connector.pk
    return client.get(reverse("social:begin", args=["intercom"]))["Location"]


@pytest.mark.parametrize("region,app_host,api_host", [
    ("us", "app.intercom.com", "api.intercom.io"),
    ("eu", "app.eu.intercom.com", "api.eu.intercom.io"),
    ("au", "app.au.intercom.com", "api.au.intercom.io"),
])
def test_oauth_uses_the_regions_own_hosts_whatever_the_api_base_says(staff_client, connector, transport, settings, region, app_host, api_host):
    settings.INTERCOM_OAUTH_BASE = ""
    connector.intercom_region = region
    connector.intercom_api_base = EVIL
    connector.intercom_access_token = ""
    connector.save()
    authorize = urlparse(_start(staff_client, connector))
    assert (authorize.scheme, authorize.netloc, authorize.path) == ("https", app_host, "/oauth")
    state = parse_qs(authorize.query)["state"][0]

    def answer(contact):
        if contact.url.startswith("/auth/eagle/token"):
            return 200, {"Content-Type": "application/json"}, b'{"token":"tok-1","access_token":"tok-1","token_type":"Bearer"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"type": "admin", "email": "a@x.io", "app": {"id_code": "ws_r", "name": "R", "region": region.upper()}}
        ).encode()

    transport.answer = answer
    seen_bodies: list[tuple[str, str]] = []
    from urllib3.connectionpool import HTTPConnectionPool

    recording = HTTPConnectionPool.urlopen

    def with_body(pool, method, url, body=None, headers=None, **kwargs):
        seen_bodies.append((pool.host, body.decode() if isinstance(body, bytes) else str(body or "")))
        return recording(pool, method, url, body=body, headers=headers, **kwargs)

    HTTPConnectionPool.urlopen = with_body
    try:
        response = staff_client.get(f"/oauth/complete/intercom/?code=abc&state={state}")
    finally:
        HTTPConnectionPool.urlopen = recording
    assert response.status_code == 302
    assert set(transport.hosts) == {api_host}
    assert {host for host, body in seen_bodies if CLIENT_SECRET in body} == {api_host}
    connector.refresh_from_db()
    assert connector.intercom_access_token == "tok-1"


def test_oauth_callback_without_an_access_token_answers_with_a_message_not_a_500(staff_client, connector, transport):
    connector.intercom_access_token = ""
    connector.save()
    state = parse_qs(urlparse(_start(staff_client, connector)).query)["state"][0]
    transport.answer = lambda c: (200, {"Content-Type": "application/json"}, b'{"token_type":"Bearer"}')
    response = staff_client.get(f"/oauth/complete/intercom/?code=abc&state={state}", follow=True)
    assert response.status_code == 200
    assert any("Intercom did not connect" in str(m) for m in response.context["messages"])
    connector.refresh_from_db()
    assert connector.intercom_access_token == ""


def test_me_corrects_the_region_to_the_one_intercom_names(staff_client, connector, transport, settings):
    settings.INTERCOM_OAUTH_BASE = ""
    connector.intercom_access_token = ""
    connector.save()
    state = parse_qs(urlparse(_start(staff_client, connector)).query)["state"][0]

    def answer(contact):
        if contact.url.startswith("/auth/eagle/token"):
            return 200, {"Content-Type": "application/json"}, b'{"access_token":"tok-2"}'
        return 200, {"Content-Type": "application/json"}, b'{"type":"admin","app":{"id_code":"ws_e","name":"E","region":"Europe"}}'

    transport.answer = answer
    staff_client.get(f"/oauth/complete/intercom/?code=abc&state={state}")
    connector.refresh_from_db()
    assert (connector.intercom_region, connector.intercom_access_token) == ("eu", "tok-2")


# -- Hull: URLs derive from the organization, a bare host under Hull's domains ------------------


@pytest.mark.parametrize("organization", [
    "https://evil.example", "evil.example", "acme.hullapp.io:8443", "user@acme.hullapp.io", "acme.hullapp.io/path",
    "acme.hullapp.io.evil.example", "ACME.hullapp.io", "127.0.0.1", "acme.hullapp.io.", "acme.hullapp.io\\@evil.example",
    "http://acme.hullapp.io", "hullapp.io", "acme.hullapp.io?x=1", "[::1]",
])
def test_the_hull_organization_must_be_a_bare_hull_host(organization):
    from sync.models import validate_hull_organization

    with pytest.raises(ValidationError):
        validate_hull_organization(organization)


def test_a_hull_organization_host_is_accepted():
    from sync.models import validate_hull_organization

    validate_hull_organization("acme.hullapp.io")
    validate_hull_organization("acme-eu.hullbeta.io")


@pytest.mark.parametrize("organization", ["https://collector.evil.example", "collector.evil.example", "acme.hullapp.io@evil.example"])
def test_the_hull_secret_is_never_sent_to_an_organization_outside_hull(connector, transport, organization):
    Connector.objects.filter(pk=connector.pk).update(hull_organization=organization)  # legacy row, no validation
    connector.refresh_from_db()
    with pytest.raises(HullApiError):
        HullClient.for_connector(connector).get_app()
    assert transport.contacts == []


def test_hull_calls_go_to_the_organization_and_hulls_firehose_whatever_the_old_firehose_field_says(connector, transport):
    connector.hull_firehose_url = EVIL + "/firehose"
    transport.answer = lambda c: (200, {"Content-Type": "application/json"}, b"{}")
    client = HullClient.for_connector(connector)
    client.get_app()
    client.post_firehose([])
    assert transport.hosts == ["acme.hullapp.io", "firehose.hullapp.io"]


def test_the_dashboard_shows_the_region_and_its_host(staff_client, connector):
    connector.intercom_region = "au"
    connector.save()
    page = staff_client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk])).content.decode()
    assert "Australia" in page and "https://api.au.intercom.io" in page
