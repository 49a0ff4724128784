"""Hull consent attributes -> Intercom subscription types (Hull sandbox in, Intercom sandbox out)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from sync.models import SyncLog


@pytest.fixture
def consent(connector, hull_sandbox, intercom_sandbox):
    segment = hull_sandbox.add_segment("Customers", rule={"attribute": "traits_plan", "equals": "pro"})
    connector.synchronized_user_segments = [segment.hull_id]
    connector.tag_users = False
    connector.consent_mappings = [
        {"hull_attribute": "newsletter_consent", "subscription_type": "Newsletters"},  # opt-out type: subscribed by default
        {"hull_attribute": "beta_consent", "subscription_type": "Beta programme"},  # opt-in type
    ]
    connector.save()
    intercom_sandbox.add_subscription_type("Newsletters", consent_type="opt_out")
    intercom_sandbox.add_subscription_type("Beta programme", consent_type="opt_in")
    return connector


def test_consent_goes_to_intercom_on_first_push_and_each_change(consent, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks):
    run = django_capture_on_commit_callbacks
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "pro", "newsletter_consent": False, "beta_consent": True})
    with run(execute=True):
        hull_sandbox.notify_users(consent)
    [contact] = intercom_sandbox.contacts(role="user")
    # Opted out of the newsletter (attached to the opt-out type), opted in to the beta (attached to the opt-in type).
    assert intercom_sandbox.contact_subscriptions(contact["id"]) == ["Beta programme", "Newsletters"]
    row = SyncLog.objects.filter(connector=consent).first()
    assert row.status == "success" and "Newsletters: unsubscribed" in row.message and "Beta programme: subscribed" in row.message

    hull_sandbox.add_user({"email": "jane@acme.com"}, {"newsletter_consent": True, "beta_consent": False})  # only consent changed
    with run(execute=True):
        hull_sandbox.notify_users(consent)
    assert intercom_sandbox.contact_subscriptions(contact["id"]) == []  # both back to their defaults
    assert [c.method for c in intercom_sandbox.calls if "/subscriptions" in c.path][-2:] == ["DELETE", "DELETE"]
    row = SyncLog.objects.filter(connector=consent).first()
    assert (row.status, row.data["skipped_push"]) == ("success", "no_outgoing_attributes")
    assert "Newsletters: subscribed" in row.message


def test_an_unknown_subscription_type_is_an_error_that_says_what_to_fix(consent, hull_sandbox, intercom_sandbox, django_capture_on_commit_callbacks):
    consent.consent_mappings = [{"hull_attribute": "sms_consent", "subscription_type": "SMS offers"}]
    consent.save()
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"plan": "pro", "sms_consent": True})
    with django_capture_on_commit_callbacks(execute=True):
        hull_sandbox.notify_users(consent)
    row = SyncLog.objects.filter(connector=consent).first()
    assert "SMS offers: no such subscription type in Intercom" in row.message


def test_the_setting_is_validated(connector):
    connector.consent_mappings = [{"hull_attribute": "x"}]
    with pytest.raises(ValidationError):
        connector.full_clean()


# --- Intercom -> Hull -------------------------------------------------------------------------


def _granular(client, connector, topic, contact_id, created_at, run):
    import json

    from webhooks.intercom_auth import intercom_signature

    body = json.dumps({
        "type": "notification_event", "app_id": "ws_acme",
        "data": {"type": "notification_event_data", "item": {"type": "contact_subscription_change", "contact": {"type": "contact", "id": contact_id}}},
        "links": {}, "id": f"notif_{topic}_{created_at}", "topic": topic, "delivery_status": "pending",
        "delivery_attempts": 1, "delivered_at": 0, "first_sent_at": created_at, "created_at": created_at, "self": None,
    }).encode()
    with run(execute=True):
        response = client.post(f"/intercom/{connector.slug}/webhooks", data=body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE=intercom_signature("sandbox-client-secret", body))
    assert response.status_code == 200


def test_per_type_changes_in_intercom_come_back_as_hull_traits_and_one_event_per_change(
    client, connector, intercom_sandbox, hull_sandbox, django_capture_on_commit_callbacks
):
    connector.incoming_events = ["granular.*"]
    connector.save()
    newsletters = intercom_sandbox.add_subscription_type("Newsletters", consent_type="opt_out")
    intercom_sandbox.add_subscription_type("Beta programme", consent_type="opt_in")
    jane = intercom_sandbox.add_contact(role="user", email="jane@acme.com")
    api = intercom_sandbox.client()
    api.attach_subscription(jane["id"], newsletters["id"], "opt_out")  # Jane unsubscribes from newsletters in Intercom

    _granular(client, connector, "granular.unsubscribe", jane["id"], 1_764_000_000, django_capture_on_commit_callbacks)

    user = hull_sandbox.user(email="jane@acme.com")
    assert user["traits_intercom_user/subscription_newsletters"] is False
    assert user["traits_intercom_user/subscription_beta_programme"] is False
    events = hull_sandbox.events(email="jane@acme.com")
    assert sorted((e["event"], e["properties"]["subscription_type"]) for e in events) == [
        ("Subscription changed", "Beta programme"), ("Subscription changed", "Newsletters")
    ]  # first sight of both types

    api.detach_subscription(jane["id"], newsletters["id"])
    _granular(client, connector, "granular.subscribe", jane["id"], 1_764_000_100, django_capture_on_commit_callbacks)
    assert hull_sandbox.user(email="jane@acme.com")["traits_intercom_user/subscription_newsletters"] is True
    later = [e for e in hull_sandbox.events(email="jane@acme.com") if e not in events]
    assert [(e["properties"]["subscription_type"], e["properties"]["subscribed"]) for e in later] == [("Newsletters", True)]
    row = SyncLog.objects.filter(connector=connector).first()
    assert row.message == "Subscriptions from Intercom (granular.subscribe): Newsletters: subscribed"
