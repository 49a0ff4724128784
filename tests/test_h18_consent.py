"""Issue 18.5: Hull consent attributes -> Intercom subscription types (Hull sandbox in, Intercom sandbox out)."""

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
