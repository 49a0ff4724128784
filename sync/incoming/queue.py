"""Enqueueing the incoming tasks: kept for its callers; the one implementation is `sync.work.enqueue_now`."""

from __future__ import annotations

from typing import Any


def enqueue_task(func: str, *args: Any, group: str) -> None:
    """`sync.work.enqueue_now` (call it from `transaction.on_commit`, or use `sync.work.enqueue`)."""
    from sync.work import enqueue_now

    enqueue_now(func, *args, group=group)
