"""Benchmark of the outgoing side: Intercom calls per entity, and messages per second.

Runs the real task body (`notification_process` over stored `HullNotification`s: parse, dedupe,
route, resolve, push, tags, write-back, SyncLog rows) against the Intercom sandbox at the HTTP
level (through `responses`, contract checks off, latency 0, no rate limit), with the real
FirehoseBatch whose HullClient.post_firehose is counted instead of sent. A temporary SQLite file
database (WAL), so the notification's thread pool is used (`--concurrency`: the deployment's
OUTGOING_CONCURRENCY default, 32; the threads of a notification share their bulk tag calls, so
the calls per entity depend on it).

Calls per entity (targets: a <= 3.1, b = 1.0, c = 0, d = 0, e <= 1.2):
  a. new user: never synced, email + external_id, one segment (tagging on);
  b. steady state: a known user (linked, already tagged) whose mapped attribute changed;
  c. echo: the user:update Hull sends after our own write-back (only intercom_user/* changed);
  d. unchanged re-send: b's notification delivered again under a new notification id;
  e. known user entering a segment: a known user (linked, tagged) whose attribute changed and who
     entered a second segment (its tag is new): the push, plus its share of a bulk tag call.
Throughput: one notification of --messages (default 10,000) steady-state changes of known users.

    .venv/bin/python bench/outgoing.py [--entities 50] [--messages 10000] [--concurrency 32]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _django(db_path: str, concurrency: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "connector_site.settings_test"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django
    from django.conf import settings

    django.setup()
    settings.OUTGOING_CONCURRENCY = concurrency
    logging.disable(logging.INFO)  # one log line per call would measure the log sink
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # the default cache of an embedded set-up is a table


def _count_firehose() -> Counter:
    from sync.hull.client import HullClient

    sent: Counter = Counter()

    def post_firehose(self: Any, records: list[dict[str, Any]]) -> None:
        sent["posts"] += 1
        sent["records"] += len(records)

    HullClient.post_firehose = post_firehose  # type: ignore[method-assign]
    return sent


def _connector() -> Any:
    from sync.models import Direction, Entity, FieldMapping
    from sync.services.connectors import connector_create

    connector = connector_create(
        name="Bench",
        slug="bench",
        hull_organization="acme.hullapp.io",
        hull_id="5c092905c36af496c700012e",
        hull_secret="bench-hull-secret",
        intercom_access_token="dG9rOmludGVyY29tLXNhbmRib3gtdG9rZW4=",
        intercom_workspace_id="ws_acme",
        synchronized_user_segments=["seg-customers"],
    )
    FieldMapping.objects.create(
        connector=connector, entity=Entity.USER, direction=Direction.OUTGOING, hull_attribute="plan", intercom_attribute="plan"
    )
    return connector


SEGMENT = {"id": "seg-customers", "name": "Customers", "type": "users_segment"}
TRIAL = {"id": "seg-trial", "name": "Trial", "type": "users_segment"}


def _message(
    i: int, *, plan: str, intercom_id: str | None = None, changes: dict | None = None, tagged: bool = False, trial: bool = False
) -> dict:
    user: dict[str, Any] = {
        "id": f"hull-{i}",
        "email": f"user{i}@example.com",
        "external_id": f"ext-{i}",
        "indexed_at": "2024-01-01T00:00:00Z",
        "traits_plan": plan,
    }
    if intercom_id:
        user["traits_intercom_user/id"] = intercom_id
    if tagged:
        user["traits_intercom_user/tags"] = ["Customers"]
    segments = [SEGMENT, TRIAL] if trial else [SEGMENT]
    return {"message_id": f"m-{i}-{plan}", "user": user, "segments": segments, "changes": changes or {}, "events": []}


_notifications = iter(range(1, 10**9))


def _run(connector: Any, messages: list[dict], sandbox: Any) -> tuple[int, float, Counter]:
    from sync.models import HullNotification
    from sync.outgoing.notifications import notification_process

    notification = HullNotification.objects.create(
        connector=connector,
        notification_id=f"bench-{next(_notifications)}",
        channel="user:update",
        payload={"notification_id": "x", "channel": "user:update", "messages": messages},
        message_count=len(messages),
    )
    before = len(sandbox.calls)
    started = time.perf_counter()
    notification_process(notification=notification)
    elapsed = time.perf_counter() - started
    notification.refresh_from_db()
    assert notification.status == "done", (notification.status, notification.error)
    made = sandbox.calls[before:]
    return len(made), elapsed, Counter(f"{c.method} {c.path.split('/')[1]}" for c in made)


class _StubIntercom:
    """Answers update_contact like Intercom would, in memory; anything else is a bench bug."""

    workspace_key = "ws_stub"

    def __init__(self) -> None:
        self.calls = 0

    def update_contact(self, contact_id: str, body: dict) -> dict:
        self.calls += 1
        empty = {"type": "list", "data": [], "has_more": False}
        return {
            "type": "contact",
            "id": contact_id,
            "role": body.get("role", "user"),
            "email": body.get("email"),
            "external_id": body.get("external_id"),
            "custom_attributes": body.get("custom_attributes", {}),
            "tags": empty,
            "companies": empty,
        }


def _stub_leg(connector: Any, links: list, indexes: range, firehose: Counter) -> dict:
    from sync.models import HullNotification
    from sync.outgoing import notifications
    from sync.outgoing.context import OutgoingContext, open_firehose
    from sync.outgoing.notifications import notification_process

    stub = _StubIntercom()
    original = notifications.build_context
    notifications.build_context = lambda connector, notification=None: OutgoingContext(
        connector=connector, intercom=stub, firehose=open_firehose(connector), notification=notification
    )
    try:
        messages = [
            _message(i, plan="stub", intercom_id=link.intercom_id, tagged=True, changes={"user": {"traits_plan": ["enterprise", "stub"]}})
            for i, link in zip(indexes, links, strict=True)
        ]
        notification = HullNotification.objects.create(
            connector=connector, notification_id="bench-stub", channel="user:update",
            payload={"notification_id": "bench-stub", "channel": "user:update", "messages": messages},
        )
        firehose.clear()
        started = time.perf_counter()
        notification_process(notification=notification)
        elapsed = time.perf_counter() - started
    finally:
        notifications.build_context = original
    return {
        "messages": len(messages),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(messages) / elapsed, 1),
        "intercom_calls": stub.calls,
        "firehose_records": firehose["records"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=50, help="users per calls-per-entity case")
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the throughput notification")
    parser.add_argument("--concurrency", type=int, default=32)  # sync/outgoing/notifications.py DEFAULT_CONCURRENCY
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        _django(str(Path(tmp) / "bench.sqlite3"), args.concurrency)
        import responses

        from sync.models import IdentityLink, SyncLog
        from sandbox.intercom.responses_double import IntercomSandbox

        firehose = _count_firehose()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            sandbox = IntercomSandbox(mock)
            sandbox.validate = False
            sandbox.add_data_attribute("plan")
            connector = _connector()
            n = args.entities
            result: dict[str, Any] = {"entities_per_case": n, "concurrency": args.concurrency}

            # a. new users
            calls, elapsed, kinds = _run(connector, [_message(i, plan="free") for i in range(n)], sandbox)
            result["a_new_user"] = {"calls_per_entity": round(calls / n, 3), "by_endpoint": dict(kinds)}
            ids = dict(IdentityLink.objects.filter(connector=connector, entity="user").values_list("hull_id", "intercom_id"))

            # b. steady-state attribute change of known, already tagged users
            changed = [
                _message(i, plan="pro", intercom_id=ids[f"hull-{i}"], tagged=True, changes={"user": {"traits_plan": ["free", "pro"]}})
                for i in range(n)
            ]
            calls, elapsed, kinds = _run(connector, changed, sandbox)
            result["b_steady_state_change"] = {"calls_per_entity": round(calls / n, 3), "by_endpoint": dict(kinds)}

            # c. the echo of our own write-back
            echo = [
                _message(
                    i,
                    plan="pro",
                    intercom_id=ids[f"hull-{i}"],
                    tagged=True,
                    changes={"user": {"traits_intercom_user/updated_at": [1, 2], "traits_intercom_user/id": [None, ids[f"hull-{i}"]]}},
                )
                for i in range(n)
            ]
            calls, elapsed, kinds = _run(connector, echo, sandbox)
            result["c_echo_of_write_back"] = {"calls_per_entity": round(calls / n, 3), "by_endpoint": dict(kinds)}

            # d. b delivered again
            calls, elapsed, kinds = _run(connector, changed, sandbox)
            result["d_unchanged_resend"] = {"calls_per_entity": round(calls / n, 3), "by_endpoint": dict(kinds)}

            # e. b's users enter a second segment (a tag Intercom does not have yet) as their plan changes
            entered = [
                _message(
                    i, plan="team", intercom_id=ids[f"hull-{i}"], tagged=True, trial=True,
                    changes={"user": {"traits_plan": ["pro", "team"]}, "segments": {"entered": [TRIAL]}},
                )
                for i in range(n)
            ]
            calls, elapsed, kinds = _run(connector, entered, sandbox)
            result["e_known_user_new_segment"] = {"calls_per_entity": round(calls / n, 3), "by_endpoint": dict(kinds)}

            # Throughput: --messages known users whose plan changed, in one notification.
            total = args.messages
            seeded_started = time.perf_counter()
            links = []
            for i in range(n, n + total):
                contact = sandbox.add_contact(role="user", email=f"user{i}@example.com", external_id=f"ext-{i}")
                links.append(IdentityLink(connector=connector, entity="user", hull_id=f"hull-{i}", intercom_id=contact["id"]))
            IdentityLink.objects.bulk_create(links)
            seed_seconds = time.perf_counter() - seeded_started
            big = [
                _message(i, plan="enterprise", intercom_id=link.intercom_id, tagged=True, changes={"user": {"traits_plan": ["pro", "enterprise"]}})
                for i, link in zip(range(n, n + total), links, strict=True)
            ]
            firehose.clear()
            calls, elapsed, kinds = _run(connector, big, sandbox)
            result["throughput"] = {
                "messages": total,
                "seconds": round(elapsed, 2),
                "messages_per_second": round(total / elapsed, 1),
                "intercom_calls": calls,
                "firehose_posts": firehose["posts"],
                "firehose_records": firehose["records"],
                "sync_log_rows": SyncLog.objects.filter(connector=connector).count(),
                "seed_seconds": round(seed_seconds, 2),
                "sandbox_latency_ms": 0,
            }

            # The same notification with Intercom replaced by an in-process stub: what the
            # connector itself costs per message (routing, DB rows, write-back JWTs), no HTTP.
            result["throughput_connector_only"] = _stub_leg(connector, links, range(n, n + total), firehose)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
