"""The connector's History page: what a save really changed, and every action staff ran."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from sync.models import DeliveryStatus, SyncCursor, WebhookDelivery
from tests.admin_helpers import Recorder, fake_module, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet_services(monkeypatch):
    fake_module(
        monkeypatch,
        "sync.incoming.fetch",
        connector_schedules_update=Recorder(result=[]),
        connector_fetch_all=Recorder(),
        fetch_cancel=Recorder(),
    )
    fake_module(monkeypatch, "sync.outgoing.attributes", data_attributes_sync=Recorder(result=[]))


def history(connector) -> list[str]:
    entries = LogEntry.objects.filter(object_id=str(connector.pk), content_type__model="connector").order_by("pk")
    return [entry.get_change_message() for entry in entries]


def test_a_save_with_blank_secrets_records_only_what_changed(staff_client, connector, intercom_sandbox):
    data = form_data(staff_client, connector)  # secrets blank, as the browser sends them
    staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)
    data["name"] = "Acme EU"
    staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)
    first, second = history(connector)
    assert first == "No fields changed."
    assert "Name" in second
    for secret in ("secret", "access token"):
        assert secret not in second.lower()


def test_a_typed_secret_is_recorded_as_changed_but_never_shown(staff_client, connector, intercom_sandbox):
    data = form_data(staff_client, connector)
    data["hull_secret"] = "a-brand-new-secret"
    staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)
    (message,) = history(connector)
    assert "secret" in message.lower() and "a-brand-new-secret" not in message


@pytest.mark.parametrize(
    "action,expected",
    [
        ("fetch_all_users", "Fetch all users: fetch all users started"),
        ("cancel_fetch_all", "Cancel running fetch-all: no fetch-all was running"),
        ("replay_failures", "Replay failed deliveries and notifications: 1 webhook deliveries"),
    ],
)
def test_each_action_is_recorded(staff_client, connector, action, expected, monkeypatch):
    monkeypatch.setattr("sync.work.enqueue", lambda *args, **kwargs: None)
    WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", status=DeliveryStatus.FAILED, error="boom")
    staff_client.post(reverse("admin:sync_connector_run_action", args=[connector.pk, action]), {"post": "yes"})
    assert any(line.startswith(expected) for line in history(connector)), history(connector)


def test_check_connector_and_push_segment_are_recorded(staff_client, connector, monkeypatch):
    from sync.services import ops

    class Push:
        segment_name = "VIP users"

    monkeypatch.setattr(ops, "segment_push", lambda **kwargs: Push())
    staff_client.post(reverse("admin:sync_connector_run_action", args=[connector.pk, "push_segment"]), {"post": "yes", "segment": "seg-vip"})
    staff_client.post(reverse("admin:sync_connector_run_action", args=[connector.pk, "check_connector"]), {"post": "yes"})
    lines = history(connector)
    assert any(line.startswith("Push a Hull segment to Intercom: export of segment VIP users requested") for line in lines), lines
    assert any(line.startswith("Check connector: ") for line in lines), lines


def test_connect_and_disconnect_are_recorded(staff_client, connector):
    staff_client.post(reverse("admin:sync_connector_intercom_disconnect", args=[connector.pk]))
    assert history(connector) == ["Disconnected from Intercom (the stored access token was deleted)."]


def test_replaying_from_the_delivery_list_is_recorded_on_the_connector(staff_client, connector, monkeypatch):
    monkeypatch.setattr("sync.work.enqueue", lambda *args, **kwargs: None)
    delivery = WebhookDelivery.objects.create(connector=connector, notification_id="n9", topic="user.created", status=DeliveryStatus.FAILED, error="boom")
    staff_client.post(reverse("admin:sync_webhookdelivery_changelist"), {"action": "replay_deliveries", "_selected_action": [delivery.pk]})
    assert history(connector) == ["Replayed 1 Intercom webhook(s) from the list: n9."]


def test_cancel_says_which_fetch_will_stop(staff_client, connector):
    SyncCursor.objects.create(connector=connector, kind="fetch_all", stream="users", status="running")
    response = staff_client.post(reverse("admin:sync_connector_run_action", args=[connector.pk, "cancel_fetch_all"]), {"post": "yes"})
    assert "Acme: fetch all users will stop after the page in progress." in [str(m) for m in response.wsgi_request._messages]
