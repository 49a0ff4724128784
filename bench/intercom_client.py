"""Benchmark: 4 worker processes push contact writes through IntercomClient against a rate-limited
sandbox served over real HTTP (gunicorn, temp SQLite), sharing one RateBudget row.

Prints JSON: calls accepted vs allowed by the limit (utilisation), 429s seen, 5xx retried, and
entities lost (every contact must end with the value its worker wrote last: must be 0).

    .venv/bin/python bench/intercom_client.py [--workers 4] [--limit 16] [--window 2] [--contacts 12]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django_setup import django_start  # bench/django_setup.py (scripts run from bench/)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-intercom-token"
WORKSPACE = "ws_bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _django(db_path: str) -> None:
    django_start(db_path)


class _CallCounter(logging.Handler):
    """Counts the client's `intercom.request` lines by status (the client logs every attempt)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.statuses: list[int | None] = []
        self.arrivals: list[float] = []  # approximate server arrival time of each non-429 answer
        self.first = self.last = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "intercom.request":
            now = time.time()
            self.first = self.first or now - float(getattr(record, "ms", 0)) / 1000
            self.last = now
            status = getattr(record, "status", None)
            self.statuses.append(status)
            if status is not None and status != 429:
                self.arrivals.append(now - float(getattr(record, "ms", 0)) / 2000)


def _worker(args: tuple[str, str, int, int, int]) -> dict:
    db_path, base_url, worker, contacts, rounds = args
    _django(db_path)
    from sync.intercom.budget import DatabaseBudget
    from sync.intercom.client import IntercomClient
    from sync.intercom.errors import IntercomApiError

    counter = _CallCounter()
    log = logging.getLogger("sync.intercom.client")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(counter)
    client = IntercomClient(
        TOKEN, workspace_key=WORKSPACE, base_url=base_url, budget=DatabaseBudget(), max_retries=6, max_rate_wait=30
    )
    written: dict[str, str] = {}
    errors = 0
    ids: dict[str, str] = {}
    for n in range(contacts):
        external_id = f"w{worker}-{n}"
        try:
            ids[external_id] = client.create_contact({"role": "user", "external_id": external_id, "name": "v0"})["id"]
            written[external_id] = "v0"
        except IntercomApiError:
            errors += 1
    for r in range(1, rounds + 1):
        for external_id, contact_id in ids.items():
            try:
                client.update_contact(contact_id, {"name": f"v{r}"})
                written[external_id] = f"v{r}"
            except IntercomApiError:
                errors += 1
    return {"written": written, "errors": errors, "statuses": counter.statuses, "arrivals": counter.arrivals, "first": counter.first, "last": counter.last}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=16, help="calls per window (below the sandbox's capacity on a busy 2-core box)")
    parser.add_argument("--window", type=int, default=2, help="window seconds (Intercom: 10)")
    parser.add_argument("--contacts", type=int, default=12, help="contacts per worker")
    parser.add_argument("--rounds", type=int, default=2, help="updates per contact after its create")
    parser.add_argument("--fault-rate", type=float, default=0.02)
    opts = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-intercom-")
    db_path = os.path.join(tmp, "db.sqlite3")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "connector_site.settings_test", "DATABASE_URL": f"sqlite:///{db_path}", "LOG_LEVEL": "WARNING"}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "createcachetable", "-v", "0"], cwd=ROOT, env=env, check=True)
    _django(db_path)
    from sandbox.intercom.models import Workspace

    Workspace.objects.create(
        token=TOKEN, id_code=WORKSPACE, rate_limit=opts.limit, rate_window_seconds=opts.window, fault_rate=opts.fault_rate
    )
    port = _free_port()
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "connector_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/sandbox/intercom"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        started = time.time()
        with mp.get_context("spawn").Pool(opts.workers) as pool:
            results = pool.map(_worker, [(db_path, base_url, w, opts.contacts, opts.rounds) for w in range(opts.workers)])
        wall = time.time() - started
    finally:
        server.terminate()
        server.wait(timeout=10)

    from sandbox.intercom.models import Contact

    final = dict(Contact.objects.filter(workspace__id_code=WORKSPACE).values_list("external_id", "name"))
    expected = {k: v for r in results for k, v in r["written"].items()}
    intended = opts.workers * opts.contacts
    lost = intended - sum(1 for k, v in expected.items() if final.get(k) == v) + sum(r["errors"] for r in results)
    statuses = [s for r in results for s in r["statuses"]]
    first = min(r["first"] for r in results if r["first"])
    last = max(r["last"] for r in results)
    elapsed = last - first
    accepted = sum(1 for s in statuses if s is not None and s != 429)
    # Fixed windows (as Intercom's): what the limit allowed is `limit` per window the run touched.
    windows = int(last // opts.window) - int(first // opts.window) + 1
    allowed = opts.limit * windows
    # Steady state: the first and last windows are partly outside the run, so leave them out.
    per_window: dict[int, int] = {}
    for t in (t for r in results for t in r["arrivals"]):
        per_window[int(t // opts.window)] = per_window.get(int(t // opts.window), 0) + 1
    interior = sorted(per_window)[1:-1]
    steady = sum(per_window[w] for w in interior) / (opts.limit * len(interior)) if interior else None
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "workers": opts.workers,
        "limit": f"{opts.limit}/{opts.window}s",
        "elapsed_seconds": round(elapsed, 2),
        "wall_seconds_with_startup": round(wall, 2),
        "calls_accepted": accepted,
        "windows": windows,
        "calls_allowed": allowed,
        "utilisation": round(steady, 3) if steady is not None else None,
        "utilisation_incl_partial_edge_windows": round(accepted / allowed, 3) if allowed else None,
        "responses_429": statuses.count(429),
        "responses_5xx_retried": sum(1 for s in statuses if s and s >= 500),
        "transport_errors": statuses.count(None),
        "entities_intended": intended,
        "entities_lost": lost,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
