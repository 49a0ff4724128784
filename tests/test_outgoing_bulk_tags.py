"""Users' tag adds shared between the threads of a batch (sync/outgoing/tags.py#BulkTags).

The thread tests use fakes (no database: in-memory SQLite cannot be shared between threads); the
sandbox tests keep every Intercom call on the main thread, the other thread only waits.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from sync.intercom.errors import IntercomNotFound, IntercomRateLimited
from sync.outgoing.context import TagCache, forget_tags
from sync.outgoing.tags import BulkTags


class FakeTags:
    def __init__(self) -> None:
        self.remembered: list[dict] = []

    def remember(self, tag: dict) -> None:
        self.remembered.append(tag)

    def ensure(self, name: str) -> str:
        return "7"

    def name_for(self, tag_id: str) -> str | None:
        return "Customers"


class FakeIntercom:
    def __init__(self, bulk_error: Exception | None = None, unknown: tuple[str, ...] = ()) -> None:
        self.bulk_calls: list[list[str]] = []
        self.single_calls: list[str] = []
        self.bulk_error = bulk_error
        self.unknown = unknown
        self.lock = threading.Lock()

    def tag_users(self, name: str, contact_ids: list[str]) -> dict:
        with self.lock:
            self.bulk_calls.append(sorted(contact_ids))
        if self.bulk_error is not None:
            raise self.bulk_error
        return {"type": "tag", "id": "7", "name": name}

    def tag_contact(self, contact_id: str, tag_id: str) -> dict:
        with self.lock:
            self.single_calls.append(contact_id)
        if contact_id in self.unknown:
            raise IntercomNotFound("User Not Found", status=404, code="not_found")
        return {"type": "tag", "id": tag_id}


def run_threads(bulk: BulkTags, contact_ids: list[str], name: str = "Customers") -> dict[str, object]:
    """One thread per contact, each adding `name`; returns contact -> its slot, or the exception raised."""
    outcome: dict[str, object] = {}
    barrier = threading.Barrier(len(contact_ids))

    def one(contact_id: str) -> None:
        with bulk.running():
            barrier.wait()  # all are running before any adds: they may all join one call
            try:
                [slot] = bulk.add(contact_id, [(name, None)])
                outcome[contact_id] = slot
            except Exception as exc:  # noqa: BLE001 - recorded for the assertions
                outcome[contact_id] = exc

    threads = [threading.Thread(target=one, args=(c,)) for c in contact_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return outcome


def test_the_threads_of_a_batch_share_one_call_per_tag():
    intercom = FakeIntercom()
    bulk = BulkTags(SimpleNamespace(intercom=intercom, tags=FakeTags()), linger=5.0)
    started = time.monotonic()
    outcome = run_threads(bulk, [f"c{n}" for n in range(6)])
    assert intercom.bulk_calls == [[f"c{n}" for n in range(6)]] and intercom.single_calls == []
    assert all(slot.error is None and slot.tag_id == "7" for slot in outcome.values())
    assert time.monotonic() - started < 4  # sent when everyone waited, not after the linger


def test_a_call_holds_at_most_size_contacts():
    intercom = FakeIntercom()
    bulk = BulkTags(SimpleNamespace(intercom=intercom, tags=FakeTags()), size=2, linger=5.0)
    run_threads(bulk, [f"c{n}" for n in range(5)])
    assert sorted(len(call) for call in intercom.bulk_calls) == [2, 2]
    assert len(intercom.single_calls) == 1  # the fifth alone: tagged the one-contact way


def test_one_message_at_a_time_never_waits_and_tags_its_contact_alone():
    intercom = FakeIntercom()
    bulk = BulkTags(SimpleNamespace(intercom=intercom, tags=FakeTags()), linger=60.0)
    started = time.monotonic()
    with bulk.running():
        [slot] = bulk.add("c1", [("Customers", None)])
    assert time.monotonic() - started < 1
    assert (intercom.bulk_calls, intercom.single_calls, slot.error) == ([], ["c1"], None)


def test_a_linger_ends_the_wait_for_threads_that_never_come():
    intercom = FakeIntercom()
    bulk = BulkTags(SimpleNamespace(intercom=intercom, tags=FakeTags()), linger=0.2)
    busy = threading.Event()

    def other() -> None:  # a running thread of the batch that never tags anything
        with bulk.running():
            busy.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        with bulk.running():
            bulk.add("c1", [("Customers", None)])
        assert 0.1 < time.monotonic() - started < 2
    finally:
        busy.set()
        thread.join()


def test_a_refused_bulk_call_is_retried_one_contact_at_a_time_so_only_the_unknown_one_fails():
    intercom = FakeIntercom(bulk_error=IntercomNotFound("User Not Found", status=404, code="not_found"), unknown=("c2",))
    bulk = BulkTags(SimpleNamespace(intercom=intercom, tags=FakeTags()), linger=5.0)
    outcome = run_threads(bulk, ["c1", "c2", "c3"])
    assert len(intercom.bulk_calls) == 1 and sorted(intercom.single_calls) == ["c1", "c2", "c3"]
    assert {c: slot.error for c, slot in outcome.items()} == {"c1": None, "c2": "User Not Found", "c3": None}


def test_a_halt_of_the_shared_call_is_raised_in_every_message_of_it():
    intercom = FakeIntercom(bulk_error=IntercomRateLimited("Exceeded rate limit"))
    bulk = BulkTags(SimpleNamespace(intercom=intercom, tags=FakeTags()), linger=5.0)
    outcome = run_threads(bulk, ["c1", "c2", "c3"])
    assert all(isinstance(raised, IntercomRateLimited) for raised in outcome.values()), outcome
    assert intercom.single_calls == []  # no contact-by-contact retry into a rate limit


# --- against the sandbox (every Intercom call on the main thread) ---------------------------------


def _second_thread_waiting(bulk: BulkTags, contact_id: str, outcome: dict) -> threading.Thread:
    def wait_for_the_call() -> None:
        with bulk.running():
            [outcome[contact_id]] = bulk.add(contact_id, [("Customers", None)])

    thread = threading.Thread(target=wait_for_the_call)
    thread.start()
    deadline = time.monotonic() + 5
    while bulk._waiting < 1 and time.monotonic() < deadline:  # noqa: SLF001 - the test waits for the thread to join
        time.sleep(0.01)
    return thread


@pytest.fixture
def sandbox_ctx(intercom_sandbox):
    forget_tags()
    client = intercom_sandbox.client()
    tags = TagCache(client)
    assert tags.id_for_trimmed("Customers") is None  # the workspace's list, loaded as contact_tags_sync does first
    intercom_sandbox.calls.clear()
    yield SimpleNamespace(intercom=client, tags=tags)
    forget_tags()


def test_two_users_are_tagged_in_one_post_tags_with_users(intercom_sandbox, sandbox_ctx):
    first = intercom_sandbox.add_contact(role="user", external_id="u1")
    second = intercom_sandbox.add_contact(role="user", external_id="u2")
    bulk = BulkTags(sandbox_ctx, size=2, linger=5.0)
    outcome: dict = {}
    with bulk.running():
        thread = _second_thread_waiting(bulk, second["id"], outcome)
        [mine] = bulk.add(first["id"], [("Customers", None)])  # fills the call: sent from here
    thread.join(5)
    assert [(c.method, c.path, sorted(u["id"] for u in c.body["users"])) for c in intercom_sandbox.calls] == [
        ("POST", "/tags", sorted([first["id"], second["id"]]))
    ]
    assert mine.error is None and outcome[second["id"]].error is None
    assert intercom_sandbox.contact_tag_names(first["id"]) == intercom_sandbox.contact_tag_names(second["id"]) == ["Customers"]
    assert sandbox_ctx.tags.name_for(mine.tag_id) == "Customers"  # the tag the call created is known


def test_a_user_deleted_since_its_push_fails_alone(intercom_sandbox, sandbox_ctx):
    kept = intercom_sandbox.add_contact(role="user", external_id="u1")
    gone = intercom_sandbox.add_contact(role="user", external_id="u2")
    intercom_sandbox.client().delete_contact(gone["id"])
    intercom_sandbox.calls.clear()
    bulk = BulkTags(sandbox_ctx, size=2, linger=5.0)
    outcome: dict = {}
    with bulk.running():
        thread = _second_thread_waiting(bulk, gone["id"], outcome)
        [mine] = bulk.add(kept["id"], [("Customers", None)])
    thread.join(5)
    assert intercom_sandbox.responses[0] == 404  # the whole bulk call refused...
    assert mine.error is None and intercom_sandbox.contact_tag_names(kept["id"]) == ["Customers"]  # ...then one by one
    assert outcome[gone["id"]].error == "User Not Found"
