"""Benchmark of the Hull notification endpoint: one `user:update` notification of 10,000 messages.

On a temporary, migrated SQLite database (test settings), it measures:

1. `accept`: request to response through Django's test client (the real URL conf, DRF view,
   Hull authentication, payload storage, segment refresh, flow-control decision); processing
   is enqueued but not run (the task is replaced by a no-op), as in production where a worker
   picks it up. Reported in seconds, with the body size.
2. `parse`: `sync.hull.messages.parse_notification` + `dedupe_messages` on the same payload
   (traits_ trimming, spelling unification, event-date parsing), as messages per second; and
   `worker_decode_and_parse`: the same with the decoding of the raw messages stored at receipt.
3. `unauthenticated`: a --unauthenticated-mb body with a wrong secret, refused (401) after a
   bounded scan: seconds, peak RSS growth and Python allocation peak (goal: < 100 MB).

A warm-up request goes first (the first request of a process imports the views).

    .venv/bin/python bench/hull_notifications.py [--messages 10000] [--repeat 3] [--check]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEGMENTS = [
    {"id": f"5bd720690026ca86b00000{i:02d}", "name": f"Segment {i}", "type": "users_segment",
     "created_at": "2018-10-29T14:59:53Z", "updated_at": "2018-11-05T20:07:04Z"}
    for i in range(20)
]


def message(index: int) -> dict[str, Any]:
    """A realistic docs/hull-protocol.md#user-update-messages message: traits_ keys, an account, changes, one event."""
    hull_id = f"{index:024x}"
    return {
        "message_id": secrets.token_hex(20),
        "user": {
            "id": hull_id, "email": f"user{index}@example.com", "external_id": f"ext-{index}",
            "anonymous_ids": [f"intercom:{index}", f"segment:{index}"], "name": f"User {index}",
            "first_name": "User", "last_name": str(index), "domain": "example.com",
            "created_at": "2018-10-26T14:51:01Z", "indexed_at": "2018-12-11T14:20:33+00:00",
            "last_seen_at": "2018-12-10T09:00:00Z", "segment_ids": [SEGMENTS[index % 20]["id"]],
            **{f"traits_attr_{k}": f"value {k}" for k in range(15)},
            "traits_intercom_user/id": f"ic-{index}", "traits_coconuts": index,
        },
        "segments": [SEGMENTS[index % 20]],
        "account": {"id": f"a{index:023x}", "domain": f"co{index % 500}.com", "name": f"Company {index % 500}",
                    "indexed_at": "2018-12-11T14:20:18+00:00"},
        "account_segments": [],
        "changes": {"is_new": False, "user": {"traits_coconuts": [index - 1, index]}, "account": {},
                    "segments": {}, "account_segments": {}},
        "events": [{"event_id": f"ev-{index}", "event": "page", "event_source": "segment", "event_type": "track",
                    "created_at": "2018-03-30 14:38:02 UTC", "properties": {"url": "https://example.com/pricing"},
                    "context": {"ip": "8.8.8.8"}}],
    }


def _unauthenticated_leg(client: Any, connector: Any, megabytes: int) -> dict[str, Any]:
    """A body of `[{},{},...]`-style filler with a wrong secret: refused, in bounded time and memory.

    Memory growth is the process's peak RSS after the request minus before it (the body itself
    is built before), and tracemalloc's peak of Python allocations during the request.
    """
    import resource
    import tracemalloc

    head = b'{"notification_id":"x","channel":"user:update","configuration":{"id":"%s","secret":"guessed"},"messages":[' % connector.hull_id.encode()
    filler = b"{}," * ((megabytes * 1024 * 1024 - len(head)) // 3)
    body = head + filler + b"{}]}"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    response = client.post("/hull/bench/smart-notifier", data=body, content_type="application/json", REMOTE_ADDR="203.0.113.9")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "body_bytes": len(body),
        "status": response.status_code,
        "seconds": round(elapsed, 3),
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "python_alloc_peak_mb": round(peak / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--unauthenticated-mb", type=int, default=40, help="size of the refused unauthenticated body")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the unauthenticated body is refused with < 100 MB growth")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector_site.settings_test")
    os.environ["HULL_BENCH"] = "1"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction
    from django.test import Client

    import django_q.tasks
    from sync.hull.messages import dedupe_messages, parse_notification
    from sync.models import Connector, HullNotification

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # the default cache of an embedded set-up is a table
    django_q.tasks.async_task = lambda *a, **k: None  # accept only: processing is the worker's job
    connector = Connector.objects.create(
        name="Bench", slug="bench", hull_organization="bench.hullapp.io", hull_id="5c092905c36af496c700012e",
        hull_secret="bench-secret-0123456789abcdef", intercom_access_token="token",
    )
    messages = [message(i) for i in range(args.messages)]
    payload = {
        "notification_id": "", "channel": "user:update", "is_export": False,
        "configuration": {"id": connector.hull_id, "organization": connector.hull_organization, "secret": connector.hull_secret},
        "connector": {"id": connector.hull_id, "name": "Bench", "private_settings": {}},
        "segments": SEGMENTS, "accounts_segments": [], "messages": messages,
    }
    client = Client()
    # A warm-up request first: the first request of a process imports and compiles (URL conf, DRF,
    # the views), about a second that a running server paid long before.
    warm = dict(payload, notification_id="warm-up", messages=messages[:1])
    with transaction.atomic():
        assert client.post("/hull/bench/smart-notifier", data=json.dumps(warm), content_type="application/json").status_code == 200

    unauthenticated = _unauthenticated_leg(client, connector, args.unauthenticated_mb)

    accept_times: list[float] = []
    size = 0
    for run in range(args.repeat):
        payload["notification_id"] = f"bench-{run}"
        body = json.dumps(payload).encode()
        size = len(body)
        started = time.perf_counter()
        with transaction.atomic():  # the request's own transaction, committed as in production
            response = client.post("/hull/bench/smart-notifier", data=body, content_type="application/json")
        accept_times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
    stored = HullNotification.objects.count()

    parse_times: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        parsed = parse_notification(payload)
        deduped = dedupe_messages(parsed.messages)
        parse_times.append(time.perf_counter() - started)
    assert len(deduped) == args.messages

    # What the worker does now: decode the raw messages stored at receipt, then parse.
    from sync.models import HullNotification as Stored

    stored_one = Stored.objects.filter(raw_messages__isnull=False).first()
    worker_times: list[float] = []
    for _ in range(args.repeat if stored_one is not None else 0):
        assert stored_one is not None  # no repeat otherwise
        started = time.perf_counter()
        parsed = parse_notification(stored_one.full_payload())
        dedupe_messages(parsed.messages)
        worker_times.append(time.perf_counter() - started)

    parse_best = min(parse_times)
    print(json.dumps({
        "benchmark": "hull_notifications",
        "messages": args.messages,
        "body_bytes": size,
        "max_body_bytes": getattr(settings, "HULL_MAX_NOTIFICATION_BYTES", None) or 64 * 1024 * 1024,
        "accept_seconds": {"median": round(statistics.median(accept_times), 3), "min": round(min(accept_times), 3),
                           "runs": [round(t, 3) for t in accept_times]},
        "accept_messages_per_second": round(args.messages / statistics.median(accept_times)),
        "parse_seconds": {"median": round(statistics.median(parse_times), 3), "min": round(parse_best, 3)},
        "parse_messages_per_second": round(args.messages / parse_best),
        "worker_decode_and_parse_messages_per_second": round(args.messages / min(worker_times)) if worker_times else None,
        "unauthenticated": unauthenticated,
        "stored_notifications": stored,
        "load_average": os.getloadavg(),
        "database": "sqlite (temporary file)",
    }, indent=2))
    tmp.cleanup()
    if args.check and (unauthenticated["status"] != 401 or unauthenticated["peak_rss_growth_mb"] >= 100):
        print(f"FAILED: unauthenticated body: {unauthenticated}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
