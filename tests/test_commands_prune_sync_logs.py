"""`manage.py prune_sync_logs`: retention in batches, unfinished rows kept, failure messages."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sync.models import DeliveryStatus, HullNotification, SyncLog, WebhookDelivery
from sync.services.ops import sync_logs_prune


def run(*args: str) -> str:
    out = StringIO()
    call_command("prune_sync_logs", *args, stdout=out)
    return out.getvalue()


def age(queryset, days: float, field: str) -> None:
    queryset.update(**{field: timezone.now() - timedelta(days=days)})


@pytest.fixture
def old_and_new_rows(connector):
    for n in range(5):
        SyncLog.objects.create(connector=connector, direction="incoming", entity="user", action="incoming.user.success", status="success")
        WebhookDelivery.objects.create(connector=connector, notification_id=f"notif_{n}", topic="user.created", status=DeliveryStatus.DONE)
        HullNotification.objects.create(connector=connector, notification_id=f"hull-{n}", channel="user:update", status=DeliveryStatus.DONE)
    age(SyncLog.objects.filter(pk__in=SyncLog.objects.order_by("pk").values("pk")[:3]), 40, "created_at")
    age(WebhookDelivery.objects.filter(notification_id__in=["notif_0", "notif_1", "notif_2"]), 20, "received_at")
    age(HullNotification.objects.filter(notification_id__in=["hull-0", "hull-1"]), 20, "received_at")
    # Old but never processed: acknowledged to Intercom, so it must survive any pruning.
    WebhookDelivery.objects.filter(notification_id="notif_2").update(status=DeliveryStatus.PENDING)
    return connector


def test_default_retention_is_each_models_own_period(old_and_new_rows):
    output = run()
    assert "Pruned 3 sync logs, 2 webhook deliveries, 2 hull notifications." in output
    assert SyncLog.objects.count() == 2
    assert set(WebhookDelivery.objects.values_list("notification_id", flat=True)) == {"notif_2", "notif_3", "notif_4"}
    assert HullNotification.objects.count() == 3


def test_older_than_applies_to_every_log_and_deletes_in_batches_with_progress(old_and_new_rows):
    output = run("--older-than", "10", "--batch-size", "1")
    assert "  sync logs: 1 deleted so far" in output and "  sync logs: 3 deleted so far" in output
    assert "Pruned 3 sync logs, 2 webhook deliveries, 2 hull notifications." in output


def test_zero_days_prunes_everything_finished(old_and_new_rows):
    run("--older-than", "0")
    assert list(WebhookDelivery.objects.values_list("notification_id", flat=True)) == ["notif_2"]
    assert SyncLog.objects.count() == 0 and HullNotification.objects.count() == 0


def test_a_sync_log_pointing_at_a_pruned_delivery_survives_it(connector):
    delivery = WebhookDelivery.objects.create(connector=connector, notification_id="n", topic="user.created", status=DeliveryStatus.DONE)
    log = SyncLog.objects.create(connector=connector, direction="incoming", entity="user", action="a", status="success", delivery=delivery)
    age(WebhookDelivery.objects.all(), 20, "received_at")
    assert sync_logs_prune()["webhook deliveries"] == 1
    log.refresh_from_db()
    assert log.delivery is None


def test_only_one_connectors_rows(old_and_new_rows):
    from sync.services.connectors import connector_create

    other = connector_create(name="Other", slug="other")
    SyncLog.objects.create(connector=other, direction="incoming", entity="user", action="a", status="success")
    age(SyncLog.objects.filter(connector=other), 40, "created_at")
    run("--connector", "other")
    assert not SyncLog.objects.filter(connector=other).exists()
    assert SyncLog.objects.filter(connector=old_and_new_rows).count() == 5


def test_negative_days_is_a_clear_error(db):
    with pytest.raises(CommandError, match="--older-than must be a number of days"):
        run("--older-than", "-1")


def test_an_unknown_connector_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No connector with slug 'nope'"):
        run("--connector", "nope")
