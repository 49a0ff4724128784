"""Connector actions: confirmation first, then one service call per connector, outcomes as messages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.models import DeliveryStatus, HullNotification, WebhookDelivery
from tests.admin_helpers import Recorder, fake_module

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sync_connector_changelist"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def run_from_changelist(client, action: str, connector, *, confirm: bool):
    data = {"action": action, "_selected_action": [connector.pk]}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse(CHANGELIST), data)


@pytest.fixture
def fetch(monkeypatch) -> Recorder:
    recorder = Recorder()
    fake_module(monkeypatch, "sync.incoming.fetch", connector_fetch_all=recorder, fetch_cancel=Recorder(), connector_schedules_update=Recorder())
    return recorder


@pytest.mark.parametrize("stream", ["users", "leads", "companies"])
def test_fetch_all_asks_for_confirmation_first(staff_client, connector, fetch, stream):
    response = run_from_changelist(staff_client, f"fetch_all_{stream}", connector, confirm=False)
    assert response.status_code == 200
    assert f'value="Fetch all {stream}"' in response.content.decode()  # the button says what it does
    assert fetch.calls == []


@pytest.mark.parametrize("stream", ["users", "leads", "companies"])
def test_fetch_all_starts_the_fetch_once_confirmed(staff_client, connector, fetch, stream):
    response = run_from_changelist(staff_client, f"fetch_all_{stream}", connector, confirm=True)
    assert response.status_code == 302
    assert fetch.calls == [{"connector": connector, "stream": stream}]
    assert f"Acme: fetch all {stream} started; follow it on the dashboard." in messages_of(response)


def test_fetch_all_is_refused_with_a_reason_when_intercom_is_not_connected(staff_client, connector, fetch):
    connector.intercom_access_token = ""
    connector.save()
    response = run_from_changelist(staff_client, "fetch_all_users", connector, confirm=True)
    assert fetch.calls == []
    assert "Acme: connect Intercom first (Getting started)." in messages_of(response)


def test_a_failing_service_is_reported_not_a_500(staff_client, connector, monkeypatch):
    fake_module(monkeypatch, "sync.incoming.fetch", connector_fetch_all=Recorder(error=RuntimeError("lease busy")))
    response = run_from_changelist(staff_client, "fetch_all_users", connector, confirm=True)
    assert response.status_code == 302
    assert "Acme: Fetch all users failed: lease busy" in messages_of(response)


def test_the_button_on_the_connector_page_confirms_then_runs_and_opens_the_dashboard(staff_client, connector, fetch):
    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "fetch_all_users"])
    page = staff_client.get(url)
    assert page.status_code == 200 and 'value="Fetch all users"' in page.content.decode()
    assert fetch.calls == []
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sync_connector_dashboard", args=[connector.pk])
    assert fetch.calls == [{"connector": connector, "stream": "users"}]


def test_an_unknown_action_name_is_forbidden(staff_client, connector):
    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "drop_database"])
    assert staff_client.get(url).status_code == 403


def test_sync_data_attributes_reports_what_was_created(staff_client, connector, monkeypatch):
    recorder = Recorder(result=[("contact", "job_title")])
    fake_module(monkeypatch, "sync.outgoing.attributes", data_attributes_sync=recorder)
    response = run_from_changelist(staff_client, "sync_data_attributes", connector, confirm=True)
    assert recorder.calls == [{"connector": connector}]
    assert "Acme: created in Intercom: contact attribute job_title." in messages_of(response)


def test_cancel_fetch_all_cancels_every_stream(staff_client, connector, monkeypatch):
    cancel = Recorder()
    fake_module(monkeypatch, "sync.incoming.fetch", fetch_cancel=cancel)  # behind sync.services.ops.fetch_all_cancel
    run_from_changelist(staff_client, "cancel_fetch_all", connector, confirm=True)
    assert [call["stream"] for call in cancel.calls] == ["users", "leads", "companies"]


def test_replay_failures_requeues_failed_deliveries_and_notifications(staff_client, connector, monkeypatch, django_capture_on_commit_callbacks):
    enqueued: list[tuple] = []
    monkeypatch.setattr("sync.work.enqueue_now", lambda *args, **kw: enqueued.append(args))
    failed = WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", status=DeliveryStatus.FAILED, error="boom")
    done = WebhookDelivery.objects.create(connector=connector, notification_id="n2", topic="user.created", status=DeliveryStatus.DONE)
    note = HullNotification.objects.create(connector=connector, notification_id="h1", channel="user:update", status=DeliveryStatus.FAILED, processed_messages=[0])
    with django_capture_on_commit_callbacks(execute=True):
        response = run_from_changelist(staff_client, "replay_failures", connector, confirm=True)
    assert "Acme: 1 webhook deliveries and 1 Hull notifications queued again." in messages_of(response)
    assert sorted(enqueued) == sorted([("sync.tasks.process_webhook_delivery", failed.pk), ("sync.tasks.process_notification", note.pk)])
    failed.refresh_from_db(), done.refresh_from_db(), note.refresh_from_db()
    assert (failed.status, failed.error) == (DeliveryStatus.PENDING, "")
    assert done.status == DeliveryStatus.DONE
    assert (note.status, note.processed_messages) == (DeliveryStatus.PENDING, [])


def test_push_segment_asks_which_segment_offering_those_hull_sent(staff_client, connector):
    from sync.models import HullSegment

    HullSegment.objects.create(connector=connector, kind="user", hull_id="seg-vip", name="VIP users")
    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "push_segment"])
    html = staff_client.get(url).content.decode()
    assert 'name="segment"' in html and '<option value="seg-vip">VIP users</option>' in html
    # Confirming without a segment shows the page again rather than pushing nothing.
    assert staff_client.post(url, {"post": "yes", "segment": ""}).status_code == 200


def test_push_segment_requests_the_export_from_hull(staff_client, connector, monkeypatch):
    from sync.services import ops

    calls = []
    monkeypatch.setattr(ops, "segment_push", lambda **kw: calls.append(kw) or ops.SegmentPush("seg-vip", "VIP users", "https://x/batch"))
    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "push_segment"])
    response = staff_client.post(url, {"post": "yes", "segment": "seg-vip"})
    assert response.status_code == 302
    assert calls == [{"connector": connector, "segment_id": "seg-vip"}]
    assert any("export of segment VIP users requested from Hull" in m for m in messages_of(response))


def test_push_segment_refusal_is_a_warning(staff_client, connector):
    connector.is_active = False
    connector.save()
    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "push_segment"])
    response = staff_client.post(url, {"post": "yes", "segment": "seg-vip"})
    assert "Acme: The connector is paused: an export would be stored but not synced." in messages_of(response)


def levelled_messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.wsgi_request._messages]


def test_check_connector_reports_a_healthy_connector_check_by_check(staff_client, connector, intercom_sandbox, hull_sandbox, settings):
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "check_connector"])
    page = staff_client.get(url)
    assert page.status_code == 200 and 'value="Check connector"' in page.content.decode()
    assert ("GET", "/me") not in [(call.method, call.path) for call in intercom_sandbox.calls]  # nothing before confirming
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sync_connector_dashboard", args=[connector.pk])
    reported = levelled_messages_of(response)
    assert ("success", "Acme: Hull: Hull accepts the connector's credentials for acme.hullapp.io.") in reported
    assert any(level == "success" and text.startswith("Acme: Intercom: Intercom answers as") for level, text in reported)
    assert ("success", "Acme: Webhook address: Webhook URL https://connector.example.com/intercom/acme/webhooks") in reported
    assert ("success", "Acme: Queue: 0 waiting, 0 failed.") in reported
    assert reported[-1] == ("success", "Acme: ready.")
    assert {level for level, _ in reported} == {"success"}
    assert ("GET", "/me") in [(call.method, call.path) for call in intercom_sandbox.calls]


def test_check_connector_reports_a_refused_intercom_token_as_an_error(staff_client, connector, intercom_sandbox, hull_sandbox):
    connector.intercom_access_token = "not-a-token"
    connector.save()
    response = run_from_changelist(staff_client, "check_connector", connector, confirm=True)
    assert response.status_code == 302
    reported = levelled_messages_of(response)
    errors = [text for level, text in reported if level == "error"]
    assert any(text.startswith("Acme: Intercom: Intercom refused (HTTP 401)") for text in errors)
    assert errors[-1] == "Acme: not ready: see Intercom above."
    assert ("success", "Acme: Hull: Hull accepts the connector's credentials for acme.hullapp.io.") in reported


def test_check_connector_warnings_are_warnings(staff_client, connector, intercom_sandbox, hull_sandbox):
    connector.is_active = False
    connector.save()
    response = run_from_changelist(staff_client, "check_connector", connector, confirm=True)
    reported = levelled_messages_of(response)
    assert ("warning", "Acme: Active: The connector is paused: it stores what it receives but syncs nothing.") in reported
    assert reported[-1] == ("success", "Acme: ready.")


def test_check_connector_buttons_on_the_dashboard_and_the_change_page(staff_client, connector):
    import responses

    url = reverse("admin:sync_connector_run_action", args=[connector.pk, "check_connector"])
    dashboard = staff_client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk])).content.decode()
    assert f'href="{url}">Check connector</a>' in dashboard
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # Intercom unreachable: the pickers fall back
        change = staff_client.get(reverse("admin:sync_connector_change", args=[connector.pk])).content.decode()
    assert f'href="{url}" class="check-connector">Check connector</a>' in change


def test_harmless_actions_are_not_dressed_as_deletions_but_disconnect_is(staff_client, connector):
    fetch = staff_client.get(reverse("admin:sync_connector_run_action", args=[connector.pk, "fetch_all_users"])).content.decode()
    assert "delete-confirmation" not in fetch and 'class="default" value="Fetch all users"' in fetch
    disconnect = staff_client.get(reverse("admin:sync_connector_intercom_disconnect", args=[connector.pk])).content.decode()
    assert "delete-confirmation" in disconnect and 'value="Disconnect"' in disconnect


def test_favicon_and_no_view_site_link(staff_client):
    assert staff_client.get("/favicon.ico").status_code == 200
    assert "View site" not in staff_client.get(reverse("admin:index")).content.decode()
