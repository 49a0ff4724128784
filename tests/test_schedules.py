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
    from sync.hull.status import hull_status

    assert hull_sandbox.status(connector) is None
    report_statuses()
    reported = hull_sandbox.status(connector)
    expected = hull_status(connector=connector)
    assert reported == {"status": expected.status, "messages": list(expected.messages)}
