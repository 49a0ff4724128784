"""The processing of received Intercom webhook deliveries, enqueued in batches off the request.

The request stores the delivery (committed before its 200) and hands the row's id to this web
process's queue; one background thread enqueues a single `process_webhook_deliveries` task per
batch: the ids gathered during BATCH_WINDOW seconds after the first one, at most BATCH_SIZE. A
django-q2 task per delivery cost a third of the request's CPU once the database connection was
kept (pickling and signing the task, a second INSERT and COMMIT: docs/receive-path.md).

A process that dies with ids not yet enqueued leaves their deliveries `pending` in the database:
the stale-work sweep (sync/work.py `stale_work_requeue`, every 5 minutes, for work older than
STALE_WORK_AFTER_SECONDS) enqueues them again. Late, never lost. With django-q2 in sync mode
(tests) nothing is batched: each delivery is enqueued, and run, when its row commits.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from django.db import close_old_connections, connection

logger = logging.getLogger("webhooks.delivery_queue")

BATCH_WINDOW = 0.05  # seconds a batch waits for more deliveries after its first
BATCH_SIZE = 100  # deliveries per task at most


_sqlite_writes = threading.Lock()


@contextlib.contextmanager
def sqlite_write_lock() -> Iterator[None]:
    """On SQLite, this process's threads write one at a time (elsewhere: no lock).

    SQLite has one writer at a time, and a writer that finds the file locked sleeps in steps of
    up to 100 ms before it tries again: with 4 threads per process that sleep was the webhook
    endpoint's p99. Threads queued on a mutex are woken as soon as the writer before them is done;
    only the web processes' writers still meet in SQLite.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_writes:
        yield


def _enqueue_batch(delivery_ids: list[int]) -> None:
    """One task for the batch, from the sender thread (its own database connection)."""
    from sync.work import PROCESS_WEBHOOK_DELIVERIES, enqueue_now

    close_old_connections()  # a connection the database dropped is not reused
    try:
        with sqlite_write_lock():
            enqueue_now(PROCESS_WEBHOOK_DELIVERIES, list(delivery_ids), group="intercom-webhooks")
    except Exception:
        connection.close()
        raise


class DeliveryQueue:
    """Ids of stored deliveries, enqueued as one task per batch by this process's sender thread."""

    def __init__(
        self, *, window: float = BATCH_WINDOW, size: int = BATCH_SIZE, send: Callable[[list[int]], None] = _enqueue_batch
    ) -> None:
        self.window = window
        self.size = max(1, size)
        self.send = send
        self._cond = threading.Condition()
        self._ids: list[int] = []
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._exit_hook = False

    def add(self, delivery_id: int) -> None:
        with self._cond:
            self._ids.append(delivery_id)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._start()
            self._cond.notify()

    def flush(self) -> None:
        """Enqueue every id waiting now (the process is exiting)."""
        while True:
            with self._cond:
                batch, self._ids = self._ids[: self.size], self._ids[self.size :]
            if not batch:
                return
            self._send(batch)

    def _start(self) -> None:
        # After a fork the parent's thread does not exist in this process: start one of its own.
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="webhook-delivery-queue", daemon=True)
        self._thread.start()
        if not self._exit_hook:
            atexit.register(self.flush)  # gunicorn's graceful worker exit runs atexit hooks
            self._exit_hook = True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ids:
                    self._cond.wait()
                deadline = time.monotonic() + self.window
                while len(self._ids) < self.size and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch, self._ids = self._ids[: self.size], self._ids[self.size :]
            self._send(batch)

    def _send(self, batch: list[int]) -> None:
        try:
            self.send(batch)
        except Exception:  # noqa: BLE001 - the rows are stored: the stale-work sweep enqueues them later
            logger.exception("intercom.webhook.enqueue-failed", extra={"deliveries": len(batch)})


deliveries = DeliveryQueue()


def delivery_enqueue() -> Callable[[int], None] | None:
    """What the receive view hands `webhook_delivery_receive`: this process's batch queue, or None
    (each delivery enqueued when it commits) when django-q2 runs tasks inline."""
    from django_q.conf import Conf

    return None if Conf.SYNC else deliveries.add
