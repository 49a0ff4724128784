"""The Hull organization stand-in: identity resolution, operations, segments, the notifier."""

from __future__ import annotations

import pytest

from sandbox.hull.models import SandboxCall
from sync.hull.client import HullClient
from sync.hull.firehose import FirehoseBatch
from sync.models import HullNotification


@pytest.fixture
def no_processing(monkeypatch):
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: None)


def test_users_are_resolved_by_external_id_then_email_then_anonymous_id(connector, hull_sandbox):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "jane@acme.com"}, {"a": 1})
        batch.traits({"email": "jane@acme.com", "external_id": "u-1"}, {"b": 2})
        batch.traits({"external_id": "u-1", "anonymous_id": "intercom:9"}, {"c": 3})
        batch.traits({"anonymous_id": "intercom:9"}, {"d": 4})
    [user] = hull_sandbox.users()
    assert (user["email"], user["external_id"], user["anonymous_ids"]) == ("jane@acme.com", "u-1", ["intercom:9"])
    assert (user["traits_a"], user["traits_b"], user["traits_c"], user["traits_d"]) == (1, 2, 3, 4)


def test_accounts_are_resolved_by_domain(connector, hull_sandbox):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.account_traits({"domain": "acme.com"}, {"size": 10})
        batch.account_traits({"domain": "acme.com", "external_id": "c-1"}, {"plan": "pro"})
    [account] = hull_sandbox.accounts()
    assert (account["external_id"], account["size"], account["plan"]) == ("c-1", 10, "pro")


@pytest.mark.parametrize("anonymous_id", ["intercom:5f0a", "intercom:a_b%c", "intercom:é", 'intercom:"q"\\'])
def test_accounts_are_resolved_by_anonymous_id_exactly(connector, hull_sandbox, anonymous_id):
    """The lookup narrows by a LIKE on the stored JSON when it can; the match stays exact."""
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.account_traits({"anonymous_id": anonymous_id + "0"}, {"plan": "longer id"})  # contains the id: not it
        batch.account_traits({"anonymous_id": anonymous_id}, {"size": 10})
        batch.account_traits({"anonymous_id": anonymous_id}, {"plan": "pro"})
    accounts = sorted(hull_sandbox.accounts(), key=lambda a: a["plan"])
    assert [(a["plan"], a.get("size")) for a in accounts] == [("longer id", None), ("pro", 10)]


def test_create_false_does_not_create(connector, hull_sandbox):
    from sandbox.hull.api import apply_record
    from sandbox.hull.platform import IngestionError

    with pytest.raises(IngestionError):
        apply_record("acme.hullapp.io", "traits", {"io.hull.subjectType": "user", "io.hull.asUser": {"email": "x@y.z"}, "io.hull.create": False}, {"a": 1})
    assert hull_sandbox.users() == []


def test_increment_and_grouped_keys(connector, hull_sandbox):
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"visits": 2})
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "jane@acme.com"}, {"visits": {"operation": "increment", "value": 3}, "intercom_user/role": "user"})
    user = hull_sandbox.user(email="jane@acme.com")
    assert user["traits_visits"] == 5
    assert user["traits_intercom_user/role"] == "user"


def test_oversized_value_is_refused_and_recorded(connector, hull_sandbox):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "jane@acme.com"}, {"bio": "x" * 3000, "ok": 1})
    [record] = hull_sandbox.firehose_records
    assert "2 KB" in record.error
    user = hull_sandbox.user(email="jane@acme.com")
    assert "traits_bio" not in user and user["traits_ok"] == 1


def test_notifier_sends_changes_events_and_segment_enter(connector, hull_sandbox, no_processing, django_capture_on_commit_callbacks):
    segment = hull_sandbox.add_segment("Pro", rule={"attribute": "traits_plan", "equals": "pro"})
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "pro"}, events=[{"event": "Signed Up", "created_at": "2024-01-02T03:04:05Z"}])
    with django_capture_on_commit_callbacks(execute=True):
        result = hull_sandbox.notify_users(connector)
    assert result.delivered_messages == 1
    notification = HullNotification.objects.get()
    [message] = notification.full_payload()["messages"]
    assert message["user"]["traits_plan"] == "pro"
    assert message["changes"]["user"]["traits_plan"] == [None, "pro"]
    assert message["changes"]["is_new"] is True
    assert [s["id"] for s in message["changes"]["segments"]["entered"]] == [segment.hull_id]
    assert [s["id"] for s in message["segments"]] == [segment.hull_id]
    assert [(e["event"], e["created_at"]) for e in message["events"]] == [("Signed Up", "2024-01-02 03:04:05 UTC")]
    assert notification.payload["segments"][0]["name"] == "Pro"
    # Delivered: the next notification has nothing pending.
    assert hull_sandbox.notify_users(connector).deliveries == []


def test_notifier_sends_segment_leave(connector, hull_sandbox, no_processing, django_capture_on_commit_callbacks):
    segment = hull_sandbox.add_segment("Pro", rule={"attribute": "traits_plan", "equals": "pro"})
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "pro"})
    hull_sandbox.notify_users(connector)
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "free"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    latest = HullNotification.objects.order_by("-id").first()
    [message] = latest.full_payload()["messages"]
    assert [s["id"] for s in message["changes"]["segments"]["left"]] == [segment.hull_id]
    assert message["segments"] == []


def test_notifier_sends_account_link_change(connector, hull_sandbox, no_processing, django_capture_on_commit_callbacks):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.link_account({"email": "jane@acme.com"}, {"domain": "acme.com"})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(connector)
    [message] = HullNotification.objects.get().full_payload()["messages"]
    account_id = hull_sandbox.accounts()[0]["id"]
    assert message["changes"]["account"]["id"] == [None, account_id]
    assert message["account"]["domain"] == "acme.com"


def test_notifier_honours_retry_then_next(connector, hull_sandbox, no_processing, monkeypatch, django_capture_on_commit_callbacks):
    from sync.outgoing import flow_control

    monkeypatch.setattr(flow_control, "MAX_PENDING_NOTIFICATIONS", 0)
    HullNotification.objects.create(connector=connector, notification_id="blocking", channel="user:update")
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "pro"})
    waits: list[float] = []
    with django_capture_on_commit_callbacks(execute=True):
        result = hull_sandbox.notify_users(connector, max_retries=2, sleep=waits.append)
    assert [d.retries for d in result.deliveries] == [0, 1, 2]
    assert len({d.notification_id for d in result.deliveries}) == 1  # redelivered, same id
    assert result.undelivered_messages == 1
    assert HullNotification.objects.filter(notification_id=result.deliveries[0].notification_id).count() == 1
    assert waits and all(w > 0 for w in waits)
    # The queue drains: the same user goes through with `next`.
    HullNotification.objects.filter(notification_id="blocking").update(status="done")
    monkeypatch.setattr(flow_control, "MAX_PENDING_NOTIFICATIONS", 10)
    result = hull_sandbox.notify_users(connector)
    assert result.delivered_messages == 1
    assert result.flow_controls[-1]["type"] == "next"


def test_notifier_paces_by_the_size_asked(connector, hull_sandbox, no_processing, monkeypatch):
    from sync.outgoing import flow_control

    monkeypatch.setattr(flow_control, "NEXT_SIZE", 2)
    for index in range(5):
        hull_sandbox.add_user({"email": f"u{index}@acme.com"})
    result = hull_sandbox.notify_users(connector, batch_size=1)
    assert [d.messages for d in result.deliveries] == [1, 2, 2]


def test_every_call_is_recorded(connector, hull_sandbox, no_processing):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "a@b.c"}, {"x": 1})
    HullClient.for_connector(connector).get_app()
    hull_sandbox.notify_users(connector)
    assert [c.kind for c in SandboxCall.objects.order_by("id")] == ["firehose", "rest", "notify"]


def test_sandbox_over_http_serves_the_firehose(client, connector):
    from sync.hull.client import entity_token

    token = entity_token(connector.hull_secret, connector.hull_id, user={"email": "http@acme.com"})
    body = {"batch": [{"type": "traits", "headers": {"Hull-Access-Token": token}, "body": {"x": 1}}]}
    response = client.post(
        "/sandbox/hull/api/v1/firehose", data=body, content_type="application/json",
        HTTP_HULL_APP_ID=connector.hull_id, HTTP_HULL_ACCESS_TOKEN=connector.hull_secret,
    )
    assert response.status_code == 200
    from sandbox.hull.models import SandboxUser

    assert SandboxUser.objects.get(email="http@acme.com").attributes == {"traits_x": 1}


def test_management_command_sends_a_demo_notification(connector, no_processing, capsys):
    from django.core.management import call_command

    call_command("sandbox_hull_notify", "--connector", "acme", "--email", "demo@acme.com", "--trait", "plan=pro", "--event", "Signed Up")
    out = capsys.readouterr().out
    assert '"status": 200' in out
    [message] = HullNotification.objects.get().full_payload()["messages"]
    assert message["user"]["email"] == "demo@acme.com"
    assert message["user"]["traits_plan"] == "pro"
    assert [e["event"] for e in message["events"]] == ["Signed Up"]


def test_signed_notifications_are_verified_with_the_fetched_public_key(connector, hull_sandbox, no_processing, django_capture_on_commit_callbacks):
    from sync.hull import client as hull_client

    hull_client._public_keys.clear()
    hull_sandbox.add_user({"email": "signed@acme.com"}, {"plan": "pro"})
    with django_capture_on_commit_callbacks(execute=True):
        result = hull_sandbox.notify_users(connector, signed=True)
    assert [d.status for d in result.deliveries] == [200], result.deliveries[0].answer
    stored = HullNotification.objects.get()
    assert "secret" not in stored.payload["configuration"]
    assert [c.path for c in hull_sandbox.calls("rest")] == ["/api/v1/_keys/sandbox"]


def test_signed_notification_with_a_key_url_outside_the_allow_list_is_refused(connector, hull_sandbox, no_processing):
    hull_sandbox.add_user({"email": "signed@acme.com"})
    result = hull_sandbox.notify_users(connector, signed=True, key_url="https://keys.attacker.example/k", max_retries=0)
    assert [d.status for d in result.deliveries] == [401]
    assert HullNotification.objects.count() == 0
    assert hull_sandbox.calls("rest") == []


def test_connector_requested_extract_is_delivered_to_its_batch_url(connector, hull_sandbox, monkeypatch, django_capture_on_commit_callbacks):
    from sync.outgoing import exports

    chunks: list = []
    monkeypatch.setattr(exports, "_sync_chunk", lambda connector, messages, notification: chunks.append(messages))
    hull_sandbox.enable_extracts()
    pro = hull_sandbox.add_segment("Pro", rule={"attribute": "traits_plan", "equals": "pro"})
    hull_sandbox.add_user({"email": "pro@acme.com"}, {"plan": "pro"})
    hull_sandbox.add_user({"email": "free@acme.com"}, {"plan": "free"})
    url = (
        f"https://connector.example.com/hull/acme/batch?ship={connector.hull_id}&organization=acme.hullapp.io"
        f"&secret={connector.hull_secret}&segment_id={pro.hull_id}"
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = HullClient.for_connector(connector).post("extract/user_reports", {"query": {}, "format": "json", "url": url, "fields": []})
    assert answer == {"status": "ok", "delivered": 200, "entities": 1}
    [[message]] = chunks
    assert message.user["email"] == "pro@acme.com"
    assert pro.hull_id in message.segment_ids


def test_a_new_segment_takes_in_existing_users(connector, hull_sandbox):
    hull_sandbox.add_user({"email": "pro@acme.com"}, {"plan": "pro"})
    segment = hull_sandbox.add_segment("Pro", rule={"attribute": "traits_plan", "equals": "pro"})
    assert hull_sandbox.user(email="pro@acme.com")["segment_ids"] == [segment.hull_id]
