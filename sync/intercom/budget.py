"""The Intercom rate-limit budget of one workspace, shared by every process of the deployment.

Intercom enforces its limit per 10-second window and reports it on every response
(`X-RateLimit-Limit`, `-Remaining`, `-Reset`, docs/intercom-api.md#rate-limits). Each process would exhaust it on
its own if it only read its own responses, so the window is kept in one shared place:

- `DatabaseBudget` (default): the `sync.models.RateBudget` row of the workspace, taken with a
  conditional `UPDATE ... WHERE remaining > reserve` (atomic on SQLite and PostgreSQL, no lock held
  across the HTTP call);
- `RedisBudget` (when `settings.REDIS_URL` is set): the same rules in one Lua script.

Protocol: `acquire()` before a call (returns at once, or says how long to wait), `record()` with the
response headers after it, `exhausted()` after a 429.

At a window change only one caller goes first (the probe): its answer tells everyone the new
window's count. Letting every caller go until some answer came back overdrew the new window by
the calls in flight, which Intercom answered with 429s at every window change under load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from django.conf import settings
from django.db.models import F, Q

from sync.models import RateBudget

OPENING = -1  # `remaining` while the probe, the first call of a new window, is on its way
PROBE_TIMEOUT = 2.0  # seconds: a probe that never answered is replaced by the next caller
PROBE_POLL = 0.05  # seconds: how often the others look for the probe's answer


@dataclass(frozen=True)
class Permit:
    """The outcome of `acquire`: go now (`wait == 0`), or wait `wait` seconds and ask again."""

    wait: float
    remaining: int | None


class Budget(Protocol):
    def acquire(self, workspace_key: str, *, now: float, reserve: int = 0) -> Permit: ...

    def record(self, workspace_key: str, *, limit: int, remaining: int, reset: float, now: float) -> None: ...

    def exhausted(self, workspace_key: str, *, reset: float, now: float) -> None: ...

    def remaining(self, workspace_key: str, *, now: float) -> int | None: ...


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class DatabaseBudget:
    """RateBudget rows; every write is one conditional UPDATE so concurrent processes never overdraw."""

    def acquire(self, workspace_key: str, *, now: float, reserve: int = 0) -> Permit:
        rows = RateBudget.objects.filter(workspace_key=workspace_key)
        taken = rows.filter(reset_at__gt=_dt(now), remaining__gt=reserve).update(remaining=F("remaining") - 1)
        if taken:
            return Permit(wait=0.0, remaining=None)
        row = rows.values("remaining", "reset_at", "limit").first()
        if row is None or row["reset_at"] is None:
            return Permit(wait=0.0, remaining=None)  # never called: go, the answer opens the window
        reset = row["reset_at"].timestamp()
        if reset <= now:  # the window is over: the first to get here probes, the others wait for it
            probe = rows.filter(reset_at=row["reset_at"]).update(remaining=OPENING, reset_at=_dt(now + PROBE_TIMEOUT))
            return Permit(wait=0.0 if probe else PROBE_POLL, remaining=None if probe else 0)
        if row["remaining"] == OPENING:
            return Permit(wait=min(PROBE_POLL, reset - now), remaining=0)
        return Permit(wait=max(0.0, reset - now), remaining=row["remaining"])

    def record(self, workspace_key: str, *, limit: int, remaining: int, reset: float, now: float) -> None:
        rows = RateBudget.objects.filter(workspace_key=workspace_key)
        reset_at = _dt(reset)
        current = rows.values("remaining", "reset_at").first()
        if current and current["reset_at"] == reset_at and current["remaining"] <= remaining:
            return  # nothing to learn: skip the write (SQLite serialises writers)
        # A newer window replaces ours (so does any current window while a probe is out); inside the
        # same window the lower count wins, because our own count already includes calls still in
        # flight and Intercom's includes other apps' calls.
        replaceable = Q(reset_at__isnull=True) | Q(reset_at__lt=reset_at)
        if reset > now:
            replaceable |= Q(remaining=OPENING)
        newer = rows.filter(replaceable).update(limit=limit, remaining=remaining, reset_at=reset_at)
        if newer:
            return
        if rows.filter(reset_at=reset_at, remaining__gt=remaining).update(remaining=remaining, limit=limit):
            return
        if not rows.exists():
            RateBudget.objects.get_or_create(
                workspace_key=workspace_key, defaults={"limit": limit, "remaining": remaining, "reset_at": reset_at}
            )

    def exhausted(self, workspace_key: str, *, reset: float, now: float) -> None:
        reset_at = _dt(max(reset, now))
        updated = RateBudget.objects.filter(workspace_key=workspace_key).update(
            remaining=0, reset_at=reset_at
        )
        if not updated:
            RateBudget.objects.get_or_create(workspace_key=workspace_key, defaults={"remaining": 0, "reset_at": reset_at})

    def remaining(self, workspace_key: str, *, now: float) -> int | None:
        row = RateBudget.objects.filter(workspace_key=workspace_key).values("remaining", "reset_at", "limit").first()
        if row is None or row["reset_at"] is None:
            return None
        if row["reset_at"].timestamp() <= now or row["remaining"] == OPENING:
            return row["limit"] or None  # the window is over (or opening): the whole limit is available again
        return max(0, row["remaining"])


# KEYS[1] = hash of the workspace; ARGV = op, now, a, b, c. Fields: limit, remaining, reset. Kept a day:
# a workspace without a key goes unthrottled until its first answer (a cold start), as with no row.
_REDIS_SCRIPT = """
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local reset = tonumber(redis.call('HGET', key, 'reset') or '0')
local remaining = tonumber(redis.call('HGET', key, 'remaining') or '0')
if op == 'acquire' then
  local reserve = tonumber(ARGV[3])
  if reset == 0 then return {'0', '-1'} end
  if reset <= now then
    redis.call('HSET', key, 'remaining', -1, 'reset', now + tonumber(ARGV[4]))
    redis.call('EXPIRE', key, 86400)
    return {'0', '-1'}
  end
  if remaining == -1 then return {tostring(math.min(tonumber(ARGV[5]), reset - now)), '0'} end
  if remaining > reserve then
    redis.call('HINCRBY', key, 'remaining', -1)
    return {'0', tostring(remaining - 1)}
  end
  return {tostring(reset - now), tostring(remaining)}
elseif op == 'record' then
  local limit = ARGV[3]; local new_remaining = tonumber(ARGV[4]); local new_reset = tonumber(ARGV[5])
  if new_reset > reset or (remaining == -1 and new_reset > now) then
    redis.call('HSET', key, 'limit', limit, 'remaining', new_remaining, 'reset', new_reset)
  elseif new_reset == reset and new_remaining < remaining then
    redis.call('HSET', key, 'remaining', new_remaining, 'limit', limit)
  end
  redis.call('EXPIRE', key, 86400)
  return {'0', '0'}
elseif op == 'exhausted' then
  redis.call('HSET', key, 'remaining', 0, 'reset', math.max(tonumber(ARGV[3]), now))
  redis.call('EXPIRE', key, 86400)
  return {'0', '0'}
end
return {'0', '-1'}
"""


class RedisBudget:
    """The same rules as DatabaseBudget, atomic in Redis (scale-out setup)."""

    def __init__(self, url: str) -> None:
        import redis  # imported here: the embedded setup has no Redis

        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(_REDIS_SCRIPT)

    def _key(self, workspace_key: str) -> str:
        return f"intercom:budget:{workspace_key}"

    def acquire(self, workspace_key: str, *, now: float, reserve: int = 0) -> Permit:
        args: list[str | float] = ["acquire", now, reserve, PROBE_TIMEOUT, PROBE_POLL]
        wait, remaining = self._script(keys=[self._key(workspace_key)], args=args)
        left = int(float(remaining))
        return Permit(wait=float(wait), remaining=None if left < 0 else left)

    def record(self, workspace_key: str, *, limit: int, remaining: int, reset: float, now: float) -> None:
        self._script(keys=[self._key(workspace_key)], args=["record", now, limit, remaining, reset])

    def exhausted(self, workspace_key: str, *, reset: float, now: float) -> None:
        self._script(keys=[self._key(workspace_key)], args=["exhausted", now, reset])

    def remaining(self, workspace_key: str, *, now: float) -> int | None:
        # redis-py types every answer as "list or awaitable of list" (its sync and async clients share one signature)
        values: list[Any] = self._redis.hmget(self._key(workspace_key), ["limit", "remaining", "reset"])  # type: ignore[assignment]
        if values[2] is None:
            return None
        if float(values[2]) <= now or int(values[1] or 0) == OPENING:
            return int(values[0] or 0) or None
        return max(0, int(values[1] or 0))


_default_budget: Budget | None = None


def default_budget() -> Budget:
    """Redis when REDIS_URL is set, the database otherwise (one instance per process)."""
    global _default_budget
    if _default_budget is None:
        redis_url = getattr(settings, "REDIS_URL", "")
        _default_budget = RedisBudget(redis_url) if redis_url else DatabaseBudget()
    return _default_budget


def budget_remaining(workspace_key: str) -> int | None:
    """Calls left in the current window for flow control and the dashboard; None when unknown."""
    from sync.intercom import client  # the client owns the (test-swappable) clock

    return default_budget().remaining(workspace_key, now=client.default_clock())
