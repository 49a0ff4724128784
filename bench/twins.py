"""Benchmark leg: twin contacts from concurrent pushes of the same new leads (target: 0).

Several "workers" (threads, each running the real task body `notification_process` on its own
stored notification) push the same new leads at once against the Intercom sandbox at the HTTP level
(through `responses`, contract checks off), with the sandbox's default search lag (120 s: search
never shows the new leads during the run) and Intercom's default rate limit. Leads have nothing
unique in Intercom, so nothing but the connector's identity lock and IdentityLinks keeps them single.
A temporary SQLite file database (WAL) shared by the threads, or DATABASE_URL when it is PostgreSQL.

A second leg runs the same load with the identity lock switched off, to show what it prevents.

    .venv/bin/python bench/twins.py [--leads 20] [--notifications 6] [--workers 4]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django_setup import django_start  # bench/django_setup.py (scripts run from bench/)

ROOT = Path(__file__).resolve().parent.parent
SEGMENT = {"id": "seg-visitors", "name": "Visitors", "type": "users_segment"}


def _django(db_path: str) -> None:
    django_start(db_path, keep_postgres=True, migrate=True)
    from django.conf import settings

    settings.OUTGOING_CONCURRENCY = 2
    logging.disable(logging.INFO)


def _connector(slug: str) -> Any:
    from sync.models import Direction, Entity, FieldMapping
    from sync.services.connectors import connector_create

    connector = connector_create(
        name=f"Twins {slug}",
        slug=slug,
        hull_organization="acme.hullapp.io",
        hull_id=f"5c092905c36af496c70{abs(hash(slug)) % 100000:05d}",
        hull_secret="bench-hull-secret",
        intercom_access_token=f"twins-token-{slug}",
        intercom_workspace_id=f"ws_{slug}",
        synchronized_lead_segments=[SEGMENT["id"]],
        synchronized_user_segments=[],
        tag_leads=False,
    )
    FieldMapping.objects.create(
        connector=connector, entity=Entity.LEAD, direction=Direction.OUTGOING, hull_attribute="name", intercom_attribute="name"
    )
    return connector


def _messages(leads: int, n: int) -> list[dict]:
    return [
        {
            "message_id": f"m-{n}-{i}",
            "user": {"id": f"hull-lead-{i}", "email": f"visitor{i}@example.com", "name": f"Visitor {i} ({n})",
                     "indexed_at": "2024-01-01T00:00:00Z"},
            "segments": [SEGMENT],
            "changes": {"segments": {"entered": [SEGMENT]}},
            "events": [],
        }
        for i in range(leads)
    ]


def _leg(sandbox: Any, *, slug: str, leads: int, notifications: int, workers: int) -> dict:
    from django.db import connection

    from sandbox.intercom.models import Contact, Workspace
    from sync.models import HullNotification, SyncLog
    from sync.outgoing.notifications import notification_process

    connector = _connector(slug)
    workspace, _ = Workspace.objects.get_or_create(token=connector.intercom_access_token, defaults={"id_code": f"ws_{slug}"})
    stored = [
        HullNotification.objects.create(
            connector=connector, notification_id=f"{slug}-{n}", channel="user:update",
            payload={"notification_id": f"{slug}-{n}", "channel": "user:update", "messages": _messages(leads, n)},
            message_count=leads,
        )
        for n in range(notifications)
    ]
    queue = list(stored)
    lock = threading.Lock()
    start = threading.Barrier(workers)
    errors: list[str] = []

    def worker() -> None:
        start.wait()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    notification = queue.pop()
                notification_process(notification=notification)
        except Exception as exc:  # noqa: BLE001 - reported in the JSON
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    per_email = Counter(Contact.objects.filter(workspace=workspace, role="lead", deleted=False).values_list("email", flat=True))
    statuses = Counter(HullNotification.objects.filter(connector=connector).values_list("status", flat=True))
    return {
        "pushes": leads * notifications,
        "leads_made": sum(per_email.values()),
        "twin_contacts": sum(per_email.values()) - len(per_email),
        "leads_with_twins": sum(1 for n in per_email.values() if n > 1),
        "notifications": dict(statuses),
        "error_rows": SyncLog.objects.filter(connector=connector, status="error").count(),
        "seconds": round(elapsed, 2),
        "errors": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=20)
    parser.add_argument("--notifications", type=int, default=6, help="each carries all the leads")
    parser.add_argument("--workers", type=int, default=4, help="threads processing notifications at once")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        _django(str(Path(tmp) / "twins.sqlite3"))
        import responses

        from sync.outgoing import contacts
        from sandbox.intercom.responses_double import IntercomSandbox

        from sync.hull.client import HullClient

        HullClient.post_firehose = lambda self, records: None  # type: ignore[method-assign]  # write-backs not measured
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            # The fixture's sandbox handle routes api.intercom.io; each leg opens its own workspace.
            sandbox = IntercomSandbox(mock, token="twins-token-bench-route", id_code="ws_route")
            sandbox.validate = False
            opts = {"leads": args.leads, "notifications": args.notifications, "workers": args.workers}
            with_lock = _leg(sandbox, slug="locked", **opts)
            real_lock = contacts.identity_lock
            contacts.identity_lock = lambda keys, **kwargs: contextlib.nullcontext()  # type: ignore[assignment]
            try:
                without_lock = _leg(sandbox, slug="unlocked", **opts)
            finally:
                contacts.identity_lock = real_lock
        from django.db import connection

        result = {
            "bench": "twins",
            "database": connection.vendor,
            "search_lag_seconds": 120,
            **opts,
            "with_identity_lock": with_lock,
            "without_identity_lock": without_lock,
            "target_twin_contacts": 0,
        }
    print(json.dumps(result, indent=2))
    if with_lock["twin_contacts"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
