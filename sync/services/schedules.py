"""The deployment-wide django-q2 schedules (per-connector fetch schedules live in sync.incoming.fetch)."""

from __future__ import annotations

from datetime import timedelta

from sync.work import CHECK_ALERTS, PRUNE_SYNC_LOGS, REPORT_STATUSES, REQUEUE_STALE_WORK, schedule_every

# name -> (task, minutes between runs)
GLOBAL_SCHEDULES: dict[str, tuple[str, int]] = {
    "prune-sync-logs": (PRUNE_SYNC_LOGS, 24 * 60),  # once a day
    "hull-status-report": (REPORT_STATUSES, 5),  # Hull polls /status every 5 minutes
    "requeue-stale-work": (REQUEUE_STALE_WORK, 5),  # work a dead worker left behind
    "connector-alerts": (CHECK_ALERTS, 10),  # error state, failure threshold, hourly digests
}


def global_schedules_update() -> list[str]:
    """Create or update the retention and status schedules; idempotent (keyed by name)."""
    for name, (func, minutes) in GLOBAL_SCHEDULES.items():
        schedule_every(func, name=name, minutes=minutes, first_run=timedelta(minutes=1))
    return list(GLOBAL_SCHEDULES)
