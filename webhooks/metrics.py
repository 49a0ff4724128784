"""`/metrics`: Prometheus text exposition (format 0.0.4), rendered here without a client library.

Why not `prometheus_client`: the work happens in several gunicorn workers and several qcluster
processes; its multi-process mode needs a shared directory set in every process's environment and
a gunicorn exit hook. Instead:

- gauges (queue depths, rate budget left, sync outcomes of the last hour, failed deliveries) are
  read from the database (and the broker) at scrape time, so every process answers the same;
- the Intercom call counters and the latency histogram are counted in each process from the
  client's `intercom.request` log line (the client's one request method logs every attempt,
  docs/conventions.md "One client per remote system"), and added to shared counters in the Django cache (Redis in the
  scale-out setup, where `incr` is atomic) at most every `FLUSH_INTERVAL` seconds, by a
  background thread, and before every scrape. The counters need `LOG_LEVEL` at INFO or lower.

Optional protection: set `METRICS_TOKEN`, and scrapers must send `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CLIENT_LOGGER = "sync.intercom.client"
FLUSH_INTERVAL = 5.0  # seconds between two flushes of a process's counters to the shared cache
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds
SYNC_LOG_WINDOW = timedelta(hours=1)
_SERIES_INDEX = "metrics:series"
_KEY_PREFIX = "metrics:c:"


# -- Intercom call counters -------------------------------------------------------------------


def _status_class(status: int | str | None, error: str) -> str:
    if status is None:
        return "transport_error" if error else "unknown"
    code = int(status)
    if code == 429:
        return "429"
    return f"{code // 100}xx"


class CallRecorder(logging.Handler):
    """Counts Intercom calls from the client's log records; flushes the deltas to the cache."""

    def __init__(self, *, background: bool = False) -> None:
        super().__init__(level=logging.INFO)
        self._pending: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._background = background
        self._thread_pid = 0  # the process whose flusher thread runs (threads do not survive a fork)

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() != "intercom.request":
            return
        workspace = str(getattr(record, "workspace", "") or "unknown")
        status = getattr(record, "status", None)
        error = str(getattr(record, "error", "") or "")
        seconds = float(getattr(record, "ms", 0) or 0) / 1000.0
        klass = _status_class(status, error)
        series = [f"intercom_requests_total|workspace={workspace},status={klass}"]
        if klass not in ("2xx", "3xx"):
            series.append(f"intercom_request_errors_total|workspace={workspace},status={klass}")
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                series.append(f"intercom_request_duration_seconds_bucket|le={bound}")
        series.append("intercom_request_duration_seconds_bucket|le=+Inf")
        series.append("intercom_request_duration_seconds_count|")
        with self._lock:
            for name in series:
                self._pending[name] += 1
            # Sums are kept in microseconds: cache counters are integers.
            self._pending["intercom_request_duration_seconds_sum|"] += int(seconds * 1_000_000)
        if self._background and self._thread_pid != os.getpid():
            # django-q2 forks its workers after setup: each process starts its own flusher.
            self._thread_pid = os.getpid()
            threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True).start()

    def flush_to_cache(self) -> None:
        """Add this process's pending deltas to the shared counters (safe to call any time)."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(int)
            self._last_flush = time.monotonic()
        if not pending:
            return
        try:
            for name, delta in pending.items():
                key = _KEY_PREFIX + name
                cache.add(key, 0, timeout=None)
                try:
                    cache.incr(key, delta)
                except ValueError:  # evicted between add and incr
                    cache.set(key, delta, timeout=None)
            # The index is re-checked on every flush: the cache may have been cleared or evicted.
            index = set(cache.get(_SERIES_INDEX) or ())
            if not set(pending) <= index:
                cache.set(_SERIES_INDEX, sorted(index | set(pending)), timeout=None)
        except Exception:  # noqa: BLE001 - metrics must never break a sync; retried next flush
            with self._lock:
                for name, delta in pending.items():
                    self._pending[name] += delta
            logger.warning("metrics.flush-failed", exc_info=True)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            if self._pending:
                self.flush_to_cache()
                connections.close_all()  # this thread's own connections only


_recorder: CallRecorder | None = None
_install_lock = threading.Lock()


def install_call_recorder(*, background: bool | None = None) -> CallRecorder:
    """Attach the recorder to the Intercom client's logger, once per process."""
    global _recorder
    with _install_lock:
        if _recorder is None:
            if background is None:
                # Under pytest the test flushes explicitly; a thread would race the test database.
                background = "pytest" not in sys.modules
            _recorder = CallRecorder(background=background)
            logging.getLogger(CLIENT_LOGGER).addHandler(_recorder)
            if background:
                atexit.register(_recorder.flush_to_cache)
        return _recorder


def _shared_counters() -> dict[str, int]:
    names = list(cache.get(_SERIES_INDEX) or ())
    if not names:
        return {}
    values = cache.get_many([_KEY_PREFIX + name for name in names])
    return {name: int(values.get(_KEY_PREFIX + name) or 0) for name in names}


# -- rendering -------------------------------------------------------------------------------


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


class Exposition:
    """Collects metric families and renders them in the text format (HELP/TYPE once per family)."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, value: float, labels: Mapping[str, object] | None = None) -> None:
        family = name
        for suffix in ("_bucket", "_count", "_sum"):
            if kind == "histogram" and name.endswith(suffix):
                family = name[: -len(suffix)]
        entry = self._families.setdefault(family, (kind, help_text, []))
        number = repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))
        entry[2].append(f"{name}{_labels(labels or {})} {number}")

    def declare(self, name: str, kind: str, help_text: str) -> None:
        self._families.setdefault(name, (kind, help_text, []))

    def render(self) -> str:
        lines: list[str] = []
        for family, (kind, help_text, samples) in self._families.items():
            lines.append(f"# HELP {family} {help_text}")
            lines.append(f"# TYPE {family} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


_HELP = {
    "intercom_requests_total": ("counter", "Intercom API attempts by workspace and status class."),
    "intercom_request_errors_total": ("counter", "Intercom API attempts that failed (4xx, 429, 5xx, transport)."),
    "intercom_request_duration_seconds": ("histogram", "Intercom API attempt latency."),
}


def _parse_series(series: str) -> tuple[str, dict[str, str]]:
    name, _, raw = series.partition("|")
    labels = dict(pair.split("=", 1) for pair in raw.split(",") if pair)
    return name, labels


def _add_call_counters(out: Exposition, counters: dict[str, int]) -> None:
    for family, (kind, help_text) in _HELP.items():
        out.declare(family, kind, help_text)
    buckets: list[tuple[float, str, int]] = []
    for series, value in sorted(counters.items()):
        name, labels = _parse_series(series)
        if name == "intercom_request_duration_seconds_bucket":
            bound = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets.append((bound, labels["le"], value))
            continue
        if name == "intercom_request_duration_seconds_sum":
            out.add(name, "histogram", "", value / 1_000_000)
            continue
        kind = "histogram" if name.startswith("intercom_request_duration_seconds") else "counter"
        out.add(name, kind, "", value, labels)
    for _bound, le, value in sorted(buckets):
        out.add("intercom_request_duration_seconds_bucket", "histogram", "", value, {"le": le})


def _add_database_gauges(out: Exposition) -> None:
    from sync.intercom.budget import budget_remaining
    from sync.models import Connector, DeliveryStatus, HullNotification, RateBudget, SyncLog, WebhookDelivery

    open_statuses = [DeliveryStatus.PENDING, DeliveryStatus.PROCESSING]
    connectors = {c.pk: c for c in Connector.objects.only("pk", "slug", "intercom_workspace_id")}
    out.declare("connector_notifications", "gauge", "Hull notifications stored, by connector and status (open or failed).")
    out.declare("connector_webhook_deliveries", "gauge", "Intercom webhook deliveries stored, by connector and status (open or failed).")
    for model, family in ((HullNotification, "connector_notifications"), (WebhookDelivery, "connector_webhook_deliveries")):
        rows = (
            model.objects.filter(status__in=[*open_statuses, DeliveryStatus.FAILED])
            .values("connector_id", "status")
            .annotate(n=Count("id"))
        )
        for row in rows:
            slug = connectors[row["connector_id"]].slug if row["connector_id"] in connectors else row["connector_id"]
            out.add(family, "gauge", "", row["n"], {"connector": slug, "status": row["status"]})

    out.declare("connector_task_queue_depth", "gauge", "Tasks waiting in the django-q2 broker.")
    try:
        from django_q.brokers import get_broker

        out.add("connector_task_queue_depth", "gauge", "", get_broker().queue_size())
    except Exception:  # noqa: BLE001 - a broker that cannot answer is reported, not fatal
        logger.warning("metrics.broker-unavailable", exc_info=True)
    try:
        from django_q.models import Failure

        out.add("connector_task_failures", "gauge", "django-q2 tasks that failed after their attempts (Failure rows).", Failure.objects.count())
    except Exception:  # noqa: BLE001
        logger.warning("metrics.failures-unavailable", exc_info=True)

    out.declare("intercom_rate_budget_remaining", "gauge", "Intercom calls left in the current rate-limit window, per workspace.")
    out.declare("intercom_rate_budget_limit", "gauge", "Intercom calls allowed per rate-limit window, per workspace (last seen).")
    seen: set[str] = set()
    for connector in connectors.values():
        key = connector.intercom_workspace_id or f"connector-{connector.pk}"
        if key in seen:
            continue
        seen.add(key)
        remaining = budget_remaining(key)
        if remaining is not None:
            out.add("intercom_rate_budget_remaining", "gauge", "", remaining, {"workspace": key})
    for budget in RateBudget.objects.values("workspace_key", "limit"):
        out.add("intercom_rate_budget_limit", "gauge", "", budget["limit"], {"workspace": budget["workspace_key"]})

    out.declare("connector_sync_outcomes_last_hour", "gauge", "SyncLog rows written in the last hour, by connector, status and action.")
    since = timezone.now() - SYNC_LOG_WINDOW
    outcomes = (
        SyncLog.objects.filter(created_at__gte=since)
        .values("connector_id", "status", "action")
        .annotate(n=Count("id"))
        .order_by("connector_id", "status", "action")
    )
    for outcome in outcomes:
        slug = connectors[outcome["connector_id"]].slug if outcome["connector_id"] in connectors else outcome["connector_id"]
        out.add(
            "connector_sync_outcomes_last_hour",
            "gauge",
            "",
            outcome["n"],
            {"connector": slug, "status": outcome["status"], "action": outcome["action"]},
        )


def render_metrics() -> str:
    """The whole exposition: this process's pending counters are flushed first."""
    install_call_recorder().flush_to_cache()
    out = Exposition()
    _add_call_counters(out, _shared_counters())
    _add_database_gauges(out)
    out.add("connector_metrics_scrape_timestamp_seconds", "gauge", "When this scrape was rendered.", round(time.time(), 3))
    return out.render()


def _authorised(request: HttpRequest, token: str) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN or os.environ.get("METRICS_TOKEN", "")
    if not token and not settings.METRICS_PUBLIC:
        # Outside debug the numbers (connectors, queue depths, error rates) are not for anyone.
        return HttpResponse("Metrics need METRICS_TOKEN (or METRICS_PUBLIC=1) in this deployment.\n", status=403, content_type="text/plain")
    if token and not _authorised(request, token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE)


def metric_samples(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """Parse an exposition back into (name, labels, value): used by the tests and the benchmark."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, raw = head.partition("{")
        labels: dict[str, str] = {}
        for pair in raw.rstrip("}").split('",'):
            if "=" in pair:
                key, _, val = pair.partition("=")
                labels[key] = val.strip('"')
        yield name, labels, float(value)
