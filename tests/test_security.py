"""Security: authentication cannot be bypassed, secrets never leave the database in clear, the admin
is protected (permissions, CSRF), and Hull cannot make us fetch arbitrary URLs (no SSRF)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client, override_settings

from sync.intercom.errors import IntercomNotFound, IntercomUnauthorized
from sync.logging import JsonFormatter
from sync.models import Connector, HullNotification, WebhookDelivery
from tests.conftest import HULL_SECRET, INTERCOM_TOKEN
from webhooks.intercom_auth import intercom_signature

CLIENT_SECRET = "sandbox-client-secret"
SECRETS = (HULL_SECRET, INTERCOM_TOKEN, CLIENT_SECRET)


def webhook_body(n: int = 1, topic: str = "contact.user.created") -> bytes:
    return json.dumps(
        {
            "type": "notification_event",
            "id": f"notif_sec_{n}",
            "topic": topic,
            "app_id": "ws_acme",
            "created_at": 1700000000,
            "delivery_attempts": 1,
            "data": {"type": "notification_event_data", "item": {"type": "contact", "id": f"c{n}", "role": "user", "email": f"u{n}@example.com"}},
        }
    ).encode()


def post_webhook(client: Client, body: bytes, signature: str | None, slug: str = "acme", **extra):
    headers: dict[str, Any] = {} if signature is None else {"HTTP_X_HUB_SIGNATURE": signature}
    return client.post(f"/intercom/{slug}/webhooks", data=body, content_type="application/json", **headers, **extra)


# -- Intercom webhook signature: every way around it is closed --------------------------------


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "wrong-secret", "other-body", "sha256-prefix", "no-prefix", "truncated", "garbage"],
)
def test_intercom_webhook_signature_cannot_be_bypassed(client, connector, case):
    body = webhook_body()
    good = intercom_signature(CLIENT_SECRET, body)
    signature = {
        "missing": None,
        "empty": "",
        "wrong-secret": intercom_signature("not-the-secret", body),
        "other-body": intercom_signature(CLIENT_SECRET, body + b" "),
        "sha256-prefix": "sha256=" + good.split("=", 1)[1],
        "no-prefix": good.split("=", 1)[1],
        "truncated": good[:-2],
        "garbage": "sha1=" + "z" * 40,
    }[case]
    response = post_webhook(client, body, signature)
    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_intercom_webhook_signed_for_another_connector_is_refused(client, connector):
    from sync.services.connectors import connector_create

    connector_create(name="Other", slug="other", intercom_client_secret="other-secret")
    body = webhook_body()
    assert post_webhook(client, body, intercom_signature("other-secret", body), slug="acme").status_code == 401
    assert post_webhook(client, body, intercom_signature(CLIENT_SECRET, body), slug="other").status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_intercom_webhook_without_any_client_secret_is_refused(client, connector):
    Connector.objects.filter(pk=connector.pk).update(intercom_client_secret="")
    body = webhook_body()
    with override_settings(INTERCOM_CLIENT_SECRET=""):
        # Not even the signature of an empty key gets through.
        assert post_webhook(client, body, intercom_signature("", body)).status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_intercom_webhook_for_an_unknown_connector_is_404(client, connector):
    body = webhook_body()
    assert post_webhook(client, body, intercom_signature(CLIENT_SECRET, body), slug="nope").status_code == 404


def test_a_correctly_signed_webhook_is_accepted_without_csrf_token(connector):
    # The public endpoints authenticate by signature, not by session: CSRF does not apply to them.
    csrf_client = Client(enforce_csrf_checks=True)
    body = webhook_body()
    response = post_webhook(csrf_client, body, intercom_signature(CLIENT_SECRET, body))
    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 1


# -- Hull authentication ----------------------------------------------------------------------


def _hull_routes() -> list[str]:
    from webhooks.urls import urlpatterns

    return [str(p.pattern) for p in urlpatterns if str(p.pattern).startswith("hull/") and "ship.js" not in str(p.pattern)]


hull_endpoints_landed = pytest.mark.skipif(not _hull_routes(), reason="the Hull endpoints have not landed yet")


def _hull_paths(slug: str) -> list[str]:
    return [route.replace("<slug:slug>", slug) for route in _hull_routes()]


HULL_BODY = {
    "notification_id": "sec-1",
    "channel": "user:update",
    "connector": {"id": "5c092905c36af496c700012e", "private_settings": {}},
    "messages": [{"user": {"id": "u1", "email": "a@example.com"}, "changes": {}, "segments": [], "events": []}],
}


@hull_endpoints_landed
@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"HTTP_X_HULL_CONNECTOR_SECRET": "wrong"},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"QUERY_STRING": "secret=wrong"},
        {"QUERY_STRING": "token=wrong"},
        {"HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE": "eyJhbGciOiJub25lIn0.e30."},  # alg=none JWT
        {"HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE": "forged"},
    ],
)
def test_hull_endpoints_refuse_unauthenticated_requests(client, connector, auth):
    before = HullNotification.objects.count()
    for path in _hull_paths("acme"):
        response = client.post(f"/{path}", data=json.dumps(HULL_BODY), content_type="application/json", **auth)
        assert response.status_code in (401, 403), (path, response.status_code)
    assert HullNotification.objects.count() == before


@hull_endpoints_landed
def test_hull_endpoints_for_an_unknown_connector_do_not_store(client, connector):
    for path in _hull_paths("nope"):
        response = client.post(f"/{path}", data=json.dumps(HULL_BODY), content_type="application/json")
        assert response.status_code in (401, 403, 404), path
    assert HullNotification.objects.count() == 0


@hull_endpoints_landed
def test_hull_public_key_url_outside_the_allow_list_is_refused(client, connector, responses_mock):
    """Hull's signed notifications name a public-key URL; only hosts in HULL_PUBLIC_KEY_HOSTS are fetched."""
    import jwt

    token = jwt.encode({"iss": "evil"}, "x", algorithm="HS256", headers={"kid": "k"})
    evil = [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:5432/",
        "https://hullapp.io.evil.example/keys",
        "https://evil.example/?hullapp.io",
        "https://user@evil.example/hullapp.io",
        "file:///etc/passwd",
    ]
    for url in evil:
        for path in _hull_paths("acme"):
            response = client.post(
                f"/{path}",
                data=json.dumps(HULL_BODY),
                content_type="application/json",
                HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE=token,
                HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_PUBLIC_KEY_URL=url,
                HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_VERSION="v1",
            )
            assert response.status_code in (401, 403), (url, path, response.status_code)
    # Nothing went out: the responses mock refuses any unregistered URL, and none was called.
    assert not [c.request.url for c in responses_mock.calls if "hull" not in c.request.url or "evil" in c.request.url]
    assert HullNotification.objects.count() == 0


def test_public_key_host_allow_list_is_configured():
    from django.conf import settings

    assert settings.HULL_PUBLIC_KEY_HOSTS and all("/" not in host for host in settings.HULL_PUBLIC_KEY_HOSTS)


# -- secrets at rest ---------------------------------------------------------------------------


def test_secrets_are_encrypted_in_the_database(connector):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT hull_secret, intercom_access_token, intercom_client_secret FROM sync_connector WHERE id = %s",
            [connector.pk],
        )
        stored = cursor.fetchone()
    for column, plain in zip(stored, (HULL_SECRET, INTERCOM_TOKEN, CLIENT_SECRET), strict=True):
        assert column.startswith("fernet:")
        assert plain not in column
    fresh = Connector.objects.get(pk=connector.pk)
    assert (fresh.hull_secret, fresh.intercom_access_token, fresh.intercom_client_secret) == (HULL_SECRET, INTERCOM_TOKEN, CLIENT_SECRET)


def test_repr_of_the_intercom_client_hides_the_token(connector):
    from sync.intercom.client import IntercomClient

    assert INTERCOM_TOKEN not in repr(IntercomClient.for_connector(connector))


# -- secrets absent from logs --------------------------------------------------------------------


@pytest.fixture
def captured_json_logs() -> Iterator[io.StringIO]:
    """Every log record of the test, formatted by the production JSON formatter, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    noisy = logging.getLogger("django.db.backends")
    noisy_level = noisy.level
    noisy.setLevel(logging.INFO)  # SQL params would show ciphertext only, but they are noise here
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        noisy.setLevel(noisy_level)


def _assert_no_secret_in(lines: list[str]) -> None:
    assert lines, "nothing was logged: the scan would prove nothing"
    for line in lines:
        json.loads(line)  # every line is one JSON object
        for secret in SECRETS:
            assert secret not in line, f"secret leaked in log line: {line[:300]}"


def test_secrets_never_reach_the_logs(
    client, connector, intercom_sandbox, hull_sandbox, captured_json_logs, django_capture_on_commit_callbacks
):
    # Intercom client calls, including failures (404, and 401 with a bad token).
    intercom = intercom_sandbox.client()
    intercom.me()
    with pytest.raises(IntercomNotFound):
        intercom.get_contact("does-not-exist")
    from sync.intercom.client import IntercomClient

    with pytest.raises(IntercomUnauthorized):
        IntercomClient("bad-" + INTERCOM_TOKEN, workspace_key="ws_acme", max_retries=0).me()
    # Webhooks: rejected ones (bad signature, none) and a stored-and-processed one.
    body = webhook_body(7)
    post_webhook(client, body, intercom_signature("wrong", body))
    post_webhook(client, body, None)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, body, intercom_signature(CLIENT_SECRET, body)).status_code == 200
    # A Hull notification through the real endpoint, processed: Intercom calls + firehose write-back.
    hull_sandbox.add_user({"email": "leak@acme.com", "external_id": "u-leak"}, {"plan": "pro"})
    with django_capture_on_commit_callbacks(execute=True):
        result = hull_sandbox.notify_users(connector)
    assert result.delivered_messages >= 1
    # Hull credentials that fail: wrong secret in the body, wrong query secret.
    for path in _hull_paths("acme"):
        client.post(f"/{path}?ship={connector.hull_id}&secret=wrong", data=json.dumps(HULL_BODY), content_type="application/json")
    lines = [line for line in captured_json_logs.getvalue().splitlines() if line.strip()]
    assert any('"intercom.request"' in line for line in lines)
    assert HullNotification.objects.exists() and hull_sandbox.firehose_records
    _assert_no_secret_in(lines)


def test_stored_payloads_hold_no_secrets(connector, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks):
    """Hull puts the connector secret in each notification's `configuration`: it must not land in a JSON column."""
    hull_sandbox.add_user({"email": "rest@acme.com"}, {"plan": "pro"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    assert HullNotification.objects.exists()
    with connection.cursor() as cursor:
        for table in ("sync_hullnotification", "sync_webhookdelivery", "sync_synclog", "sync_connector", "django_q_task", "django_q_ormq"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            dump = repr(cursor.fetchall())
            for secret in SECRETS:
                assert secret not in dump, (table, secret)


def test_the_json_formatter_redacts_secrets_passed_by_mistake(captured_json_logs):
    log = logging.getLogger("tests.security")
    log.info("calling", extra={"headers": {"Authorization": f"Bearer {INTERCOM_TOKEN}"}, "hull_secret": HULL_SECRET})
    log.info("token in text: Bearer %s", INTERCOM_TOKEN)
    lines = captured_json_logs.getvalue().splitlines()
    _assert_no_secret_in(lines)


# -- admin: forms, error pages, permissions, CSRF ------------------------------------------------


def test_admin_connector_page_does_not_show_secrets(staff_client, connector):
    for url in (f"/admin/sync/connector/{connector.pk}/change/", "/admin/sync/connector/"):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in SECRETS:
            assert secret not in html, (url, secret)
        assert "fernet:" not in html


@override_settings(DEBUG=False)
def test_error_pages_do_not_show_secrets(connector, monkeypatch):
    from webhooks import intercom_views

    def explode(*, connector, payload, raw_body=None):
        raise RuntimeError(f"boom while handling {connector.hull_secret} {connector.intercom_access_token}")

    monkeypatch.setattr(intercom_views, "webhook_delivery_receive", explode)
    client = Client(raise_request_exception=False)
    body = webhook_body()
    response = post_webhook(client, body, intercom_signature(CLIENT_SECRET, body))
    assert response.status_code == 500
    html = response.content.decode()
    for secret in SECRETS:
        assert secret not in html
    assert "Traceback" not in html


def test_admin_requires_login(client, connector):
    response = client.get(f"/admin/sync/connector/{connector.pk}/change/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_refuses_staff_without_permission(client, connector, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(f"/admin/sync/connector/{connector.pk}/change/").status_code == 403
    assert client.get("/admin/sync/connector/").status_code == 403
    assert client.post(f"/admin/sync/connector/{connector.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Connector.objects.filter(pk=connector.pk).exists()


def test_admin_view_permission_is_read_only(client, connector, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_connector"))
    client.force_login(user)
    page = client.get(f"/admin/sync/connector/{connector.pk}/change/")
    assert page.status_code == 200
    for secret in SECRETS:
        assert secret not in page.content.decode()
    response = client.post(f"/admin/sync/connector/{connector.pk}/change/", {"name": "Hacked", "slug": "acme"})
    assert response.status_code == 403
    assert Connector.objects.get(pk=connector.pk).name == "Acme"


def test_non_staff_users_cannot_enter_the_admin(client, connector, django_user_model):
    user = django_user_model.objects.create_user("customer", password="x", is_staff=False)
    client.force_login(user)
    response = client.get("/admin/sync/connector/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_posts_need_a_csrf_token(connector, staff_user):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff_user)
    response = csrf_client.post(f"/admin/sync/connector/{connector.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Connector.objects.filter(pk=connector.pk).exists()
    response = csrf_client.post("/admin/logout/")
    assert response.status_code == 403


def test_csrf_middleware_is_on():
    from django.conf import settings

    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
