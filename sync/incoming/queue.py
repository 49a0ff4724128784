"""Enqueueing the incoming tasks (call it from `transaction.on_commit`)."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue_task(func: str, *args: Any, group: str) -> None:
    """`async_task`, inside an atomic block when a worker will run it.

    Outside an atomic block django-q2's ORM broker calls `close_old_connections()` on every
    enqueue, so with CONN_MAX_AGE=0 (our SQLite setting) each webhook reopened the database:
    85% of a delivery's time (bench/incoming.py). In sync mode (tests) the task runs inline and
    must not share that block, or a failing task would roll back its own failure record.
    """
    from django_q.conf import Conf
    from django_q.tasks import async_task

    if Conf.SYNC:
        async_task(func, *args, group=group)
        return
    with transaction.atomic():
        async_task(func, *args, group=group)
