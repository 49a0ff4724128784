"""Benchmark leg: every company delivered from a company scroll broken mid-way (target: 0 missing, 0 twice).

A workspace of --companies companies in the Intercom sandbox (HTTP level through `responses`,
every request and answer contract-checked, Intercom's rate limit, the sandbox's virtual clock) is
read by the connector's real fetch-all (fetch_step pages, the real IntercomClient, the real
FirehoseBatch and its JWTs) into the Hull sandbox's firehose (sandbox/hull: Hull's stand-in, which
verifies and records every record it receives). Each leg breaks the scroll once, half-way:

- `5xx_after_the_work`: Intercom moves the scroll on, then answers a 5xx (the sandbox's fault mode
  "after"): a retried scroll_param would serve the page after the lost one;
- `lost_answer`: the same, but the answer never comes (mode "drop": a read timeout);
- `expired_scroll_param`: the worker is away 61 s between two pages (the scroll idles out: 404);
- `hull_down_mid_page`: Intercom served the page, Hull's firehose answers 503, and the fetch is
  resumed at once ("Fetch all" again, inside the scroll's minute);
- `all_of_them`: the four, at 20 %, 40 %, 60 % and 80 % of one run.

Per leg: companies, delivered (distinct companies Hull received), duplicates (records past the
first per company), missing, restarts (scrolls opened after the first), seconds. Exit status 1
when a leg misses a company or delivers one twice.

    .venv/bin/python bench/company_scroll.py [--companies 10000] [--legs 5xx_after_the_work,...]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django_setup import django_start  # bench/django_setup.py (scripts run from bench/)

ROOT = Path(__file__).resolve().parent.parent
BASE_UPDATED_AT = 1_700_000_000
LEGS = ("5xx_after_the_work", "lost_answer", "expired_scroll_param", "hull_down_mid_page", "all_of_them")
FIREHOSE = re.compile(r"^https://firehose\.[^/]+(/.*)?$")
SCROLL = "/companies/scroll"
PAGE = 50  # the sandbox's (and Intercom's) scroll page


def _django(db_path: str) -> None:
    django_start(db_path, migrate=True)
    logging.disable(logging.INFO)  # one log line per company would measure the log sink


def _virtual_time() -> None:
    """The Intercom client waits on the sandbox's clock (a scroll_exists wait of 61 s is instant),
    and the Hull client retries without delays, as in the tests."""
    from sandbox.intercom import clock
    from sync.hull import client as hull_client, firehose
    from sync.intercom import client as intercom_client

    clock.freeze()
    intercom_client.default_sleep = lambda seconds: clock.advance(max(0.0, seconds))
    intercom_client.default_clock = clock.now
    hull_client.RETRY_BACKOFF = 0.0
    firehose.FLUSH_AFTER = 0  # no idle-flush timer thread: flush per 100 records and at the end


def _route_hull(mock: Any) -> None:
    import responses

    from sandbox.hull.api import handle_request

    def firehose(request: Any) -> tuple[int, dict[str, str], str]:
        status, headers, payload = handle_request("POST", "/firehose", {}, dict(request.headers), request.body)
        return status, headers, json.dumps(payload)

    mock.add_callback(responses.POST, FIREHOSE, callback=firehose)


def _workspace(n: int, companies: int) -> tuple[Any, list[str]]:
    """A sandbox workspace of `companies` visible companies (one shared member); their Intercom ids."""
    from django.db import transaction

    from sandbox.intercom.models import Company, Contact, Workspace
    from sandbox.intercom.state import index_write

    workspace = Workspace.objects.create(token=f"scroll-bench-token-{n}", id_code=f"ws_scroll_{n}", name=f"Scroll bench {n}")
    with transaction.atomic():
        member = Contact(workspace=workspace, role="user", email="member@example.com", external_id="member",
                         created_at=BASE_UPDATED_AT, updated_at=BASE_UPDATED_AT)
        index_write(member, None)
        member.save()
        Company.objects.bulk_create(
            [Company(workspace=workspace, company_id=f"co{i:06d}", name=f"Company {i}", created_at=BASE_UPDATED_AT,
                     updated_at=BASE_UPDATED_AT + i) for i in range(companies)],
            batch_size=2000,
        )
        rows = list(Company.objects.filter(workspace=workspace).order_by("seq"))
        through = Company.contacts.through
        through.objects.bulk_create([through(company_id=c.pk, contact_id=member.pk) for c in rows], batch_size=2000)
    return workspace, [c.intercom_id for c in rows]


def _connector(n: int, token: str) -> Any:
    from sync.services.connectors import connector_create

    return connector_create(
        name=f"Scroll bench {n}",
        slug=f"scroll-bench-{n}",
        hull_organization=f"scroll{n}.hullapp.io",
        hull_id=f"5c092905c36af496c7{n:06d}",
        hull_secret=f"scroll-bench-hull-secret-of-connector-{n:06d}",
        intercom_access_token=token,
        intercom_workspace_id=f"ws_scroll_{n}",
        fetch_companies=True,
    )


def _breaks(leg: str, pages: int) -> dict[int, str]:
    """After which page (the cursor's page count) each break is set up for the next page."""
    half = max(1, pages // 2)
    if leg == "all_of_them":
        points = [max(1, pages * share // 5) for share in (1, 2, 3, 4)]
        return dict(zip(points, ("5xx_after_the_work", "lost_answer", "expired_scroll_param", "hull_down_mid_page"), strict=True))
    return {half: leg}


def _leg(sandbox: Any, n: int, leg: str, companies: int) -> dict[str, Any]:
    from sandbox.hull.api import SandboxState
    from sandbox.hull.models import SandboxFirehoseRecord
    from sandbox.intercom import clock
    from sync.incoming.fetch import connector_fetch_all, fetch_run_to_end

    workspace, ids = _workspace(n, companies)
    connector = _connector(n, workspace.token)
    breaks = _breaks(leg, -(-companies // PAGE))
    pending = dict(breaks)
    sandbox.strikes = []
    first_call = len(sandbox.calls)

    def on_page(cursor: Any, result: Any) -> None:
        what = pending.pop(cursor.pages, None)  # the pages re-read after a restart count on: each break happens once
        if what in ("5xx_after_the_work", "lost_answer"):
            mode = "after" if what == "5xx_after_the_work" else "drop"
            sandbox.strike("GET", SCROLL, 1, mode=mode, when=lambda query, body: "scroll_param" in query)
        elif what == "expired_scroll_param":
            clock.advance(61)
        elif what == "hull_down_mid_page":
            SandboxState.firehose_down = True

    started = time.perf_counter()
    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    resumes = 0
    while True:
        cursor = fetch_run_to_end(connector=connector, kind="fetch_all", stream="companies", on_page=on_page)
        if cursor.status != "running" or resumes >= 3:
            break
        # The step failed (Hull was down): Hull is back, and the fetch is resumed at once.
        SandboxState.firehose_down = False
        resumes += 1
        connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    seconds = time.perf_counter() - started
    SandboxState.firehose_down = False

    received: Counter[str] = Counter()
    for claims in SandboxFirehoseRecord.objects.filter(call__connector_id=connector.hull_id, error="").values_list("claims", flat=True):
        anonymous_id = ((claims or {}).get("io.hull.asAccount") or {}).get("anonymous_id", "")
        if anonymous_id.startswith("intercom:"):
            received[anonymous_id.removeprefix("intercom:")] += 1
    calls = sandbox.calls[first_call:]
    opens = sum(1 for c in calls if c.path == SCROLL and "scroll_param" not in c.query and c.status == 200)  # not the scroll_exists waits
    return {
        "breaks_after_page": {str(page): what for page, what in sorted(breaks.items())},
        "status": cursor.status,
        "companies": len(ids),
        "delivered": len(set(ids) & set(received)),
        "duplicates": sum(count - 1 for count in received.values() if count > 1),
        "missing": len(set(ids) - set(received)),
        "restarts": opens - 1,
        "resumed_after_hull_failure": resumes,
        "intercom_calls": len(calls),
        "scroll_statuses": dict(Counter(str(c.status) for c in calls if c.path == SCROLL)),
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--legs", default=",".join(LEGS), help="comma-separated, of: " + ", ".join(LEGS))
    args = parser.parse_args(argv)
    legs = [leg for leg in args.legs.split(",") if leg]
    unknown = set(legs) - set(LEGS)
    if unknown:
        parser.error(f"unknown legs: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory() as tmp:
        _django(str(Path(tmp) / "scroll.sqlite3"))
        _virtual_time()
        import responses

        from sandbox.intercom.responses_double import IntercomSandbox

        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            # One handle routes api.intercom.io; each leg has its own workspace (its own token).
            sandbox = IntercomSandbox(mock, token="scroll-bench-route", id_code="ws_scroll_route")
            _route_hull(mock)
            results = {leg: _leg(sandbox, n, leg, args.companies) for n, leg in enumerate(legs, start=1)}
            violations = list(sandbox.violations)

    failed: Callable[[dict[str, Any]], bool] = lambda r: bool(r["missing"] or r["duplicates"])  # noqa: E731
    result = {
        "bench": "company_scroll",
        "companies": args.companies,
        "legs": results,
        "contract_violations": violations[:3],
        "target": {"missing": 0, "duplicates": 0},
        "ok": not violations and not any(failed(r) for r in results.values()),
    }
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
