"""`/hull/<slug>/smart-notifier`: authenticate, store once, enqueue, answer flow control."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sync.hull import client as hull_client
from sync.outgoing import flow_control
from sync.models import DeliveryStatus, HullNotification, HullSegment
from tests.plugins.hull_sandbox import make_user_update

FIXTURES = Path(__file__).parent / "fixtures" / "hull"
URL = "/hull/acme/smart-notifier"


@pytest.fixture
def enqueued(monkeypatch):
    """The task calls, without running the outgoing sync (tested elsewhere)."""
    calls: list[tuple] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args))
    return calls


def post(client, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_user_update(client, connector, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, fixture_bytes("user_update.json"))
    assert response.status_code == 200
    assert response.json()["flow_control"] == {"type": "next", "size": 100, "in": 1}
    notification = HullNotification.objects.get()
    assert notification.channel == "user:update"
    assert notification.message_count == 2
    assert notification.status == DeliveryStatus.PENDING
    assert enqueued == [("sync.tasks.process_notification", notification.pk)]


def test_stored_payload_has_no_secrets(client, connector, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, fixture_bytes("user_update.json"))
    payload = HullNotification.objects.get().payload
    assert "secret" not in payload["configuration"]
    assert "secret" not in payload["connector"]
    assert "hull-connector-secret-1234" not in json.dumps(payload)


def test_account_update(client, connector, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, fixture_bytes("account_update.json"))
    assert response.status_code == 200
    assert HullNotification.objects.get().channel == "account:update"
    assert len(enqueued) == 1


def test_segments_in_payload_refresh_hull_segments(client, connector, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, fixture_bytes("user_update.json"))
    rows = {(s.kind, s.hull_id): s.name for s in HullSegment.objects.filter(connector=connector)}
    assert rows == {
        ("user", "5bd720690026ca86b000004f"): "Star Wars Users",
        ("user", "5bd720690026ca86b0000050"): "Rebels",
        ("account", "5bd7201aa682bc4a4d00001e"): "Bad guys",
    }


def test_users_segment_update(client, connector, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, fixture_bytes("users_segment_update.json"))
    assert response.status_code == 200
    assert HullSegment.objects.get(connector=connector, hull_id="5bd720690026ca86b0000051").name == "Jedi Council"


def test_users_segment_delete_marks_segment_deleted(client, connector, enqueued, django_capture_on_commit_callbacks):
    HullSegment.objects.create(connector=connector, kind="user", hull_id="5bd720690026ca86b0000051", name="Jedi Council")
    payload = json.loads(fixture_bytes("users_segment_update.json"))
    payload.update(channel="users_segment:delete", notification_id="delete-1")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, payload)
    assert HullSegment.objects.get(connector=connector, hull_id="5bd720690026ca86b0000051").deleted is True


def test_replay_of_same_notification_is_stored_once(client, connector, enqueued, django_capture_on_commit_callbacks):
    body = fixture_bytes("user_update.json")
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, body)
    with django_capture_on_commit_callbacks(execute=True):
        second = post(client, body)
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert HullNotification.objects.count() == 1
    assert len(enqueued) == 1


def test_unknown_channel_is_stored_as_ignored(client, connector, enqueued, django_capture_on_commit_callbacks):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    payload["channel"] = "user:teleported"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, payload)
    assert response.status_code == 200
    assert response.json()["flow_control"]["type"] == "next"
    assert HullNotification.objects.get().status == DeliveryStatus.IGNORED
    assert enqueued == []


# --- bad input -----------------------------------------------------------------------------------


def test_wrong_secret_is_401_and_nothing_stored(client, connector, enqueued):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    payload["configuration"]["secret"] = "nope"
    response = post(client, payload)
    assert response.status_code == 401
    assert response.json()["flow_control"]["type"] == "retry"
    assert HullNotification.objects.count() == 0


def test_wrong_connector_id_is_401(client, connector, enqueued):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    payload["configuration"]["id"] = "000000000000000000000000"
    assert post(client, payload).status_code == 401
    assert HullNotification.objects.count() == 0


def test_missing_configuration_is_401(client, connector, enqueued):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    del payload["configuration"]
    assert post(client, payload).status_code == 401
    assert HullNotification.objects.count() == 0


def test_connector_without_secret_refuses_empty_secret(client, connector, enqueued):
    connector.hull_secret = ""
    connector.save()
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    assert post(client, payload).status_code == 401


def test_unknown_connector_is_404(client, connector, enqueued):
    response = client.post("/hull/nobody/smart-notifier", data="{}", content_type="application/json")
    assert response.status_code == 404


def test_malformed_json_is_400(client, connector, enqueued):
    response = post(client, b'{"notification_id": ')
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["error"]["message"]
    assert HullNotification.objects.count() == 0


def test_empty_body_is_400(client, connector, enqueued):
    assert post(client, b"").status_code == 400


def test_non_object_body_is_400(client, connector, enqueued):
    assert post(client, b"[1, 2]").status_code == 400


@pytest.mark.parametrize("field", ["channel", "notification_id"])
def test_missing_field_is_400_with_its_name(client, connector, enqueued, field):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    del payload[field]
    response = post(client, payload)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert HullNotification.objects.count() == 0


def test_messages_not_a_list_is_400(client, connector, enqueued):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    payload["messages"] = {"oops": True}
    assert post(client, payload).status_code == 400


def test_oversized_body_is_413(client, connector, enqueued, monkeypatch):
    monkeypatch.setattr("webhooks.hull_views.MAX_NOTIFICATION_BYTES", 1000)
    monkeypatch.setattr("webhooks.authentication.MAX_NOTIFICATION_BYTES", 1000)
    response = post(client, fixture_bytes("user_update.json"))
    assert response.status_code == 413
    assert HullNotification.objects.count() == 0


# --- flow control ---------------------------------------------------------------------------------


def test_deep_queue_answers_retry_but_keeps_the_notification(client, connector, enqueued, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(flow_control, "MAX_PENDING_NOTIFICATIONS", 3)
    for index in range(4):
        HullNotification.objects.create(connector=connector, notification_id=f"old-{index}", channel="user:update")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, make_user_update(connector, [{"email": "a@b.c"}]))
    assert response.status_code == 200
    assert response.json()["flow_control"] == {"type": "retry", "size": 10, "in": flow_control.QUEUE_RETRY_IN_MS}
    assert HullNotification.objects.count() == 5  # persisted anyway: a redelivery is a duplicate


def test_queue_at_threshold_still_answers_next(client, connector, enqueued, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(flow_control, "MAX_PENDING_NOTIFICATIONS", 3)
    for index in range(3):
        HullNotification.objects.create(connector=connector, notification_id=f"old-{index}", channel="user:update")
    HullNotification.objects.create(connector=connector, notification_id="done", channel="user:update", status=DeliveryStatus.DONE)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, make_user_update(connector, [{"email": "a@b.c"}]))
    assert response.json()["flow_control"]["type"] == "next"


def test_exhausted_intercom_budget_answers_retry(client, connector, enqueued, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(flow_control, "_budget_lookup", lambda: (lambda workspace_key: 0))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, make_user_update(connector, [{"email": "a@b.c"}]))
    assert response.json()["flow_control"] == {"type": "retry", "size": 10, "in": flow_control.BUDGET_RETRY_IN_MS}


def test_budget_store_failure_does_not_block(client, connector, enqueued, monkeypatch, django_capture_on_commit_callbacks):
    def broken(workspace_key):
        raise RuntimeError("redis down")

    monkeypatch.setattr(flow_control, "_budget_lookup", lambda: broken)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, make_user_update(connector, [{"email": "a@b.c"}]))
    assert response.json()["flow_control"]["type"] == "next"


# --- RS256 signature ------------------------------------------------------------------------------


@dataclass
class SigningKey:
    private: Any
    fetched: list[str]


_KEYS: dict[str, Any] = {}


def rsa_key(name: str) -> Any:
    if name not in _KEYS:  # key generation is slow: one per name per run
        _KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[name]


@pytest.fixture
def signing_key(monkeypatch):
    key = rsa_key("hull")
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    fetched: list[str] = []

    def fake_fetch(url, signature, **kwargs):
        fetched.append(url)
        return pem

    monkeypatch.setattr("webhooks.authentication.fetch_public_key", fake_fetch)
    return SigningKey(key, fetched)


def signed_headers(key, notification_id: str, url: str = "https://keys.hullapp.io/k1") -> dict[str, str]:
    private = key.private if isinstance(key, SigningKey) else key
    signature = jwt.encode({"jti": notification_id, "iat": int(time.time())}, private, algorithm="RS256")
    return {
        "HTTP_X_HULL_SMART_NOTIFIER": "1",
        "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE": signature,
        "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_VERSION": "v1",
        "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_PUBLIC_KEY_URL": url,
    }


def test_signed_notification_is_accepted_without_secret(client, connector, enqueued, signing_key, django_capture_on_commit_callbacks):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    del payload["configuration"]["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, payload, **signed_headers(signing_key, payload["notification_id"]))
    assert response.status_code == 200
    assert signing_key.fetched == ["https://keys.hullapp.io/k1"]


def test_signature_for_another_notification_is_401(client, connector, enqueued, signing_key):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    response = post(client, payload, **signed_headers(signing_key, "some-other-id"))
    assert response.status_code == 401
    assert HullNotification.objects.count() == 0


def test_public_key_host_outside_allow_list_is_401_and_not_fetched(client, connector, enqueued, signing_key):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    response = post(client, payload, **signed_headers(signing_key, payload["notification_id"], url="https://evil.example.com/k"))
    assert response.status_code == 401
    assert signing_key.fetched == []


def test_signature_by_another_key_is_401(client, connector, enqueued, signing_key):
    other = rsa_key("other")
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    assert post(client, payload, **signed_headers(other, payload["notification_id"])).status_code == 401


def test_unsupported_signature_version_is_401(client, connector, enqueued, signing_key):
    payload = make_user_update(connector, [{"email": "a@b.c"}])
    headers = signed_headers(signing_key, payload["notification_id"])
    headers["HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_VERSION"] = "v2"
    assert post(client, payload, **headers).status_code == 401


def test_public_key_is_fetched_by_post_and_cached(responses_mock):
    hull_client._public_keys.clear()
    pem = "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n"
    responses_mock.add("POST", "https://keys.hullapp.io/k9", body=pem)
    assert hull_client.fetch_public_key("https://keys.hullapp.io/k9", "sig") == pem
    assert hull_client.fetch_public_key("https://keys.hullapp.io/k9", "sig") == pem
    assert len(responses_mock.calls) == 1
    assert responses_mock.calls[0].request.body in (b"sig", "sig")
