"""Webhook deliveries are stored before the 200 and enqueued in batches by the web process
(webhooks/delivery_queue.py), processed by `sync.tasks.process_webhook_deliveries`."""

from __future__ import annotations

import threading
import time

import pytest

from sync import tasks
from sync.models import DeliveryStatus, SyncLog, WebhookDelivery
from tests.incoming_support import firehose, intercom  # noqa: F401
from tests.test_incoming_webhook_endpoint import envelope, post
from tests.test_webhook_topics import SECRET, fixture_bytes
from webhooks import delivery_queue
from webhooks.delivery_queue import DeliveryQueue
from webhooks.intercom_auth import intercom_signature


class Sent:
    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_first = fail_first
        self.event = threading.Event()

    def __call__(self, ids: list[int]) -> None:
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("broker down")
        self.batches.append(list(ids))
        self.event.set()


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_deliveries_received_together_are_one_task():
    sent = Sent()
    queue = DeliveryQueue(window=0.3, send=sent)
    for delivery_id in range(1, 6):
        queue.add(delivery_id)
    wait_for(lambda: sent.batches)
    time.sleep(0.1)
    assert sent.batches == [[1, 2, 3, 4, 5]]


def test_a_batch_holds_at_most_size_deliveries():
    sent = Sent()
    queue = DeliveryQueue(window=0.3, size=2, send=sent)
    for delivery_id in range(1, 6):
        queue.add(delivery_id)
    wait_for(lambda: sum(len(b) for b in sent.batches) == 5)
    assert sent.batches == [[1, 2], [3, 4], [5]]


def test_a_failed_enqueue_is_logged_and_the_next_batches_still_go(caplog):
    sent = Sent(fail_first=True)
    queue = DeliveryQueue(window=0.01, send=sent)
    queue.add(1)  # lost from memory: its row stays pending for the stale-work sweep
    wait_for(lambda: "intercom.webhook.enqueue-failed" in caplog.text)
    queue.add(2)
    wait_for(lambda: sent.batches)
    assert sent.batches == [[2]]


def test_flush_sends_what_waits_when_the_process_exits():
    sent = Sent()
    queue = DeliveryQueue(window=60, send=sent)
    queue._ids = [7, 8]  # noqa: SLF001 - as if added, before the sender thread took them
    queue.flush()
    assert sent.batches == [[7, 8]]


def test_the_endpoint_stores_the_delivery_and_hands_its_id_to_the_queue(client, connector, monkeypatch, django_capture_on_commit_callbacks):
    from django_q.conf import Conf

    queued: list[int] = []
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(delivery_queue.deliveries, "add", queued.append)
    monkeypatch.setattr("sync.incoming.webhooks.unit_enqueue", lambda unit: pytest.fail("no task per delivery"))
    body = fixture_bytes("user_created")
    with django_capture_on_commit_callbacks(execute=True):  # the id is handed over once the row commits
        response = post(client, body, intercom_signature(SECRET, body))
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert queued == [delivery.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, body, intercom_signature(SECRET, body)).json()["duplicate"] is True
    assert queued == [delivery.pk]  # a redelivery enqueues nothing


def test_a_batch_task_runs_every_delivery_and_raises_the_first_failure_last(connector, intercom, firehose, monkeypatch):
    first = WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", payload={})
    second = WebhookDelivery.objects.create(connector=connector, notification_id="n2", topic="user.created", payload={})
    third = WebhookDelivery.objects.create(connector=connector, notification_id="n3", topic="user.created", payload={})
    ran: list[int] = []

    def process(delivery_id: int) -> None:
        ran.append(delivery_id)
        if delivery_id == second.pk:
            raise RuntimeError("a bug in one delivery")

    monkeypatch.setattr(tasks, "process_webhook_delivery", process)
    with pytest.raises(RuntimeError, match="a bug in one delivery"):
        tasks.process_webhook_deliveries([first.pk, second.pk, third.pk])
    assert ran == [first.pk, second.pk, third.pk]


def test_a_batch_task_processes_real_deliveries(client, connector, intercom, firehose, django_capture_on_commit_callbacks):
    bodies = [envelope("contact.user.created", f"notif_{n}", type="contact", id=f"c{n}", role="user", email=f"u{n}@example.com") for n in range(2)]
    for body in bodies:
        with django_capture_on_commit_callbacks(execute=False):  # stored, not processed
            assert post(client, body, intercom_signature(SECRET, body)).status_code == 200
    ids = list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))
    tasks.process_webhook_deliveries(ids)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DONE}
    assert SyncLog.objects.filter(action="incoming.user.success").count() == 2
