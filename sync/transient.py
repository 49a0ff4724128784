"""Failures of the infrastructure, not of the entity: the work waits and is retried.

The database going away (a restart, a failover, "database is locked" on SQLite) raises
OperationalError or InterfaceError from any query. Caught per entity, it would be written down as
that entity's error (if the write even worked) and the entity would never be synced. Instead the
task bodies treat it like an Intercom outage: the work goes back to pending with a retry scheduled
(webhook deliveries give up after their usual 5 attempts, failed and replayable), and when even
that cannot be written, the exception leaves the task and the stale-work sweep
(`sync.services.replay.stale_work_requeue`) enqueues the work again once the database answers.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import InterfaceError, OperationalError

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
DATABASE_RETRY_DELAY = timedelta(seconds=30)
