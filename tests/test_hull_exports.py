"""`/hull/<slug>/batch` and `/batch-accounts`: answer at once, stream the export, sync it in chunks."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from sync.outgoing import exports
from sync.hull.messages import AccountMessage, UserMessage
from sync.models import DeliveryStatus, HullNotification, HullSegment
from tests.conftest import HULL_SECRET

CONNECTOR_ID = "5c092905c36af496c700012e"
CREDENTIALS = {"ship": CONNECTOR_ID, "organization": "acme.hullapp.io", "secret": HULL_SECRET}


@pytest.fixture
def synced(monkeypatch):
    """Chunks handed to the outgoing sync (its own tests cover what it does with them)."""
    chunks: list[list] = []
    monkeypatch.setattr(exports, "_sync_chunk", lambda connector, messages, notification: chunks.append(list(messages)))
    return chunks


def batch_url(endpoint: str = "batch", **query: str) -> str:
    return f"/hull/acme/{endpoint}?{urlencode({**CREDENTIALS, **query})}"


def test_user_export_is_streamed_in_chunks_of_100(connector, hull_sandbox, synced, django_capture_on_commit_callbacks):
    segment = hull_sandbox.add_segment("Everyone", rule={"attribute": "email"})
    for index in range(250):
        hull_sandbox.add_user({"email": f"user{index}@acme.com"}, {"plan": "pro"})
    with django_capture_on_commit_callbacks(execute=True):
        status, answer, _file = hull_sandbox.export(connector)
    assert status == 200 and answer["status"] == "ok"
    assert [len(chunk) for chunk in synced] == [100, 100, 50]
    first = synced[0][0]
    assert isinstance(first, UserMessage)
    assert first.is_export is True
    assert first.user["plan"] == "pro"  # traits_ stripped
    assert first.segments == [{"id": segment.hull_id, "name": "Everyone", "type": "users_segment"}]
    notification = HullNotification.objects.get(is_export=True)
    assert notification.status == DeliveryStatus.DONE
    assert notification.message_count == 250
    assert notification.channel == "user:update"
    assert HullSegment.objects.filter(connector=connector, hull_id=segment.hull_id).exists()


def test_account_export(connector, hull_sandbox, synced, django_capture_on_commit_callbacks):
    hull_sandbox.add_account({"domain": "acme.com"}, {"intercom/name": "Acme"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.export(connector, object_type="account_report")
    [[message]] = synced
    assert isinstance(message, AccountMessage)
    assert message.account["domain"] == "acme.com" and message.is_export


def test_segment_id_in_query_is_added_to_each_line(connector, hull_sandbox, synced, django_capture_on_commit_callbacks):
    HullSegment.objects.create(connector=connector, kind="user", hull_id="seg-pushed", name="Pushed")
    hull_sandbox.add_user({"email": "a@acme.com"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.export(connector, segment_id="seg-pushed")
    [[message]] = synced
    assert {"id": "seg-pushed", "name": "Pushed", "type": "users_segment"} in message.segments


def test_same_export_twice_is_stored_once(client, connector, synced, responses_mock, django_capture_on_commit_callbacks):
    responses_mock.add("GET", "https://files.example/export-1", body='{"id": "u1", "email": "a@b.c"}\n')
    body = json.dumps({"url": "https://files.example/export-1", "format": "json", "object_type": "user_report"})
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(batch_url(), data=body, content_type="application/json")
        assert response.status_code == 200
    assert HullNotification.objects.filter(is_export=True).count() == 1
    assert len(synced) == 1


def test_malformed_lines_are_skipped_and_counted(client, connector, synced, responses_mock, django_capture_on_commit_callbacks):
    lines = '{"id": "u1", "email": "a@b.c"}\nnot json\n\n[1]\n{"id": "u2", "email": "d@e.f"}'
    responses_mock.add("GET", "https://files.example/export-2", body=lines)
    body = json.dumps({"url": "https://files.example/export-2", "format": "json", "object_type": "user_report"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(batch_url(), data=body, content_type="application/json")
    assert [m.user["id"] for m in synced[0]] == ["u1", "u2"]
    notification = HullNotification.objects.get()
    assert notification.error == "2 malformed line(s) skipped"
    assert notification.status == DeliveryStatus.DONE


def test_export_over_the_size_limit_fails_cleanly(client, connector, synced, responses_mock, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(exports, "MAX_EXPORT_BYTES", 100)
    monkeypatch.setattr("sync.hull.client.EXPORT_CHUNK_BYTES", 32)
    responses_mock.add("GET", "https://files.example/big", body="".join(f'{{"id": "u{i}"}}\n' for i in range(50)))
    body = json.dumps({"url": "https://files.example/big", "format": "json", "object_type": "user_report"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(batch_url(), data=body, content_type="application/json")
    assert response.status_code == 200
    notification = HullNotification.objects.get()
    assert notification.status == DeliveryStatus.FAILED
    assert "exceeds 100 bytes" in notification.error


def test_unreachable_export_file_marks_the_notification_failed(client, connector, synced, responses_mock, django_capture_on_commit_callbacks):
    responses_mock.add("GET", "https://files.example/gone", status=404)
    body = json.dumps({"url": "https://files.example/gone", "format": "json"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(batch_url(), data=body, content_type="application/json")
    assert HullNotification.objects.get().status == DeliveryStatus.FAILED
    assert synced == []


def test_export_file_is_fetched_without_hull_credentials(client, connector, synced, responses_mock, django_capture_on_commit_callbacks):
    responses_mock.add("GET", "https://files.example/export-3", body='{"id": "u1"}\n')
    body = json.dumps({"url": "https://files.example/export-3"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(batch_url(), data=body, content_type="application/json")
    request = responses_mock.calls[0].request
    assert "Hull-Access-Token" not in request.headers


@pytest.mark.parametrize(
    "body, message",
    [
        ({"format": "json"}, "url"),
        ({"url": "ftp://files.example/x"}, "url"),
        ({"url": "https://files.example/x", "format": "csv"}, "csv"),
        ({"url": "https://files.example/x", "object_type": "event_report"}, "object_type"),
    ],
)
def test_bad_export_requests_are_400(client, connector, synced, body, message):
    response = client.post(batch_url(), data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert HullNotification.objects.count() == 0


def test_batch_with_wrong_secret_is_401(client, connector, synced):
    url = f"/hull/acme/batch?{urlencode({**CREDENTIALS, 'secret': 'nope'})}"
    response = client.post(url, data=json.dumps({"url": "https://files.example/x"}), content_type="application/json")
    assert response.status_code == 401
    assert HullNotification.objects.count() == 0


def test_batch_accounts_defaults_to_account_reports(client, connector, synced, responses_mock, django_capture_on_commit_callbacks):
    responses_mock.add("GET", "https://files.example/accounts", body='{"id": "a1", "domain": "acme.com"}\n')
    with django_capture_on_commit_callbacks(execute=True):
        client.post(batch_url("batch-accounts"), data=json.dumps({"url": "https://files.example/accounts"}), content_type="application/json")
    assert HullNotification.objects.get().channel == "account:update"
    assert isinstance(synced[0][0], AccountMessage)


# --- status -------------------------------------------------------------------------------------


def status_url(**query: str) -> str:
    return f"/hull/acme/status?{urlencode({**CREDENTIALS, **query})}"


def test_status_setup_required_until_intercom_is_connected(client, connector):
    connector.intercom_access_token = ""
    connector.save()
    response = client.get(status_url())
    assert response.status_code == 200
    assert response.json()["status"] == "setupRequired"


def test_status_ok_shape_for_get_and_post(client, connector):
    connector.synchronized_user_segments = ["s1"]
    connector.save()
    for response in (client.get(status_url()), client.post(status_url())):
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "messages": []}


def test_status_warns_on_recent_errors(client, connector):
    from sync.synclog import log_outcome

    connector.synchronized_user_segments = ["s1"]
    connector.save()
    log_outcome(connector, direction="outgoing", entity="user", status="error", action="outgoing.user.error", message="boom")
    body = client.get(status_url()).json()
    assert body["status"] == "warning"
    assert any("sync error" in m for m in body["messages"])


def test_status_warns_on_a_deep_queue(client, connector, monkeypatch):
    monkeypatch.setattr("sync.services.hull_status.MAX_PENDING_NOTIFICATIONS", 1)
    connector.synchronized_user_segments = ["s1"]
    connector.save()
    for index in range(2):
        HullNotification.objects.create(connector=connector, notification_id=f"n{index}", channel="user:update")
    body = client.get(status_url()).json()
    assert body["status"] == "warning"
    assert any("queued" in m for m in body["messages"])


def test_status_without_credentials_is_401(client, connector):
    assert client.get("/hull/acme/status").status_code == 401


def test_status_is_reported_to_hull(connector, hull_sandbox):
    from sync.services.hull_status import hull_status_report

    connector.synchronized_user_segments = ["s1"]
    connector.save()
    result = hull_status_report(connector=connector)
    assert result.status == "ok"
    assert hull_sandbox.status(connector) == {"status": "ok", "messages": []}


def test_status_report_survives_hull_being_down(connector, responses_mock, monkeypatch):
    from sync.hull import client as client_module
    from sync.services.hull_status import hull_status_report

    monkeypatch.setattr(client_module, "RETRY_BACKOFF", 0.0)
    responses_mock.add("PUT", f"https://acme.hullapp.io/api/v1/{CONNECTOR_ID}/status", status=503)
    assert hull_status_report(connector=connector).status in ("ok", "warning")
    assert len(responses_mock.calls) == 3
