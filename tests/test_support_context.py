"""support context in Hull, from Intercom's conversation webhooks (Intercom in, Hull sandbox out)
and rebuilt from Intercom's conversation search (contract-checked sandbox)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from sync.models import SupportConversation, SyncLog
from webhooks.intercom_auth import intercom_signature

SECRET = "sandbox-client-secret"
T0 = 1_764_000_000


def conversation(conversation_id: str, contact: dict, *, created_at: int, state: str = "open", **extra) -> dict:
    item = {
        "type": "conversation",
        "id": conversation_id,
        "created_at": created_at,
        "updated_at": extra.pop("updated_at", created_at),
        "waiting_since": None,
        "snoozed_until": None,
        "open": state != "closed",
        "state": state,
        "read": True,
        "priority": "not_priority",
        "admin_assignee_id": 991267715,
        "team_assignee_id": None,
        "title": None,
        "tags": {"type": "tag.list", "tags": []},
        "source": {"type": "conversation", "id": f"src-{conversation_id}", "delivered_as": "customer_initiated", "subject": "",
                   "body": "Hello", "author": {"type": "user", "id": contact["id"], "name": "Jane", "email": contact.get("email") or ""},
                   "attachments": [], "url": None, "redacted": False},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact["id"], "external_id": contact.get("external_id")}]},
        "teammates": {"type": "admin.list", "teammates": []},
        "custom_attributes": {},
    }
    item.update(extra)
    return item


def webhook(client, connector, topic: str, item: dict, created_at: int, run) -> None:
    body = json.dumps({
        "type": "notification_event", "app_id": "ws_acme", "data": {"type": "notification_event_data", "item": item},
        "links": {}, "id": f"notif_{topic}_{created_at}", "topic": topic, "delivery_status": "pending",
        "delivery_attempts": 1, "delivered_at": 0, "first_sent_at": created_at, "created_at": created_at, "self": None,
    }).encode()
    with run(execute=True):
        response = client.post(f"/intercom/{connector.slug}/webhooks", data=body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE=intercom_signature(SECRET, body))
    assert response.status_code == 200


@pytest.fixture
def support(connector):
    connector.support_context_traits = True
    connector.incoming_events = ["conversation.*"]
    connector.save()
    return connector


def test_conversation_webhooks_keep_the_persons_support_traits_current_in_hull(
    client, support, intercom_sandbox, hull_sandbox, django_capture_on_commit_callbacks
):
    jane = intercom_sandbox.add_contact(role="user", email="jane@acme.com", external_id="u-jane")
    run = django_capture_on_commit_callbacks
    first = conversation("601", jane, created_at=T0)
    webhook(client, support, "conversation.user.created", first, T0, run)
    webhook(client, support, "conversation.admin.replied", first, T0 + 300, run)  # 1.x-like: no statistics
    second = conversation("602", jane, created_at=T0 + 1000)
    webhook(client, support, "conversation.user.created", second, T0 + 1000, run)

    user = hull_sandbox.user(external_id="u-jane")
    assert user["traits_intercom_user/open_conversations"] == 2
    assert user["traits_intercom_user/first_admin_reply_seconds"] == 300
    assert user["traits_intercom_user/last_conversation_at"].startswith("2025-11-24T")

    webhook(client, support, "conversation.admin.closed", first, T0 + 2000, run)
    rated = conversation("601", jane, created_at=T0, state="closed",
                         conversation_rating={"rating": 2, "remark": "Slow", "created_at": T0 + 2100, "updated_at": T0 + 2100})
    webhook(client, support, "conversation.rating.added", rated, T0 + 2100, run)
    webhook(client, support, "conversation.user.replied", first, T0 + 100, run)  # a late redelivery of older news

    user = hull_sandbox.user(external_id="u-jane")
    assert user["traits_intercom_user/open_conversations"] == 1  # the old reply did not reopen 601
    assert user["traits_intercom_user/last_conversation_rating"] == 2
    assert user["traits_intercom_user/last_conversation_remark"] == "Slow"
    row = SyncLog.objects.filter(connector=support, action="incoming.user.success").first()
    assert row.message.startswith("Support context (") and "1 open conversation(s), last rating 2" in row.message


def test_the_rebuild_reads_intercoms_conversation_search_with_statistics_and_rating(
    support, intercom_sandbox, hull_sandbox, capsys
):
    jane = intercom_sandbox.add_contact(role="user", email="jane@acme.com", external_id="u-jane")
    bob = intercom_sandbox.add_contact(role="lead", email="bob@acme.com")
    intercom_sandbox.add_conversation(conversation(
        "701", jane, created_at=T0, state="closed",
        statistics={"type": "conversation_statistics", "first_admin_reply_at": T0 + 45},
        conversation_rating={"rating": 5, "remark": "Perfect", "created_at": T0 + 900, "updated_at": T0 + 900},
    ))
    intercom_sandbox.add_conversation(conversation("702", jane, created_at=T0 + 5000, state="snoozed"))
    intercom_sandbox.add_conversation(conversation("703", bob, created_at=T0 + 6000))
    SupportConversation.objects.create(connector=support, conversation_id="701", contact_id=jane["id"], state="open")  # stale

    call_command("rebuild_support_context", "--connector", "acme")

    assert "3 conversation(s) read, traits sent for 2 person(s)" in capsys.readouterr().out
    assert [c.path for c in intercom_sandbox.calls if c.method == "POST"] == ["/conversations/search"]
    user = hull_sandbox.user(email="jane@acme.com")
    assert user["traits_intercom_user/open_conversations"] == 1  # 702 snoozed; 701 closed, as Intercom says
    assert user["traits_intercom_user/last_conversation_rating"] == 5
    assert user["traits_intercom_user/first_admin_reply_seconds"] == 45
    lead = hull_sandbox.user(email="bob@acme.com")
    assert lead["traits_intercom_lead/open_conversations"] == 1


def test_the_sandbox_refuses_a_conversation_search_field_it_does_not_model(intercom_sandbox):
    from sync.intercom.errors import IntercomApiError

    client = intercom_sandbox.client()
    with pytest.raises(IntercomApiError) as error:
        client.search_conversations_page({"field": "source.body", "operator": "~", "value": "x"})
    assert error.value.status == 400
    page = client.search_conversations_page({"field": "open", "operator": "=", "value": True})
    assert page["type"] == "conversation.list" and page["total_count"] == 0
