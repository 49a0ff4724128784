"""The deployment-wide django-q2 schedules (per-connector fetch schedules live in sync.incoming.fetch)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

# name -> (task, minutes between runs)
GLOBAL_SCHEDULES: dict[str, tuple[str, int]] = {
    "prune-sync-logs": ("sync.tasks.prune_sync_logs", 24 * 60),  # once a day
    "hull-status-report": ("sync.tasks.report_statuses", 5),  # Hull polls /status every 5 minutes
    "requeue-stale-work": ("sync.tasks.requeue_stale_work", 5),  # work a dead worker left behind
    "connector-alerts": ("sync.tasks.check_alerts", 10),  # error state, failure threshold, hourly digests
}


def global_schedules_update() -> list[str]:
    """Create or update the retention and status schedules; idempotent (keyed by name)."""
    from django_q.models import Schedule

    for name, (func, minutes) in GLOBAL_SCHEDULES.items():
        schedule, created = Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
        if created:
            schedule.next_run = timezone.now() + timedelta(minutes=1)
            schedule.save(update_fields=["next_run"])
    return list(GLOBAL_SCHEDULES)
