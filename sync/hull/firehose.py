"""Firehose batching: records are buffered and sent 100 at a time, or shortly after the last one.

Every write from the connector to Hull is a firehose record (docs/hull-protocol.md#firehose):
`traits` (user or account attributes, or a link), `track` (a user event), `alias`/`unalias`.
Each record names its entity with its own JWT; the batch is one HTTP call.

Usage::

    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "jane@acme.com"}, {"intercom_user/id": "123"})
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from sync.hull.client import HullClient, utc_now_iso

logger = logging.getLogger("sync.hull.firehose")

FLUSH_AT = 100  # records per POST
FLUSH_AFTER = 1.0  # seconds after the last record before a partial batch goes out on its own


def set_if_null(value: Any) -> dict[str, Any]:
    """A traits value that only fills an empty attribute (mappings with `overwrite: false`)."""
    return {"operation": "setIfNull", "value": value}


def deterministic_event_id(*parts: Any) -> str:
    """A stable event id from the event's natural key, so replays overwrite instead of duplicate."""
    text = ":".join(str(p) for p in parts)
    return text if len(text) <= 128 else hashlib.sha256(text.encode()).hexdigest()


class FirehoseBatch:
    """A buffer of firehose records for one connector; thread-safe; flushes on exit."""

    def __init__(self, client: HullClient, *, flush_at: int | None = None, flush_after: float | None = None) -> None:
        self.client = client
        # Module defaults read at construction so tests (and the sandbox fixture) can tune them.
        self.flush_at = flush_at or FLUSH_AT
        self.flush_after = FLUSH_AFTER if flush_after is None else flush_after
        self.records: list[dict[str, Any]] = []
        self.sent = 0  # records handed to Hull so far
        self.calls = 0  # HTTP calls made
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._deadline = 0.0

    def __enter__(self) -> FirehoseBatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.flush()
            return
        # The body failed; what it built is still worth sending, but its error is the one to raise.
        try:
            self.flush()
        except Exception:  # noqa: BLE001
            logger.exception("hull.firehose.flush-on-error-failed", extra={"records": len(self.records)})

    # -- record builders --------------------------------------------------------------------

    def _add(self, record_type: str, body: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None, **claims: Any) -> None:
        record: dict[str, Any] = {
            "type": record_type,
            "headers": {"Hull-Access-Token": self.client.token(**claims)},
            "body": dict(body),
            "timestamp": utc_now_iso(),
        }
        if extra:
            record.update(extra)
        with self._lock:
            self.records.append(record)
            full = len(self.records) >= self.flush_at
        if full:
            self.flush()
        else:
            self._arm_timer()

    def traits(self, user_claims: Mapping[str, Any] | str, traits: Mapping[str, Any]) -> None:
        """User attributes; a value may be `{"operation": "setIfNull", "value": v}`."""
        self._add("traits", traits, user=user_claims)

    def account_traits(self, account_claims: Mapping[str, Any] | str, traits: Mapping[str, Any]) -> None:
        self._add("traits", traits, account=account_claims)

    def link_account(
        self,
        user_claims: Mapping[str, Any] | str,
        account_claims: Mapping[str, Any] | str,
        traits: Mapping[str, Any] | None = None,
    ) -> None:
        """Link the user to the account (docs/hull-protocol.md#account-linking): subject account, both claims; `{}` links only."""
        self._add("traits", traits or {}, user=user_claims, account=account_claims)

    def track(
        self,
        user_claims: Mapping[str, Any] | str,
        event: str,
        properties: Mapping[str, Any],
        *,
        event_id: str,
        created_at: str | None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """A user event (docs/hull-protocol.md#events). The context is spread into the body and repeated as `context`."""
        ctx: dict[str, Any] = {"ip": None, "url": None, "referer": None}
        ctx.update(context or {})
        if "event_type" in ctx and "type" not in ctx:
            ctx["type"] = ctx["event_type"]
        ctx["event_id"] = event_id
        if created_at is not None:
            ctx["created_at"] = created_at
        body = {"event": event, "properties": dict(properties), **ctx}
        self._add("track", body, extra={"context": ctx}, user=user_claims)

    def alias(self, user_claims: Mapping[str, Any] | str, anonymous_id: str) -> None:
        self._add("alias", {"anonymous_id": anonymous_id}, user=user_claims)

    def unalias(self, user_claims: Mapping[str, Any] | str, anonymous_id: str) -> None:
        self._add("unalias", {"anonymous_id": anonymous_id}, user=user_claims)

    # -- sending ----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        """Flush `flush_after` s after the last record: one timer thread per quiet spell, not per
        record (a thread start per record was most of the batch's own CPU cost)."""
        if not self.flush_after:
            return
        with self._lock:
            self._deadline = time.monotonic() + self.flush_after
            if self._timer is None:
                self._start_timer(self.flush_after)

    def _start_timer(self, delay: float) -> None:
        timer = threading.Timer(delay, self._flush_from_timer)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _flush_from_timer(self) -> None:
        with self._lock:
            if self._timer is not threading.current_thread():
                return  # cancelled by a flush, or replaced
            remaining = self._deadline - time.monotonic()
            if remaining > 0 and self.records:
                self._start_timer(remaining)  # records came in meanwhile: wait for the new quiet spell
                return
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - a background flush has nobody to raise to; records stay buffered
            logger.exception("hull.firehose.timer-flush-failed", extra={"records": len(self.records)})

    def flush(self) -> int:
        """Send what is buffered, FLUSH_AT records per call. On failure the unsent records stay."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            sent = 0
            while self.records:
                chunk = self.records[: self.flush_at]
                self.client.post_firehose(chunk)
                del self.records[: len(chunk)]
                self.calls += 1
                sent += len(chunk)
                logger.info("hull.firehose.flushed", extra={"records": len(chunk), "connector_id": self.client.connector_id})
            self.sent += sent
            return sent
