"""`POST /intercom/<slug>/webhooks`: the fixed check order, statuses, storage and idempotency."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from sync.incoming.topics import topic_is_whitelisted, topic_matches
from sync.models import DeliveryStatus, SyncLog, WebhookDelivery
from tests.incoming_support import firehose, intercom  # noqa: F401
from tests.test_webhook_topics import SECRET, fixture_bytes
from webhooks.intercom_auth import intercom_signature

URL = "/intercom/acme/webhooks"


def post(client, body: bytes, signature: str | None, url: str = URL):
    headers = {"HTTP_X_HUB_SIGNATURE": signature} if signature is not None else {}
    return client.post(url, data=body, content_type="application/json", **headers)


def envelope(topic: str, notification_id: str = "notif_1", **item) -> bytes:
    return json.dumps(
        {"type": "notification_event", "id": notification_id, "topic": topic, "created_at": 1734540000,
         "app_id": "nrpsbkpc", "delivery_attempts": 1, "data": {"type": "notification_event_data", "item": item}}
    ).encode()


def test_a_missing_signature_is_401_and_nothing_is_stored(client, connector):
    response = post(client, fixture_bytes("user_created"), None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    assert not WebhookDelivery.objects.exists()


def test_a_wrong_signature_is_401_and_nothing_is_stored(client, connector):
    body = fixture_bytes("user_created")
    assert post(client, body, intercom_signature("another-secret", body)).status_code == 401
    assert post(client, body, "sha1=" + "0" * 40).status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_the_signature_covers_the_exact_bytes(client, connector):
    body = fixture_bytes("user_created")
    reformatted = json.dumps(json.loads(body)).encode()  # same JSON, other bytes
    assert post(client, reformatted, intercom_signature(SECRET, body)).status_code == 401


def test_a_connector_without_any_client_secret_answers_401(client, connector):
    connector.intercom_client_secret = ""
    connector.save()
    body = fixture_bytes("ping")
    with override_settings(INTERCOM_CLIENT_SECRET=""):
        assert post(client, body, intercom_signature("", body)).status_code == 401


def test_the_app_wide_client_secret_is_the_fallback(client, connector, django_capture_on_commit_callbacks):
    connector.intercom_client_secret = ""
    connector.save()
    body = fixture_bytes("ping")
    with override_settings(INTERCOM_CLIENT_SECRET="app-secret"):
        assert post(client, body, intercom_signature("app-secret", body)).status_code == 200


def test_an_unknown_connector_is_404(client, connector):
    body = fixture_bytes("ping")
    assert post(client, body, intercom_signature(SECRET, body), url="/intercom/nope/webhooks").status_code == 404


def test_an_empty_body_is_400_and_malformed_json_is_400(client, connector):
    assert post(client, b"", intercom_signature(SECRET, b"")).status_code == 400
    body = b"{not json"
    assert post(client, body, intercom_signature(SECRET, body)).status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_head_answers_200_for_intercoms_url_validation(client, connector):
    assert client.head(URL).status_code == 200


def test_a_redelivery_is_a_no_op(client, connector, intercom, firehose, django_capture_on_commit_callbacks):
    body = fixture_bytes("user_created")
    signature = intercom_signature(SECRET, body)
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, body, signature)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post(client, body, signature)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicate"] is True
    assert callbacks == []  # nothing enqueued the second time
    assert WebhookDelivery.objects.count() == 1
    assert len(firehose.of_type("traits")) == 1
    assert SyncLog.objects.filter(action="incoming.user.success").count() == 1


def test_a_delivery_is_stored_before_the_answer_and_processed_after_commit(client, connector, intercom, firehose, django_capture_on_commit_callbacks):
    body = fixture_bytes("user_created")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, body, intercom_signature(SECRET, body))
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.topic, delivery.notification_id) == ("pending", "user.created", "notif_00000014-3dfd-47a9-a715-be6cf19a273a")
    assert firehose.records == [] and len(callbacks) == 1
    callbacks[0]()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DONE and delivery.attempts == 1


def test_unknown_topics_are_stored_as_unsupported_and_answered_200(client, connector, django_capture_on_commit_callbacks):
    body = envelope("brand.new.topic", id="x1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post(client, body, intercom_signature(SECRET, body)).status_code == 200
    assert WebhookDelivery.objects.get().status == DeliveryStatus.UNSUPPORTED
    assert callbacks == []


def test_known_but_ignored_topics_are_stored_as_ignored(client, connector):
    body = envelope("ticket.created", type="ticket", id="1")
    assert post(client, body, intercom_signature(SECRET, body)).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.IGNORED and "tickets" in delivery.error


def test_a_paused_connector_stores_but_does_not_process(client, connector, firehose, django_capture_on_commit_callbacks):
    connector.is_active = False
    connector.save()
    body = fixture_bytes("user_created")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post(client, body, intercom_signature(SECRET, body)).status_code == 200
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    assert callbacks == [] and firehose.records == []


def test_receive_events_off_ignores_every_topic(client, connector):
    connector.receive_events = False
    connector.save()
    body = fixture_bytes("user_created")
    post(client, body, intercom_signature(SECRET, body))
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def test_a_null_notification_id_still_deduplicates_by_body(client, connector):
    body = envelope("conversation.read", notification_id=None, type="conversation", id="9")
    signature = intercom_signature(SECRET, body)
    post(client, body, signature)
    post(client, body, signature)
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    ("topic", "whitelist", "expected"),
    [
        ("conversation.admin.closed", ["conversation.*"], True),
        ("conversation_part.redacted", ["conversation.*"], False),
        ("contact.user.tag.created", ["contact.*.tag.*"], True),
        ("user.created", ["user.created"], True),
        ("contact.user.created", ["user.created"], True),  # the 2.x name of a whitelisted 1.x topic
        ("contact.created", ["contact.lead.created"], True),  # and the other way round
        ("contact.deleted", ["user.deleted"], True),
        ("contact.user.updated", ["user.created"], False),
        ("company.created", [], False),
        ("company.updated", ["*"], True),
    ],
)
def test_whitelist_matching(connector, topic, whitelist, expected):
    connector.incoming_events = whitelist
    assert topic_is_whitelisted(connector, topic) is expected


def test_topic_matches_ignores_blank_patterns():
    assert topic_matches("ping", ["", "  "]) is False
