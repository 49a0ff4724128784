"""`manage.py replay`: failed deliveries/notifications in a time range go back to the queue."""

from __future__ import annotations

from datetime import datetime, timezone
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sync.models import DeliveryStatus, HullNotification, WebhookDelivery


def run(*args: str) -> str:
    out = StringIO()
    call_command("replay", *args, stdout=out)
    return out.getvalue()


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def failures(connector):
    for day, status in ((1, DeliveryStatus.FAILED), (5, DeliveryStatus.FAILED), (9, DeliveryStatus.FAILED), (5, DeliveryStatus.DONE)):
        delivery = WebhookDelivery.objects.create(
            connector=connector, notification_id=f"notif_{day}_{status}", topic="user.created", status=status, error="boom"
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=at(day))
        notification = HullNotification.objects.create(
            connector=connector, notification_id=f"hull_{day}_{status}", channel="user:update", status=status, processed_messages=[0]
        )
        HullNotification.objects.filter(pk=notification.pk).update(received_at=at(day))
    return connector


@pytest.fixture
def enqueued(monkeypatch):
    """The task calls replay enqueues (after commit), without running them."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr("sync.work.enqueue_now", lambda task, pk, **kw: calls.append((task, pk)))
    return calls


def test_failed_deliveries_in_the_range_are_re_enqueued(failures, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        output = run("--connector", "acme", "--kind", "deliveries", "--since", "2026-11-02", "--until", "2026-11-08")
    assert "Replayed 1 failed Intercom webhook deliveries of acme." in output
    replayed = WebhookDelivery.objects.get(notification_id=f"notif_5_{DeliveryStatus.FAILED}")
    assert (replayed.status, replayed.error) == (DeliveryStatus.PENDING, "")
    assert enqueued == [("sync.tasks.process_webhook_delivery", replayed.pk)]
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).count() == 2


def test_failed_notifications_without_a_range_are_all_re_enqueued(failures, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        output = run("--connector", "acme", "--kind", "notifications")
    assert "3/3 re-enqueued" in output
    assert {task for task, _ in enqueued} == {"sync.tasks.process_notification"} and len(enqueued) == 3
    assert not HullNotification.objects.filter(status=DeliveryStatus.FAILED).exists()
    assert HullNotification.objects.get(notification_id=f"hull_1_{DeliveryStatus.FAILED}").processed_messages == []


def test_a_dry_run_only_counts(failures, enqueued):
    output = run("--connector", "acme", "--kind", "deliveries", "--since", "2026-11-05T00:00:00Z", "--dry-run")
    assert output.strip() == "2 failed Intercom webhook deliveries would be replayed."
    assert enqueued == [] and WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).count() == 3


def test_nothing_to_replay_is_not_an_error(connector, enqueued):
    assert "Replayed 0 failed Hull notifications of acme." in run("--connector", "acme", "--kind", "notifications")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--connector", "nope", "--kind", "deliveries"], "No connector with slug 'nope'"),
        (["--connector", "acme", "--kind", "deliveries", "--since", "yesterday"], "--since 'yesterday' is not an ISO-8601 date"),
        (["--connector", "acme", "--kind", "deliveries", "--since", "2026-11-05", "--until", "2026-11-01"], "--since must be before --until"),
    ],
)
def test_failures_have_clear_messages(connector, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_an_unknown_kind_is_refused(connector):
    with pytest.raises(CommandError, match="invalid choice: 'webhooks'"):
        run("--connector", "acme", "--kind", "webhooks")
