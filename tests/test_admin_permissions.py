"""Who may do what: connector editors configure and replay, log readers only read logs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from sync.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def groups():
    call_command("setup_groups")
    return {g.name: g for g in Group.objects.all()}


def member(django_user_model, client, group: Group):
    user = django_user_model.objects.create_user(group.name.replace(" ", "-"), password="pw", is_staff=True)
    user.groups.add(group)
    client.force_login(user)
    return client


def test_setup_groups_is_idempotent(groups):
    call_command("setup_groups")
    assert sorted(Group.objects.values_list("name", flat=True)) == ["Connector editors", "Log readers"]
    readers = set(groups["Log readers"].permissions.values_list("codename", flat=True))
    assert readers == {"view_synclog", "view_hullnotification", "view_webhookdelivery", "view_identitylink", "view_synccursor", "view_hullsegment"}


def test_a_connector_editor_can_change_a_connector_and_see_its_dashboard(client, django_user_model, groups, connector, intercom_sandbox):
    editor = member(django_user_model, client, groups["Connector editors"])
    assert editor.get(reverse("admin:sync_connector_change", args=[connector.pk])).status_code == 200
    assert editor.get(reverse("admin:sync_connector_dashboard", args=[connector.pk])).status_code == 200
    assert editor.get(reverse("admin:sync_connector_run_action", args=[connector.pk, "fetch_all_users"])).status_code == 200
    assert editor.get(reverse("admin:sync_connector_delete", args=[connector.pk])).status_code == 403


def test_a_connector_editor_may_replay_deliveries(client, django_user_model, groups, connector):
    WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", status=DeliveryStatus.FAILED)
    editor = member(django_user_model, client, groups["Connector editors"])
    html = editor.get(reverse("admin:sync_webhookdelivery_changelist")).content.decode()
    assert 'value="replay_deliveries"' in html


def test_a_log_reader_reads_logs_but_not_connectors(client, django_user_model, groups, connector):
    reader = member(django_user_model, client, groups["Log readers"])
    assert reader.get(reverse("admin:sync_synclog_changelist")).status_code == 200
    assert reader.get(reverse("admin:sync_webhookdelivery_changelist")).status_code == 200
    assert reader.get(reverse("admin:sync_connector_change", args=[connector.pk])).status_code == 403
    assert reader.get(reverse("admin:sync_connector_dashboard", args=[connector.pk])).status_code == 403
    assert reader.get(reverse("admin:sync_connector_run_action", args=[connector.pk, "fetch_all_users"])).status_code == 403


def test_a_log_reader_cannot_replay(client, django_user_model, groups, connector):
    delivery = WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", status=DeliveryStatus.FAILED)
    reader = member(django_user_model, client, groups["Log readers"])
    html = reader.get(reverse("admin:sync_webhookdelivery_changelist")).content.decode()
    assert "replay_deliveries" not in html
    reader.post(reverse("admin:sync_webhookdelivery_changelist"), {"action": "replay_deliveries", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_anonymous_visitors_are_sent_to_the_login_page(client, connector):
    response = client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
