"""Benchmark of the incoming side: fetch-all throughput and memory, and the webhook endpoint.

Legs, each in its own process (so peak RSS is per leg) on a temporary SQLite database:

1. `fetch` at --small and --contacts (default 10,000 and 100,000): the real fetch-all pipeline
   (fetch_step pages of 150, sync.mapping.map_incoming, IdentityLink upserts, one SyncLog per
   contact, the real FirehoseBatch with its per-record JWTs) against a generated workspace
   that serves `POST /contacts/search` pages from an index (no HTTP), and HullClient.post_firehose
   counted instead of sent. Gives contacts/s, firehose calls per 100 contacts, peak RSS, and the
   connector's CPU per contact (the process's CPU minus the generated workspace's own).
2. `sandbox-fetch` (--sandbox-contacts, default 3,000): the same fetch through the real
   IntercomClient and the Intercom sandbox (HTTP level through `responses`, contract checks
   off). The sandbox's search evaluates every contact for every page (O(N) per page), so this
   leg is kept small: it measures the client + sandbox overhead, not the connector's scaling.
3. `webhooks`: gunicorn (2 workers, 4 threads each; CPU per request from /proc) serving the real endpoint; a local load
   generator (threads + http.client) posts --webhooks signed deliveries with --concurrency in
   flight. Gives accepted deliveries/s, p50/p99 latency and the tasks enqueued for them
   (processing is enqueued, not run; the web process batches deliveries into tasks).

    .venv/bin/python bench/incoming.py [--contacts 100000] [--small 10000] [--webhooks 2000]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLIENT_SECRET = "bench-client-secret"
BASE_UPDATED_AT = 1_700_000_000


def _django(db_path: str, settings: str = "connector_site.settings_test") -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)  # one log line per contact would measure the log sink
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # the default cache of an embedded set-up is a table


def _connector() -> Any:
    from sync.services.connectors import connector_create

    return connector_create(
        name="Bench",
        slug="bench",
        hull_organization="bench.hullapp.io",
        hull_id="5c092905c36af496c700012e",
        hull_secret="bench-hull-secret",
        intercom_access_token="bench-intercom-token",
        intercom_workspace_id="ws_bench",
        intercom_client_secret=CLIENT_SECRET,
        incoming_events=["*"],
    )


class GeneratedWorkspace:
    """Serves contact-search pages of `count` synthetic users, built per page (nothing retained)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.calls = 0
        self.cpu = 0.0  # seconds of CPU spent building pages: the stand-in's, not the connector's

    def _contact(self, n: int) -> dict[str, Any]:
        cid = f"{n:024x}"
        return {
            "type": "contact", "id": cid, "role": "user", "external_id": f"ext-{n}", "email": f"user{n}@example.com",
            "name": f"User {n}", "phone": None, "avatar": None, "owner_id": None,
            "created_at": BASE_UPDATED_AT - 1000, "updated_at": BASE_UPDATED_AT + n, "signed_up_at": None,
            "last_seen_at": BASE_UPDATED_AT + n - 5, "last_replied_at": None, "last_contacted_at": None,
            "last_email_opened_at": None, "last_email_clicked_at": None, "language_override": None,
            "browser": "chrome", "browser_version": "131", "browser_language": "en", "os": "Linux",
            "has_hard_bounced": False, "marked_email_as_spam": False, "unsubscribed_from_emails": False,
            "location": {"type": "location", "country": "France", "region": "IDF", "city": "Paris"},
            "social_profiles": {"type": "list", "data": []}, "custom_attributes": {"plan": "pro"},
            # Tag refs without names: resolved from GET /tags, listed once per page.
            "tags": {"type": "list", "data": [{"type": "tag", "id": str(n % 5)}], "has_more": False},
            "companies": {"type": "list", "data": [], "has_more": False},
        }

    def search_contacts_page(self, query: dict, *, per_page: int = 150, starting_after: str | None = None) -> dict:
        started = time.thread_time()
        self.calls += 1
        offset = int(starting_after or 0)
        end = min(offset + per_page, self.count)
        pages: dict[str, Any] = {"type": "pages", "per_page": per_page, "page": offset // per_page + 1}
        if end < self.count:
            pages["next"] = {"starting_after": str(end)}
        page = {"type": "list", "data": [self._contact(n) for n in range(offset, end)], "total_count": self.count, "pages": pages}
        self.cpu += time.thread_time() - started
        return page

    def list_tags(self) -> dict:
        self.calls += 1
        return {"type": "list", "data": [{"type": "tag", "id": str(i), "name": f"Tag {i}"} for i in range(5)]}


def _count_firehose() -> dict[str, int]:
    from sync.hull.client import HullClient

    counts = {"calls": 0, "records": 0}

    def post_firehose(self: Any, records: list[dict[str, Any]]) -> None:
        counts["calls"] += 1
        counts["records"] += len(records)

    HullClient.post_firehose = post_firehose  # type: ignore[method-assign]
    return counts


def _run_fetch_all(connector: Any) -> tuple[Any, float]:
    from sync.incoming.fetch import connector_fetch_all, fetch_run_to_end

    started = time.perf_counter()
    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="users")
    return cursor, time.perf_counter() - started


def child_fetch(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        _django(str(Path(tmp) / "bench.sqlite3"))
        from sync.intercom.client import IntercomClient

        workspace = GeneratedWorkspace(count)
        IntercomClient.for_connector = classmethod(lambda cls, connector, **kw: workspace)  # type: ignore[assignment]
        firehose = _count_firehose()
        connector = _connector()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before = time.process_time()
        cursor, seconds = _run_fetch_all(connector)
        cpu = time.process_time() - cpu_before
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "contacts": cursor.entities,
            "pages": cursor.pages,
            "status": cursor.status,
            "seconds": round(seconds, 2),
            "contacts_per_s": round(cursor.entities / seconds, 1),
            "firehose_calls": firehose["calls"],
            "firehose_records": firehose["records"],
            "firehose_calls_per_100_contacts": round(100 * firehose["calls"] / max(1, cursor.entities), 2),
            "intercom_calls": workspace.calls,
            # The process's CPU (all threads) minus the generated workspace's page building.
            "connector_cpu_ms_per_contact": round(1000 * (cpu - workspace.cpu) / max(1, cursor.entities), 3),
            "workspace_cpu_ms_per_contact": round(1000 * workspace.cpu / max(1, cursor.entities), 3),
            "peak_rss_mb": round(rss_peak / 1024, 1),
            "rss_growth_during_fetch_mb": round((rss_peak - rss_before) / 1024, 1),
        }


def child_sandbox_fetch(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        _django(str(Path(tmp) / "bench.sqlite3"))
        import responses
        from django.db import transaction

        from sandbox.intercom import clock
        from sandbox.intercom.models import Contact
        from sandbox.intercom.state import index_write
        from sandbox.intercom.responses_double import DEFAULT_TOKEN, IntercomSandbox

        firehose = _count_firehose()
        connector = _connector()
        connector.intercom_access_token = DEFAULT_TOKEN
        connector.save()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            sandbox = IntercomSandbox(mock)
            sandbox.validate = False
            sandbox.set_rate_limit(0)
            with transaction.atomic():
                rows = []
                for n in range(count):
                    contact = Contact(workspace=sandbox.workspace, role="user", email=f"user{n}@example.com",
                                      external_id=f"ext-{n}", name=f"User {n}", created_at=BASE_UPDATED_AT, updated_at=BASE_UPDATED_AT + n)
                    index_write(contact, None)
                    contact.searchable_at = clock.now() - 1  # an old contact: indexed already (as add_contact seeds them)
                    rows.append(contact)
                Contact.objects.bulk_create(rows, batch_size=1000)
            cursor, seconds = _run_fetch_all(connector)
        return {
            "contacts": cursor.entities,
            "pages": cursor.pages,
            "seconds": round(seconds, 2),
            "contacts_per_s": round(cursor.entities / seconds, 1),
            "firehose_calls_per_100_contacts": round(100 * firehose["calls"] / max(1, cursor.entities), 2),
            "intercom_http_calls": len(sandbox.calls),
            "note": "sandbox search scans every contact per page (O(N) per page): not representative above a few thousand",
        }


# --- webhooks ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _webhook_body(n: int) -> bytes:
    topic = "conversation.admin.replied" if n % 2 else "contact.user.updated"
    item = {"type": "conversation", "id": str(n), "user": {"type": "user", "id": f"{n:024x}", "email": f"u{n}@example.com"}} if n % 2 else {
        "type": "contact", "id": f"{n:024x}", "role": "user", "email": f"u{n}@example.com", "updated_at": BASE_UPDATED_AT + n}
    return json.dumps({"type": "notification_event", "app_id": "bench", "id": f"notif_{n}", "topic": topic,
                       "created_at": BASE_UPDATED_AT + n, "delivery_attempts": 1,
                       "data": {"type": "notification_event_data", "item": item}}).encode()


def leg_webhooks(total: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "web.sqlite3")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "connector_site.settings", "DATABASE_URL": f"sqlite:///{db}",
               "DJANGO_SECRET_KEY": "bench-secret-key", "FIELD_ENCRYPTION_KEY": "aW50ZXJjb20tY29ubmVjdG9yLXRlc3QtZmVybmV0LWs=",
               "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING", "Q_SYNC": "0", "SANDBOX_ENABLED": "0",
               # The endpoint's per-source throttle (600/min by default) would measure itself, not the endpoint.
               "PUBLIC_ENDPOINT_RATE": "1000000/minute"}
        setup = (
            "import django; django.setup();"
            "from django.core.management import call_command; call_command('migrate', verbosity=0); call_command('createcachetable');"
            "from sync.services.connectors import connector_create;"
            f"connector_create(name='Bench', slug='bench', intercom_client_secret={CLIENT_SECRET!r}, incoming_events=['*'])"
        )
        subprocess.run([PYTHON, "-c", setup], cwd=ROOT, env=env, check=True)
        port = _free_port()
        server = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "connector_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "4",
             "--log-level", "warning"], cwd=ROOT, env=env)
        try:
            _wait_for(port)
            bodies = [_webhook_body(n) for n in range(total)]
            signatures = ["sha1=" + hmac.new(CLIENT_SECRET.encode(), b, hashlib.sha1).hexdigest() for b in bodies]
            latencies: list[float] = []
            statuses: dict[int, int] = {}
            lock = threading.Lock()
            local = threading.local()

            def send(n: int) -> None:
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                started = time.perf_counter()
                conn.request("POST", "/intercom/bench/webhooks", body=bodies[n],
                             headers={"Content-Type": "application/json", "X-Hub-Signature": signatures[n]})
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status] = statuses.get(response.status, 0) + 1

            cpu_before = _tree_cpu_seconds(server.pid)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(send, range(total)))
            seconds = time.perf_counter() - started
            cpu = _tree_cpu_seconds(server.pid) - cpu_before
            # Redeliveries of the first 200: answered 200, stored once.
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(send, range(min(200, total))))
        finally:
            server.terminate()
            server.wait(timeout=10)
        # Stored rows, and the queued tasks (ORM broker) with the deliveries they cover: every stored
        # delivery must be enqueued once (a task per delivery, or one per batch of them).
        count_script = (
            "import django, json; django.setup(); from sync.models import WebhookDelivery; from django_q.models import OrmQ;"
            "tasks = [q.task for q in OrmQ.objects.all()];"
            "ids = [i for t in tasks for i in (t['args'][0] if t['func'].endswith('deliveries') else t['args'][:1])];"
            "print(json.dumps([WebhookDelivery.objects.count(), len(tasks), len(ids), len(set(ids))]))"
        )
        count, tasks, covered, distinct = json.loads(subprocess.run(
            [PYTHON, "-c", count_script], cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1])
        latencies.sort()
        return {
            "deliveries": total,
            "concurrency": concurrency,
            "server": "gunicorn 2 workers x 4 threads, SQLite (WAL)",
            "server_cpu_ms_per_request": round(cpu * 1000 / total, 2),
            "load_average": os.getloadavg(),
            "seconds": round(seconds, 2),
            "deliveries_per_s": round(total / seconds, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
            "statuses": statuses,
            "stored_rows_after_200_redeliveries": int(count),
            "tasks_enqueued": tasks,
            "deliveries_enqueued": covered,
            "distinct_deliveries_enqueued": distinct,
        }


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's master and workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def _wait_for(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _child(leg: str, count: int) -> dict[str, Any]:
    out = subprocess.run([PYTHON, __file__, "--child", leg, "--count", str(count)], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--sandbox-contacts", type=int, default=3_000)
    parser.add_argument("--webhooks", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only-webhooks", action="store_true")
    parser.add_argument("--child", choices=["fetch", "sandbox-fetch"])
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args()
    if args.child == "fetch":
        print(json.dumps(child_fetch(args.count)))
        return
    if args.child == "sandbox-fetch":
        print(json.dumps(child_sandbox_fetch(args.count)))
        return
    if args.only_webhooks:
        print(json.dumps({"webhook_endpoint": leg_webhooks(args.webhooks, args.concurrency)}, indent=2))
        return
    small = _child("fetch", args.small)
    large = _child("fetch", args.contacts)
    result = {
        "fetch_all": {
            f"{args.small}": small,
            f"{args.contacts}": large,
            "peak_rss_ratio_large_vs_small": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2),
        },
        "fetch_all_through_sandbox": _child("sandbox-fetch", args.sandbox_contacts) if args.sandbox_contacts else None,
        "webhook_endpoint": leg_webhooks(args.webhooks, args.concurrency) if args.webhooks else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
