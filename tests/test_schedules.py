"""Deployment-wide schedules: retention and status reporting run by themselves once set up."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from sync.models import SyncLog
from sync.synclog import log_outcome
from sync.tasks import prune_sync_logs, report_statuses


def test_setup_schedules_creates_retention_and_status_schedules_once(connector):
    call_command("setup_schedules")
    call_command("setup_schedules")
    prune = Schedule.objects.get(name="prune-sync-logs")
    status = Schedule.objects.get(name="hull-status-report")
    assert prune.func == "sync.tasks.prune_sync_logs" and prune.minutes == 24 * 60
    assert status.func == "sync.tasks.report_statuses" and status.minutes == 5
    assert Schedule.objects.filter(name__in=["prune-sync-logs", "hull-status-report"]).count() == 2


def test_the_prune_task_deletes_rows_past_retention_and_keeps_recent_ones(connector):
    old = log_outcome(connector, direction="incoming", entity="user", status="success", action="incoming.user.success")
    SyncLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - SyncLog.RETENTION_PERIOD - timedelta(days=1))
    recent = log_outcome(connector, direction="incoming", entity="user", status="success", action="incoming.user.success")
    prune_sync_logs()
    assert list(SyncLog.objects.values_list("pk", flat=True)) == [recent.pk]


def test_the_status_task_puts_each_connector_status_to_hull(connector, hull_sandbox):
    from sync.services.hull_status import hull_status

    assert hull_sandbox.status(connector) is None
    report_statuses()
    reported = hull_sandbox.status(connector)
    expected = hull_status(connector=connector)
    assert reported == {"status": expected.status, "messages": list(expected.messages)}


def test_setup_schedules_creates_the_stale_work_sweep(connector):
    call_command("setup_schedules")
    assert Schedule.objects.get(name="requeue-stale-work").func == "sync.tasks.requeue_stale_work"


def test_open_work_left_by_a_dead_worker_is_processed_by_the_sweep(connector, monkeypatch, django_capture_on_commit_callbacks):
    from sync.models import DeliveryStatus, HullNotification, WebhookDelivery
    from sync.services.replay import stale_work_requeue

    processed = []
    monkeypatch.setattr("sync.tasks.process_notification", lambda pk: processed.append(("notification", pk)))
    monkeypatch.setattr("sync.tasks.process_webhook_delivery", lambda pk: processed.append(("delivery", pk)))
    long_ago = timezone.now() - timedelta(hours=1)
    stuck = HullNotification.objects.create(connector=connector, notification_id="n-1", channel="user:update", status=DeliveryStatus.PROCESSING)
    fresh = HullNotification.objects.create(connector=connector, notification_id="n-2", channel="user:update")
    done = HullNotification.objects.create(connector=connector, notification_id="n-3", channel="user:update", status=DeliveryStatus.DONE)
    waiting = WebhookDelivery.objects.create(connector=connector, notification_id="w-1", topic="user.created")
    HullNotification.objects.filter(pk__in=[stuck.pk, done.pk]).update(received_at=long_ago)
    WebhookDelivery.objects.filter(pk=waiting.pk).update(received_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert stale_work_requeue(older_than=timedelta(minutes=10)) == (1, 1)

    assert sorted(processed) == [("delivery", waiting.pk), ("notification", stuck.pk)]
    stuck.refresh_from_db()
    assert stuck.status == DeliveryStatus.PENDING and fresh.pk not in [pk for _, pk in processed]


def test_a_paused_connectors_open_work_is_not_requeued(connector):
    from sync.models import HullNotification
    from sync.services.replay import stale_work_requeue

    HullNotification.objects.create(connector=connector, notification_id="n-1", channel="user:update")
    HullNotification.objects.update(received_at=timezone.now() - timedelta(hours=1))
    connector.is_active = False
    connector.save()
    assert stale_work_requeue(older_than=timedelta(minutes=10)) == (0, 0)


def test_the_sweep_leaves_work_in_progress_and_work_waiting_for_its_resume_alone(connector, monkeypatch, django_capture_on_commit_callbacks):
    """Old sweep: picked rows by `received_at` alone, so a live export went back to pending and ran twice."""
    from sync.models import DeliveryStatus, HullNotification, WebhookDelivery
    from sync.services.replay import stale_work_requeue

    processed = []
    monkeypatch.setattr("sync.tasks.process_notification", lambda pk: processed.append(("notification", pk)))
    monkeypatch.setattr("sync.tasks.process_export", lambda pk: processed.append(("export", pk)))
    monkeypatch.setattr("sync.tasks.process_webhook_delivery", lambda pk: processed.append(("delivery", pk)))
    long_ago = timezone.now() - timedelta(hours=1)
    running = HullNotification.objects.create(
        connector=connector, notification_id="export:1", channel="user:update", is_export=True, status=DeliveryStatus.PROCESSING,
        lease_owner="worker-a", lease_until=timezone.now() + timedelta(minutes=2),
    )
    waiting = WebhookDelivery.objects.create(
        connector=connector, notification_id="w-1", topic="user.created", resume_at=timezone.now() + timedelta(minutes=20)
    )
    HullNotification.objects.update(received_at=long_ago)
    WebhookDelivery.objects.update(received_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert stale_work_requeue(older_than=timedelta(minutes=10)) == (0, 0)

    assert processed == []
    running.refresh_from_db()
    assert running.status == DeliveryStatus.PROCESSING and running.lease_owner == "worker-a"
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.PENDING  # left to its scheduled resume
