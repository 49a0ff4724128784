"""Issue 13 item 6: a lone surrogate is a 400, an oversized Intercom webhook a JSON 413, distinct
delivery ids never collide, and /metrics outside debug needs its token."""

from __future__ import annotations

import json

import pytest

from sync.models import HullNotification, WebhookDelivery
from tests.plugins.hull_sandbox import make_user_update
from webhooks.intercom_auth import intercom_signature

CLIENT_SECRET = "sandbox-client-secret"


def _notify(client, connector, body: bytes):
    return client.post(f"/hull/{connector.slug}/smart-notifier", data=body, content_type="application/json")


@pytest.mark.parametrize("where", ["notification_id", "channel", "email", "key"])
def test_a_lone_surrogate_is_a_400_not_a_500(client, connector, where):
    body = make_user_update(connector, [{"email": "a@example.com"}])
    text = json.dumps(body)
    if where == "notification_id":
        text = text.replace(json.dumps(body["notification_id"]), '"n-\\ud800"')
    elif where == "channel":
        text = text.replace('"user:update"', '"user:update\\udfff"')
    elif where == "email":
        text = text.replace('"a@example.com"', '"a\\ud800@example.com"')
    else:
        text = text.replace('"email"', '"em\\udc00ail"', 1)
    client.raise_request_exception = False
    response = _notify(client, connector, text.encode())
    assert response.status_code == 400, response.status_code
    assert HullNotification.objects.count() == 0


def test_a_surrogate_pair_is_a_character_and_is_accepted(client, connector, monkeypatch):
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: None)
    body = json.dumps(make_user_update(connector, [{"email": "a@example.com", "name": "x"}])).replace('"x"', '"\\ud83d\\ude00"')
    assert _notify(client, connector, body.encode()).status_code == 200


def test_an_intercom_webhook_with_a_lone_surrogate_is_a_400(client, connector):
    body = b'{"type":"notification_event","id":"n\\ud800","topic":"ping","app_id":"ws_acme","data":{"item":{}}}'
    client.raise_request_exception = False
    response = client.post("/intercom/acme/webhooks", data=body, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE=intercom_signature(CLIENT_SECRET, body))
    assert response.status_code == 400
    assert WebhookDelivery.objects.count() == 0


def test_an_oversized_intercom_webhook_is_a_json_413(client, connector, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"type": "notification_event", "id": "big", "topic": "ping", "data": {"item": {"x": "y" * 5000}}}).encode()
    response = client.post("/intercom/acme/webhooks", data=body, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE=intercom_signature(CLIENT_SECRET, body))
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "too large" in response.json()["detail"]


@pytest.mark.parametrize("first,second", [
    (777, "777"),
    ("a" * 128 + "1", "a" * 128 + "2"),
    (True, "true"),
    (True, 1),
    ("~int:777", 777),
])
def test_distinct_hull_notification_ids_never_collide(client, connector, monkeypatch, first, second):
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: None)
    from sync.outgoing.receive import hull_notification_receive

    for notification_id in (first, second):
        body = make_user_update(connector, [{"email": "a@example.com"}])
        body["notification_id"] = notification_id
        receipt = hull_notification_receive(connector=connector, payload=body)
        assert receipt.created, notification_id
    assert HullNotification.objects.count() == 2
    assert all(len(n.notification_id) <= 128 for n in HullNotification.objects.all())


def test_the_same_id_is_still_one_notification(client, connector, monkeypatch):
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: None)
    from sync.outgoing.receive import hull_notification_receive

    long_id = "x" * 300
    for _ in range(2):
        body = make_user_update(connector, [{"email": "a@example.com"}])
        body["notification_id"] = long_id
        hull_notification_receive(connector=connector, payload=body)
    assert HullNotification.objects.count() == 1


def test_distinct_intercom_delivery_ids_never_collide():
    from sync.incoming.payloads import notification_from_payload

    base = {"type": "notification_event", "topic": "ping", "app_id": "ws", "data": {"item": {}}}
    keys = {notification_from_payload({**base, "id": value}).notification_id for value in (777, "777", "n" * 200 + "a", "n" * 200 + "b")}
    assert len(keys) == 4


def test_metrics_outside_debug_need_the_token(client, db, settings, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    settings.DEBUG = False
    settings.METRICS_PUBLIC = False
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").status_code == 200
