"""Outgoing steady state against Intercom's rate limit, with a baseline leg in the same run.

Workload: `--notifications` stored `user:update` notifications of `--messages` messages in all,
each a known, already tagged user whose mapped attribute changed (one `PUT /contacts/{id}` each).
`--enter-segment`: each user also entered a second segment whose tag it does not carry yet, so
the connector adds it (bulk `POST /tags {name, users}` shared by a notification's threads).
Intercom is bench/standin.py: answers after `--latency` s of sleep, `--limit` calls per
`--window` s, 429 past it.

- `connector` leg: one real `manage.py qcluster` (Q_WORKERS=2; `--clusters 2` starts two) works
  the notifications off the queue. Reported: calls per second over the full rate windows and
  their share of the limit (`utilisation`), 429s, CPU ms per message (the clusters' user+system
  time), the SyncLog rows (one per message).
- `baseline` leg: what Hull's own connector did, on the same workload against the same stand-in:
  a search before every push, one tag call per contact, three blind retries on a 429 (1 s apart,
  reset header ignored), no shared budget; 64 calls in flight (the connector's default setup).
- `ratios`: baseline / connector for calls per message and for the time to finish.

`--check FILE` compares the ratios with the minimums in FILE (bench/expected_ratios.json:
`min_ratios`, or `min_ratios_enter_segment` with `--enter-segment`) and exits 1 when one is
worse: CI runs a small pass of each workload with it (.ci/run).

    .venv/bin/python bench/outgoing_rate.py [--messages 6000] [--latency 0.15] [--limit 1666] [--window 10]

Uses a temporary SQLite file and the ORM broker, or DATABASE_URL / REDIS_URL when set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The baseline's calls in flight: fixed (what the default connector setup has: 2 workers x 32
# threads), so a connector that loses its concurrency shows as a worse time ratio.
BASELINE_IN_FLIGHT = 64


def _env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "connector_site.settings",
        "DJANGO_SECRET_KEY": env.get("DJANGO_SECRET_KEY", "bench-secret-key"),
        "FIELD_ENCRYPTION_KEY": env.get("FIELD_ENCRYPTION_KEY", "aW50ZXJjb20tY29ubmVjdG9yLXRlc3QtZmVybmV0LWs="),
        "DATABASE_URL": db_url,
        "LOG_LEVEL": "WARNING",
        "Q_WORKERS": env.get("Q_WORKERS", "2"),
        "Q_SYNC": "0",
        "SANDBOX_ENABLED": "1",  # the stand-in's URLs are editable connector fields only in sandbox mode
    })
    return env


def _standin(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "standin.py"), "--port", "0", "--latency", str(args.latency),
         "--limit", str(args.limit), "--window", str(args.window)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def _stats(base: str) -> dict[str, Any]:
    return requests.get(base + "/_stats", timeout=10).json()


def _full_window_rate(stats: dict[str, Any]) -> float | None:
    """Mean successful calls per second over the windows that were full of work (not the first or last)."""
    windows = sorted((int(k), v) for k, v in stats["per_window"].items())
    inner = [v for _, v in windows[1:-1]]
    if not inner:
        return None
    return sum(inner) / len(inner) / stats["window"]


def _seed(args: argparse.Namespace, base: str) -> list[int]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        call_command("flush", interactive=False, verbosity=0)  # that database is the bench's own
    if not os.environ.get("REDIS_URL"):
        call_command("createcachetable", verbosity=0)
    from sync.models import Direction, Entity, FieldMapping, HullNotification, IdentityLink
    from sync.services.connectors import connector_create

    connector = connector_create(
        name="Bench", slug="bench", hull_organization="acme.hullapp.io", hull_id="5c092905c36af496c700012e",
        hull_secret="bench-hull-secret", intercom_access_token="bench-token", intercom_workspace_id=f"ws_bench_{os.getpid()}",
        synchronized_user_segments=["seg-customers"],
    )
    connector.intercom_api_base = base
    connector.hull_firehose_url = base + "/api/v1/firehose"
    connector.save()
    FieldMapping.objects.create(connector=connector, entity=Entity.USER, direction=Direction.OUTGOING, hull_attribute="plan", intercom_attribute="plan")
    IdentityLink.objects.bulk_create(
        [IdentityLink(connector=connector, entity="user", hull_id=f"hull-{i}", intercom_id=f"c-{i}") for i in range(args.messages)],
        batch_size=2000,
    )
    segment = {"id": "seg-customers", "name": "Customers", "type": "users_segment"}
    trial = {"id": "seg-trial", "name": "Trial", "type": "users_segment"}
    segments = [segment, trial] if args.enter_segment else [segment]
    changes: dict[str, Any] = {"user": {"traits_plan": ["pro", "enterprise"]}}
    if args.enter_segment:
        changes["segments"] = {"entered": [trial]}
    per = -(-args.messages // args.notifications)
    pks = []
    for n in range(args.notifications):
        messages = [
            {
                "message_id": f"m-{i}",
                "user": {
                    "id": f"hull-{i}", "email": f"user{i}@example.com", "external_id": f"ext-{i}",
                    "indexed_at": "2024-01-01T00:00:00Z", "traits_plan": "enterprise",
                    "traits_intercom_user/id": f"c-{i}", "traits_intercom_user/tags": ["Customers"],
                },
                "segments": segments,
                "changes": changes,
                "events": [],
            }
            for i in range(n * per, min(args.messages, (n + 1) * per))
        ]
        notification = HullNotification.objects.create(
            connector=connector, notification_id=f"bench-{n}", channel="user:update",
            payload={"notification_id": f"bench-{n}", "channel": "user:update", "segments": segments, "messages": messages},
            message_count=len(messages),
        )
        pks.append(notification.pk)
    return pks


def _connector_leg(args: argparse.Namespace, base: str, env: dict[str, str], pks: list[int]) -> dict[str, Any]:
    from django.db import connection
    from django_q.tasks import async_task

    from sync.models import HullNotification, SyncLog
    from sync.work import PROCESS_NOTIFICATION

    requests.post(base + "/_reset", timeout=10)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clusters = [
        subprocess.Popen([PYTHON, str(ROOT / "manage.py"), "qcluster"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("BENCH_CLUSTER_LOG", os.devnull), "a"))
        for _ in range(args.clusters)
    ]
    started = time.perf_counter()
    for pk in pks:
        async_task(PROCESS_NOTIFICATION, pk)
    connection.close()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        left = HullNotification.objects.filter(pk__in=pks).exclude(status__in=["done", "failed"]).count()
        if not left:
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    for cluster in clusters:
        cluster.send_signal(signal.SIGTERM)
    for cluster in clusters:
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats = _stats(base)
    statuses = dict(HullNotification.objects.filter(pk__in=pks).values_list("notification_id", "status"))
    calls = sum(stats["routes"].values())
    rate = _full_window_rate(stats)
    busy = (stats["last"] - stats["first"]) if stats["first"] else elapsed
    return {
        "calls_per_message": round(calls / args.messages, 3),
        "clusters": args.clusters,
        "q_workers": int(env["Q_WORKERS"]),
        "messages": args.messages,
        "notifications": statuses,
        "calls": calls,
        "by_route": stats["routes"],
        "firehose_posts": stats["hull"].get("/api/v1/firehose", 0),
        "refused_429": stats["refused"],
        "seconds_first_to_last_call": round(busy, 2),
        "seconds_total": round(elapsed, 2),
        "calls_per_second_full_windows": None if rate is None else round(rate, 1),
        "limit_per_second": round(args.limit / args.window, 1),
        "utilisation": None if rate is None else round(rate / (args.limit / args.window), 3),
        "cpu_ms_per_message": round(cpu * 1000 / args.messages, 2),
        "cpu_note": "user+system time of the qcluster processes (startup included)",
        "sync_log_rows": SyncLog.objects.count(),
    }


def _baseline_leg(args: argparse.Namespace, base: str, in_flight: int) -> dict[str, Any]:
    """Hull's connector: search, push, tag, per contact; blind retries; no shared budget."""
    requests.post(base + "/_reset", timeout=10)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=in_flight, max_retries=0)
    session.mount("http://", adapter)
    lost = 0
    attempts = 0
    lock = threading.Lock()

    def call(method: str, path: str, body: dict) -> bool:
        nonlocal attempts
        for _attempt in range(4):  # the call and three blind retries
            with lock:
                attempts += 1
            response = session.request(method, base + path, json=body, timeout=30)
            if response.status_code != 429:
                return response.ok
            time.sleep(1.0)
        return False

    def one(i: int) -> None:
        nonlocal lost
        ok = call("POST", "/contacts/search", {"query": {"field": "external_id", "operator": "=", "value": f"ext-{i}"}})
        ok = ok and call("PUT", f"/contacts/c-{i}", {"custom_attributes": {"plan": "enterprise"}})
        ok = ok and call("POST", "/tags", {"name": "Customers", "users": [{"id": f"c-{i}"}]})
        if not ok:
            with lock:
                lost += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        list(pool.map(one, range(args.messages)))
    elapsed = time.perf_counter() - started
    stats = _stats(base)
    rate = _full_window_rate(stats)
    return {
        "messages": args.messages,
        "calls_per_message": round(attempts / args.messages, 3),
        "in_flight": in_flight,
        "calls": attempts,
        "by_route": stats["routes"],
        "refused_429": stats["refused"],
        "lost_updates": lost,
        "seconds_total": round(elapsed, 2),
        "calls_per_second_full_windows": None if rate is None else round(rate, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--notifications", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--limit", type=int, default=1666)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--enter-segment", action="store_true", help="each user also entered a segment it is not tagged with yet")
    parser.add_argument("--check", type=Path, help="expected minimum ratios (JSON); exit 1 when one is worse")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp.name}/bench.sqlite3"
    if os.environ.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # the bench's own db: no queue or budget left over
    env = _env(db_url)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    standin, base = _standin(args)
    # The stand-in is reached the way a deployment reaches a proxy: by setting, never by a connector field.
    overrides = {"INTERCOM_API_BASE_OVERRIDE": base, "HULL_FIREHOSE_URL_OVERRIDE": base + "/api/v1/firehose"}
    env.update(overrides)
    os.environ.update(overrides)
    try:
        pks = _seed(args, base)
        from django.conf import settings

        result: dict[str, Any] = {
            "benchmark": "outgoing_rate",
            "latency_s": args.latency, "limit": args.limit, "window_s": args.window, "enter_segment": args.enter_segment,
            "outgoing_concurrency": settings.OUTGOING_CONCURRENCY,
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "budget": "redis" if settings.REDIS_URL else "database",
            "load_average": os.getloadavg(),
        }
        result["connector"] = ours = _connector_leg(args, base, env, pks)
        if not args.no_baseline:
            result["baseline"] = theirs = _baseline_leg(args, base, BASELINE_IN_FLIGHT)
            result["ratios"] = {
                "calls_per_message": round(theirs["calls"] / max(1, ours["calls"]), 2),
                "time": round(theirs["seconds_total"] / max(0.001, ours["seconds_first_to_last_call"]), 2),
            }
        result["load_average_after"] = os.getloadavg()
    finally:
        standin.terminate()
        standin.wait()
        tmp.cleanup()
    print(json.dumps(result, indent=2))
    failures = []
    if any(status != "done" for status in ours["notifications"].values()):
        failures.append(f"notifications not done: {ours['notifications']}")
    if ours["sync_log_rows"] != args.messages:
        failures.append(f"{ours['sync_log_rows']} SyncLog rows for {args.messages} messages")
    if args.check and "ratios" in result:
        expected = json.loads(args.check.read_text())
        # Each workload has its own minimums (the tags one checks calls only: its time is latency-bound).
        for name, minimum in expected.get("min_ratios_enter_segment" if args.enter_segment else "min_ratios", {}).items():
            if result["ratios"][name] < minimum:
                failures.append(f"ratio {name} {result['ratios'][name]} < {minimum} (baseline / connector, same run)")
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
