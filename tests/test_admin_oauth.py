"""Connecting a connector to Intercom with OAuth: not a login, the token lands encrypted on the connector."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from sandbox import oauth as sandbox_oauth
from sandbox.intercom.models import Workspace
from settings_ui.oauth import SESSION_CONNECTOR_KEY
from sync.models import Connector

pytestmark = pytest.mark.django_db

SANDBOX_OAUTH = "http://testserver/sandbox/intercom-oauth"


@pytest.fixture
def unconnected(connector) -> Connector:
    connector.intercom_access_token = ""
    connector.intercom_workspace_id = ""
    connector.save()
    return connector


@pytest.fixture
def workspace() -> Workspace:
    return Workspace.objects.create(token="oauth-issued-token", id_code="ws_oauth_test", name="OAuth test workspace")


@pytest.fixture
def intercom_http(settings):
    """https://api.intercom.io answered by the sandbox's token endpoint and a /me for its workspace."""
    settings.INTERCOM_OAUTH_BASE = SANDBOX_OAUTH

    def token(request):
        django_request = RequestFactory().post("/sandbox/intercom/auth/eagle/token", data=request.body, content_type=request.headers["Content-Type"])
        response = sandbox_oauth.token_exchange(django_request)
        return response.status_code, {}, response.content

    def me(request):
        ws = Workspace.objects.filter(token=request.headers["Authorization"].removeprefix("Bearer ")).first()
        if ws is None:
            return 401, {}, json.dumps({"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]})
        return 200, {}, json.dumps({"type": "admin", "id": "1", "email": "a@x.io", "app": {"type": "app", "id_code": ws.id_code, "name": ws.name}})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, "https://api.intercom.io/auth/eagle/token", callback=token)
        mocked.add_callback(responses.GET, "https://api.intercom.io/me", callback=me)
        yield mocked


def start(client, connector) -> str:
    """Click "Connect Intercom": returns the authorize URL the browser is sent to."""
    response = client.get(reverse("admin:sync_connector_intercom_connect", args=[connector.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("social:begin", args=["intercom"])
    assert client.session[SESSION_CONNECTOR_KEY] == connector.pk
    response = client.get(response["Location"])
    assert response.status_code == 302
    return response["Location"]


def authorize(client, authorize_url: str, workspace: Workspace, *, cancel: bool = False):
    page = client.get(authorize_url)
    assert page.status_code == 200 and b"Authorize" in page.content
    query = {k: v[0] for k, v in parse_qs(urlparse(authorize_url).query).items()}
    data = {"redirect_uri": query["redirect_uri"], "state": query["state"], "client_id": query["client_id"], "workspace": workspace.id_code}
    data["cancel" if cancel else "authorize"] = "1"
    response = client.post(urlparse(authorize_url).path, data)
    assert response.status_code == 302
    return client.get(response["Location"])  # back to social-auth's complete view


def test_connect_sends_staff_to_intercoms_authorize_page_with_client_id_and_state(staff_client, unconnected, settings):
    settings.INTERCOM_OAUTH_BASE = "https://app.intercom.com"
    url = urlparse(start(staff_client, unconnected))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://app.intercom.com/oauth"
    assert query["client_id"] == ["sandbox-client-id"]
    assert query["state"][0]
    assert query["redirect_uri"] == ["http://testserver/oauth/complete/intercom/"]


def test_a_connector_pointed_at_the_sandbox_is_authorized_by_the_sandbox(staff_client, unconnected):
    unconnected.intercom_api_base = "http://testserver/sandbox/intercom"
    unconnected.save()
    assert start(staff_client, unconnected).startswith("http://testserver/sandbox/intercom-oauth/oauth?")


def test_authorizing_stores_the_token_encrypted_on_the_connector_without_logging_in(staff_client, staff_user, unconnected, workspace, intercom_http):
    response = authorize(staff_client, start(staff_client, unconnected), workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sync_connector_change", args=[unconnected.pk])
    unconnected.refresh_from_db()
    assert unconnected.intercom_access_token == "oauth-issued-token"
    assert (unconnected.intercom_workspace_id, unconnected.intercom_workspace_name) == ("ws_oauth_test", "OAuth test workspace")
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT intercom_access_token FROM sync_connector WHERE id = %s", [unconnected.pk])
        assert "oauth-issued-token" not in cursor.fetchone()[0]
    assert int(staff_client.session["_auth_user_id"]) == staff_user.pk  # still the same staff user
    from social_django.models import UserSocialAuth

    assert not UserSocialAuth.objects.exists()
    assert any("Connected to the Intercom workspace “OAuth test workspace”" in str(m) for m in response.wsgi_request._messages)


def test_cancelling_on_intercom_goes_back_with_a_message_and_stores_nothing(staff_client, unconnected, workspace, intercom_http):
    response = authorize(staff_client, start(staff_client, unconnected), workspace, cancel=True)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sync_connector_change", args=[unconnected.pk])
    unconnected.refresh_from_db()
    assert unconnected.intercom_access_token == ""
    assert any("Intercom did not connect" in str(m) for m in response.wsgi_request._messages)


def test_a_completion_without_a_connector_in_the_session_stores_nothing(staff_client, unconnected, workspace, intercom_http):
    authorize_url = start(staff_client, unconnected)
    session = staff_client.session
    del session[SESSION_CONNECTOR_KEY]
    session.save()
    response = authorize(staff_client, authorize_url, workspace)
    assert response.status_code == 302
    unconnected.refresh_from_db()
    assert unconnected.intercom_access_token == ""


def test_disconnect_asks_then_forgets_the_token(staff_client, connector, monkeypatch):
    from tests.admin_helpers import Recorder, fake_module

    schedules = Recorder()
    fake_module(monkeypatch, "sync.incoming.fetch", connector_schedules_update=schedules)
    url = reverse("admin:sync_connector_intercom_disconnect", args=[connector.pk])
    page = staff_client.get(url)
    assert page.status_code == 200 and "will be deleted" in page.content.decode()
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.intercom_access_token == "" and connector.intercom_workspace_id == "ws_acme"
    assert schedules.calls == [{"connector": connector}]


def test_staff_without_change_permission_cannot_connect_or_disconnect(client, django_user_model, connector):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_connector"))
    client.force_login(viewer)
    assert client.get(reverse("admin:sync_connector_intercom_connect", args=[connector.pk])).status_code == 403
    assert client.post(reverse("admin:sync_connector_intercom_disconnect", args=[connector.pk])).status_code == 403


def test_the_sandbox_token_endpoint_refuses_a_bad_code_or_client(workspace, client):
    url = reverse("sandbox-intercom-oauth-token")
    bad_code = client.post(url, {"code": "forged", "client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret"})
    assert bad_code.status_code == 401 and bad_code.json()["errors"][0]["message"] == "Unauthorized Code"
    bad_client = client.post(url, {"code": "x", "client_id": "sandbox-client-id", "client_secret": "wrong"})
    assert bad_client.status_code == 401


def test_the_sandbox_authorize_page_only_redirects_back_to_this_site(client):
    response = client.get(reverse("sandbox-intercom-oauth-authorize"), {"client_id": "sandbox-client-id", "redirect_uri": "https://evil.example/cb", "state": "s"})
    assert response.status_code == 400
