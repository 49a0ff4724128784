"""Sustained load: Hull notifications and Intercom webhooks against a local gunicorn + qcluster.

Starts the deployment shape on loopback (gunicorn with --web-workers workers, --clusters
`manage.py qcluster` processes), pointed at the HTTP sandboxes of the same server, on a fresh
database (a temporary SQLite file by default; `--database-url postgres://...` and `--redis-url`
for the scale-out setup; that database is flushed). For --duration seconds (default 60) it sends
requests at --rate per second (half notifications of --users-per-notification new users, each
with one event; half signed `contact.user.created` webhooks), then waits for the queue to drain.

Figures (one JSON document on stdout): accepted per second, p50/p99 answer latency of the public
endpoints, queue drain time after the load stops, and entities lost (expected: 0) = Hull users
missing from the Intercom sandbox + webhook contacts missing from the Hull sandbox, plus duplicates.

    .venv/bin/python bench/load.py [--duration 60] [--rate 10] [--database-url ...] [--redis-url ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-load-intercom-token"
CLIENT_SECRET = "bench-load-client-secret"
HULL_SECRET = "bench-load-hull-secret"
HULL_ID = "5c092905c36af496c700beef"
SEGMENT = {"id": "5bd720690026ca86b000004f", "name": "Customers", "type": "users_segment"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second, both endpoints together")
    parser.add_argument("--users-per-notification", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--clusters", type=int, default=1, help="qcluster processes (each with Q_WORKERS=2)")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default="")
    return parser.parse_args()


def ensure_postgres_database(database_url: str) -> None:
    """Create the benchmark's PostgreSQL database when it does not exist yet."""
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str, redis_url: str) -> None:
    if database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "connector_site.settings_test"
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    if database_url.startswith("postgres"):
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    if not redis_url:
        call_command("createcachetable", verbosity=0)


def create_connector(base_url: str):
    from sandbox.wiring import connector_on_http_sandboxes

    return connector_on_http_sandboxes(
        base_url=base_url,
        token=TOKEN,
        workspace="ws_load",
        name="Load",
        slug="load",
        hull_organization="load.hullapp.io",
        hull_id=HULL_ID,
        hull_secret=HULL_SECRET,
        intercom_client_secret=CLIENT_SECRET,
        synchronized_user_segments=[SEGMENT["id"]],
        outgoing_events=["Signed Up"],
    )


def notification_body(n: int, users: int) -> bytes:
    messages = []
    for k in range(users):
        i = f"{n}-{k}"
        messages.append({
            "message_id": uuid.uuid4().hex,
            "user": {"id": uuid.uuid4().hex[:24], "email": f"load{i}@acme.com", "external_id": f"load-{i}",
                     "indexed_at": "2024-01-01T00:00:00+00:00", "segment_ids": [SEGMENT["id"]]},
            "segments": [SEGMENT], "account": {}, "account_segments": [],
            "changes": {"is_new": True, "user": {}, "account": {}, "segments": {}, "account_segments": {}},
            "events": [{"event": "Signed Up", "event_id": f"evt-{i}", "created_at": "2024-01-01 00:00:00 UTC", "properties": {}}],
        })
    return json.dumps({
        "notification_id": f"load-{n}", "channel": "user:update",
        "configuration": {"id": HULL_ID, "secret": HULL_SECRET, "organization": "load.hullapp.io"},
        "connector": {"id": HULL_ID, "private_settings": {}}, "segments": [SEGMENT], "accounts_segments": [],
        "messages": messages,
    }).encode()


def webhook_body(n: int) -> bytes:
    return json.dumps({
        "type": "notification_event", "id": f"notif_load_{n}", "topic": "contact.user.created", "app_id": "ws_load",
        "created_at": 1700000000 + n, "delivery_attempts": 1,
        "data": {"type": "notification_event_data", "item": {
            "type": "contact", "id": f"88f{n:021d}", "role": "user", "email": f"hook{n}@acme.com", "external_id": f"hook-{n}"}},
    }).encode()


def run_load(base_url: str, args: argparse.Namespace) -> dict:
    import requests

    from webhooks.intercom_auth import intercom_signature

    local = threading.local()
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def send(kind: str, n: int) -> None:
        if kind == "notification":
            url, body, headers = f"{base_url}/hull/load/smart-notifier", notification_body(n, args.users_per_notification), {}
        else:
            body = webhook_body(n)
            url, headers = f"{base_url}/intercom/load/webhooks", {"X-Hub-Signature": intercom_signature(CLIENT_SECRET, body)}
        started = time.perf_counter()
        try:
            code = session().post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=30).status_code
        except Exception as exc:  # noqa: BLE001 - a refused or timed-out request is a figure, not a crash
            code = type(exc).__name__
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            statuses[(kind, code)] += 1

    sent = {"notification": 0, "webhook": 0}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        i = 0
        while (now := time.monotonic()) - started < args.duration:
            due = started + i / args.rate
            if due > now:
                time.sleep(due - now)
            kind = "notification" if i % 2 == 0 else "webhook"
            pool.submit(send, kind, sent[kind])
            sent[kind] += 1
            i += 1
    elapsed = time.monotonic() - started
    accepted = sum(n for (_, code), n in statuses.items() if code == 200)
    ordered = sorted(latencies)
    return {
        "sent": sent,
        "elapsed_s": round(elapsed, 1),
        "statuses": {f"{k}:{c}": n for (k, c), n in sorted(statuses.items(), key=str)},
        "accepted": accepted,
        "accepted_per_s": round(accepted / elapsed, 1),
        "latency_p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "latency_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1) if ordered else None,
    }


def wait_for_drain(timeout: float) -> float | None:
    from sync.models import DeliveryStatus, HullNotification, WebhookDelivery

    open_statuses = [DeliveryStatus.PENDING, DeliveryStatus.PROCESSING]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not (
            HullNotification.objects.filter(status__in=open_statuses).exists()
            or WebhookDelivery.objects.filter(status__in=open_statuses).exists()
        ):
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def count_losses(sent: dict, users_per_notification: int) -> dict:
    from sandbox.hull.models import SandboxUser
    from sandbox.intercom.models import Contact
    from sync.models import HullNotification, WebhookDelivery

    expected_contacts = {f"load{n}-{k}@acme.com" for n in range(sent["notification"]) for k in range(users_per_notification)}
    contacts = Counter(Contact.objects.filter(workspace__token=TOKEN, deleted=False).values_list("email", flat=True))
    expected_hull = {f"hook{n}@acme.com" for n in range(sent["webhook"])}
    hull = Counter(SandboxUser.objects.filter(email__in=expected_hull).values_list("email", flat=True))
    return {
        "entities_expected": len(expected_contacts) + len(expected_hull),
        "entities_lost": len(expected_contacts - set(contacts)) + len(expected_hull - set(hull)),
        "entities_duplicated": sum(n - 1 for n in contacts.values() if n > 1) + sum(n - 1 for n in hull.values() if n > 1),
        "notifications": dict(Counter(HullNotification.objects.values_list("status", flat=True))),
        "webhook_deliveries": dict(Counter(WebhookDelivery.objects.values_list("status", flat=True))),
    }


def main() -> None:
    args = parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-load-")
    database_url = args.database_url or f"sqlite:///{tmp}/load.sqlite3"
    setup_django(database_url, args.redis_url)
    from sandbox.stack import free_port, running_stack, stack_env

    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    create_connector(base_url)
    env = stack_env(database_url=database_url, redis_url=args.redis_url)
    with running_stack(env, port=port, web_workers=args.web_workers, clusters=args.clusters) as stack:
        load = run_load(base_url, args)
        drain = wait_for_drain(args.drain_timeout)
        alive = stack.alive()
    result = {
        "benchmark": "load",
        "database": "postgresql" if database_url.startswith("postgres") else "sqlite",
        "broker": "redis" if args.redis_url else "orm",
        "web_workers": args.web_workers,
        "qclusters": args.clusters,
        "q_workers_each": 2,
        "duration_s": args.duration,
        "rate_target_per_s": args.rate,
        "users_per_notification": args.users_per_notification,
        "cpus": os.cpu_count(),
        **load,
        "queue_drain_s": drain,
        "processes_alive_at_end": alive,
        **count_losses(load["sent"], args.users_per_notification),
    }
    print(json.dumps(result, indent=2))
    if not args.database_url:
        for path in Path(tmp).glob("*"):
            path.unlink()
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
