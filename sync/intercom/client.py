"""The one Intercom REST client (docs/conventions.md: one client, retry by class, a rate limit is a halt).

Every call goes through `IntercomClient._request()`, which:
- takes a permit from the workspace's shared rate-limit budget (budget.py) and feeds it the
  `X-RateLimit-*` headers of every answer;
- waits for `X-RateLimit-Reset` on a 429 (bounded by `max_rate_wait`), then retries;
- retries 5xx, 408, timeouts and connection errors with exponential back-off and jitter, bounded,
  but never a call that is not idempotent (a lead create): Intercom may have carried it out before
  failing to answer, so a 5xx or a lost answer there is IntercomOutcomeUnknown (see `_request`);
- maps everything else to the typed errors of errors.py, `raise ... from` the transport error;
- logs one line per call (`intercom.request`: method, path, status, ms, budget left), without
  the token, query strings or bodies (they carry personal data).

No other module of the project imports `requests`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from sync.intercom.budget import Budget, default_budget
from sync.intercom.regions import intercom_api_base
from sync.intercom.errors import (
    IntercomApiError,
    IntercomNotFound,
    IntercomOutcomeUnknown,
    IntercomPaginationLoop,
    IntercomRateLimited,
    IntercomServerError,
    IntercomUnavailable,
    IntercomValidationError,
    error_for_status,
)

if TYPE_CHECKING:
    from sync.models import Connector

logger = logging.getLogger("sync.intercom.client")

# The API version we are written against; change it here and in the sandbox's contract file only.
INTERCOM_VERSION = "2.15"

CONNECT_TIMEOUT = 5.0  # seconds
READ_TIMEOUT = 30.0  # seconds; Intercom's search can be slow on big workspaces
MAX_RETRIES = 4  # extra attempts after a 5xx / timeout / connection error
BACKOFF_BASE = 0.5  # seconds; attempt n waits about base * 2**n
BACKOFF_CAP = 20.0  # seconds
MAX_RATE_WAIT = 30.0  # seconds: longer than this and a 429 is raised (a halt, convention 7)
MAX_RATE_RETRIES = 5  # 429s in a row before giving up
MIN_RATE_WAIT = 1.0  # seconds slept after a 429 even when its reset looks past
SEARCH_MAX_PER_PAGE = 150  # Intercom's maximum for cursor pagination
SCROLL_IDLE_EXPIRY = 60.0  # seconds: an unused scroll_param expires (reference §3.4)
RETRY_STATUSES = {408, 500, 502, 503, 504}

# Process-wide time source, swapped by the test fixture so waits run on the sandbox's virtual clock.
default_sleep: Callable[[float], None] = time.sleep
default_clock: Callable[[], float] = time.time

_sessions: dict[tuple[str, str], requests.Session] = {}
_sessions_lock = threading.Lock()


def workspace_session(workspace_key: str, base_url: str) -> requests.Session:
    """One pooled session per workspace and host, reused by every client of this process."""
    key = (workspace_key, base_url)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = requests.Session()
            # Retries are ours (they must respect the shared budget), so urllib3's are off.
            # One kept-alive connection per outgoing thread (OUTGOING_CONCURRENCY), so none is
            # discarded and reopened under load.
            pool = max(16, int(getattr(settings, "OUTGOING_CONCURRENCY", 16)))
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update({"Accept": "application/json", "Intercom-Version": INTERCOM_VERSION})
            _sessions[key] = session
        return session


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout): safe to send again."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: BaseException | None = exc
    while seen is not None:
        for arg in (seen, *getattr(seen, "args", ())):
            if isinstance(arg, urllib3.exceptions.NewConnectionError) or isinstance(
                getattr(arg, "reason", None), urllib3.exceptions.NewConnectionError
            ):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def _header_int(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class IntercomClient:
    """Intercom REST API 2.15 for one workspace. Methods return the parsed JSON."""

    def __init__(
        self,
        token: str,
        *,
        workspace_key: str,
        base_url: str | None = None,
        budget: Budget | None = None,
        reserve: int = 0,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        max_retries: int = MAX_RETRIES,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        max_rate_wait: float = MAX_RATE_WAIT,
        max_rate_retries: int = MAX_RATE_RETRIES,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._token = token
        self.workspace_key = workspace_key
        # No connector: the deployment's override or the US host (sync/intercom/regions.py).
        self.base_url = (base_url or intercom_api_base(None)).rstrip("/")
        self.budget = budget or default_budget()
        # Calls this client must leave in the window for others (interactive/admin calls).
        self.reserve = reserve
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_rate_wait = max_rate_wait
        self.max_rate_retries = max_rate_retries
        self._sleep = sleep or default_sleep
        self._clock = clock or default_clock
        self._rng = rng or random.Random()
        self.session = workspace_session(workspace_key, self.base_url)

    @classmethod
    def for_connector(cls, connector: Connector, **kwargs: Any) -> IntercomClient:
        from sync.identity import workspace_key

        return cls(
            connector.intercom_access_token,
            workspace_key=workspace_key(connector),
            base_url=intercom_api_base(connector),
            **kwargs,
        )

    def __repr__(self) -> str:  # never show the token
        return f"IntercomClient(workspace_key={self.workspace_key!r}, base_url={self.base_url!r})"

    # -- the one request method -------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, params: dict | None = None, json: Any = None, idempotent: bool = True
    ) -> Any:
        """One call with the budget, retries and logging.

        `idempotent=False` (a create that nothing on Intercom's side would refuse twice): a 5xx/408
        or a transport failure after the request may have reached Intercom raises
        IntercomOutcomeUnknown instead of sending it again. Intercom can do the work and still answer
        500/503/504 or time out; a blind retry would make a second contact. A 429 is always retried:
        Intercom refuses it before doing anything.
        """
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self._token}"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        failures = 0
        rate_waits = 0
        while True:
            self._wait_for_budget(path)
            started = self._clock()
            wall = time.monotonic()
            try:
                response = self.session.request(
                    method, url, params=params, json=json, headers=headers, timeout=self.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                self._log(method, path, None, wall, attempt=failures, error=type(exc).__name__)
                if not idempotent and not _never_sent(exc):
                    raise IntercomOutcomeUnknown(
                        f"{type(exc).__name__}: the request may have been carried out, its answer was lost",
                        status=None, code="outcome_unknown", url=path,
                    ) from exc  # fmt: skip
                if failures < self.max_retries:
                    self._backoff(failures)
                    failures += 1
                    continue
                raise IntercomUnavailable(
                    f"{type(exc).__name__} after {failures + 1} attempts", status=None, code="unavailable", url=path
                ) from exc
            remaining = self._record_budget(response, started)
            self._log(method, path, response.status_code, wall, attempt=failures, remaining=remaining)
            status = response.status_code
            if status == 429:
                reset = _header_int(response.headers, "X-RateLimit-Reset")
                now = self._clock()
                reset_at = float(reset) if reset is not None else now + 10.0
                self.budget.exhausted(self.workspace_key, reset=reset_at, now=now)
                # At least a second: Intercom's reset is whole seconds and our clock may lag theirs.
                wait = max(MIN_RATE_WAIT, reset_at - now)
                if rate_waits < self.max_rate_retries and wait <= self.max_rate_wait:
                    rate_waits += 1
                    self._sleep(wait + self._rng.uniform(0, 0.25))
                    continue
                raise self._error(response, path, reset_at=reset_at)
            if status in RETRY_STATUSES:
                if not idempotent:
                    error = self._error(response, path)
                    raise IntercomOutcomeUnknown(
                        f"{status} {error.code or ''} {error.message}: the create may have been carried out".replace("  ", " "),
                        status=status, code="outcome_unknown", url=path, body=error.body,
                    )  # fmt: skip
                if failures < self.max_retries:
                    self._backoff(failures)
                    failures += 1
                    continue
                raise self._error(response, path)
            if status >= 400:
                raise self._error(response, path)
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError as exc:
                raise IntercomServerError(
                    "Intercom answered with a body that is not JSON", status=status, code="invalid_json", url=path
                ) from exc

    def _wait_for_budget(self, path: str) -> None:
        """Block until the shared window allows a call, or raise when that is too far away."""
        while True:
            now = self._clock()
            permit = self.budget.acquire(self.workspace_key, now=now, reserve=self.reserve)
            if permit.wait <= 0:
                return
            if permit.wait > self.max_rate_wait:
                reset_at = datetime.fromtimestamp(now + permit.wait, tz=timezone.utc)
                raise IntercomRateLimited(
                    "Rate-limit budget exhausted until the window resets", reset_at=reset_at, url=path
                )
            # A little jitter so the processes waiting on one window do not all fire at once.
            self._sleep(permit.wait + self._rng.uniform(0, 0.05))

    def _record_budget(self, response: requests.Response, now: float) -> int | None:
        limit = _header_int(response.headers, "X-RateLimit-Limit")
        remaining = _header_int(response.headers, "X-RateLimit-Remaining")
        reset = _header_int(response.headers, "X-RateLimit-Reset")
        if limit is None or remaining is None or reset is None:
            return None
        self.budget.record(self.workspace_key, limit=limit, remaining=remaining, reset=float(reset), now=now)
        return remaining

    def _backoff(self, failures: int) -> None:
        delay = min(self.backoff_cap, self.backoff_base * (2**failures))
        self._sleep(delay * (0.5 + self._rng.random() / 2))  # "equal jitter"

    def _error(self, response: requests.Response, path: str, *, reset_at: float | None = None) -> IntercomApiError:
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        code, message = "", response.reason or f"HTTP {response.status_code}"
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
            code = str(first.get("code") or "")
            message = str(first.get("message") or message)
        if response.status_code == 429:
            return IntercomRateLimited(
                message,
                reset_at=datetime.fromtimestamp(reset_at, tz=timezone.utc) if reset_at else None,
                code=code or "rate_limit_exceeded",
                url=path,
                body=body,
            )
        return error_for_status(response.status_code, code=code, message=message, url=path, body=body)

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        wall_started: float,
        *,
        attempt: int,
        remaining: int | None = None,
        error: str = "",
    ) -> None:
        logger.info(
            "intercom.request",
            extra={
                "workspace": self.workspace_key,
                "method": method,
                "path": path,
                "status": status,
                "ms": round((time.monotonic() - wall_started) * 1000, 1),
                "budget_remaining": remaining,
                "attempt": attempt,
                "error": error,
            },
        )

    # -- admin -----------------------------------------------------------------------------

    def me(self) -> dict:
        return self._request("GET", "/me")

    # -- contacts --------------------------------------------------------------------------

    def create_contact(self, body: dict) -> dict:
        """Retried after a 5xx/timeout only for a user with an email or external_id: a second create
        of the same user answers 409 naming the first (errors.IntercomConflict), never a twin. A lead
        has nothing unique, so its create is never sent twice (IntercomOutcomeUnknown)."""
        return self._request("POST", "/contacts", json=body, idempotent=create_is_idempotent(body))

    def update_contact(self, contact_id: str, body: dict) -> dict:
        return self._request("PUT", f"/contacts/{_seg(contact_id)}", json=body)

    def get_contact(self, contact_id: str) -> dict:
        return self._request("GET", f"/contacts/{_seg(contact_id)}")

    def find_contact_by_external_id(self, external_id: str) -> dict:
        """Users only (Intercom's rule); raises IntercomNotFound when absent."""
        return self._request("GET", f"/contacts/find_by_external_id/{_seg(external_id)}")

    def archive_contact(self, contact_id: str) -> dict:
        return self._request("POST", f"/contacts/{_seg(contact_id)}/archive")

    def unarchive_contact(self, contact_id: str) -> dict:
        return self._request("POST", f"/contacts/{_seg(contact_id)}/unarchive")

    def delete_contact(self, contact_id: str) -> dict:
        return self._request("DELETE", f"/contacts/{_seg(contact_id)}")

    def search_contacts_page(
        self, query: dict, *, per_page: int = SEARCH_MAX_PER_PAGE, starting_after: str | None = None
    ) -> dict:
        """One page of `POST /contacts/search`; the cursor goes in the body (docs/intercom-api.md#contact-search)."""
        pagination: dict[str, Any] = {"per_page": min(per_page, SEARCH_MAX_PER_PAGE)}
        if starting_after:
            pagination["starting_after"] = starting_after
        return self._request("POST", "/contacts/search", json={"query": query, "pagination": pagination})

    def search_contacts(self, query: dict, *, per_page: int = SEARCH_MAX_PER_PAGE) -> Iterator[dict]:
        """Every matching contact, fetching one page at a time."""
        return _cursor_items(lambda cursor: self.search_contacts_page(query, per_page=per_page, starting_after=cursor))

    def list_contacts_page(self, *, per_page: int = SEARCH_MAX_PER_PAGE, starting_after: str | None = None) -> dict:
        params: dict[str, Any] = {"per_page": min(per_page, SEARCH_MAX_PER_PAGE)}
        if starting_after:
            params["starting_after"] = starting_after
        return self._request("GET", "/contacts", params=params)

    def list_contacts(self, *, per_page: int = SEARCH_MAX_PER_PAGE) -> Iterator[dict]:
        return _cursor_items(lambda cursor: self.list_contacts_page(per_page=per_page, starting_after=cursor))

    def merge_contacts(self, *, lead_id: str, user_id: str) -> dict:
        """Merge a lead into a user; Intercom deletes the lead and returns the user."""
        return self._request("POST", "/contacts/merge", json={"from": lead_id, "into": user_id})

    def list_contact_tags(self, contact_id: str) -> dict:
        return self._request("GET", f"/contacts/{_seg(contact_id)}/tags")

    def tag_contact(self, contact_id: str, tag_id: str) -> dict:
        return self._request("POST", f"/contacts/{_seg(contact_id)}/tags", json={"id": str(tag_id)})

    def untag_contact(self, contact_id: str, tag_id: str) -> dict:
        return self._request("DELETE", f"/contacts/{_seg(contact_id)}/tags/{_seg(tag_id)}")

    def list_contact_companies(self, contact_id: str) -> dict:
        return self._request("GET", f"/contacts/{_seg(contact_id)}/companies")

    def list_contact_segments(self, contact_id: str) -> dict:
        return self._request("GET", f"/contacts/{_seg(contact_id)}/segments")

    def attach_company(self, contact_id: str, company_id: str) -> dict:
        """`company_id` is Intercom's company `id`, not the company_id you chose."""
        return self._request("POST", f"/contacts/{_seg(contact_id)}/companies", json={"id": str(company_id)})

    def detach_company(self, contact_id: str, company_id: str) -> dict:
        return self._request("DELETE", f"/contacts/{_seg(contact_id)}/companies/{_seg(company_id)}")

    # -- companies -------------------------------------------------------------------------

    def upsert_company(self, body: dict) -> dict:
        """Create or update keyed by `company_id` (yours)."""
        return self._request("POST", "/companies", json=body)

    def get_company(self, company_intercom_id: str) -> dict:
        return self._request("GET", f"/companies/{_seg(company_intercom_id)}")

    def find_company(self, *, company_id: str) -> dict | None:
        """The company with your `company_id`, or None (Intercom answers 404 `company_not_found`)."""
        try:
            return self._request("GET", "/companies", params={"company_id": company_id})
        except IntercomNotFound:
            return None

    def list_companies_page(self, *, page: int = 1, per_page: int = 50) -> dict:
        return self._request("POST", "/companies/list", params={"page": page, "per_page": per_page})

    def list_company_segments(self, company_intercom_id: str) -> dict:
        return self._request("GET", f"/companies/{_seg(company_intercom_id)}/segments")

    def scroll_companies_page(self, scroll_param: str | None = None) -> dict:
        """One scroll page. Never retried after a 5xx or a lost answer: Intercom may have moved
        the scroll on before failing, and the retry would silently skip a page (reference §3.4:
        "Please restart the scroll operation"). Those surface as IntercomOutcomeUnknown."""
        params = {"scroll_param": scroll_param} if scroll_param else None
        return self._request("GET", "/companies/scroll", params=params, idempotent=False)

    def open_companies_scroll(self, *, waits: int = 1) -> dict:
        """The first page of a new scroll. One scroll per workspace: while an abandoned one (a
        broken or crashed run) is still open Intercom answers 400 `scroll_exists`; it idles out
        after a minute, so wait that out (at most `waits` times), then give up."""
        for attempt in range(waits + 1):
            try:
                return self.scroll_companies_page(None)
            except IntercomValidationError as exc:
                if exc.code != "scroll_exists" or attempt >= waits:
                    raise
                self._sleep(SCROLL_IDLE_EXPIRY + 1)
        raise AssertionError("unreachable")

    def scroll_companies(self, *, max_restarts: int = 3) -> Iterator[dict]:
        """Every company through the (single, per-workspace) scroll, one page in memory.

        A scroll broken by a 5xx, a lost answer or an expired `scroll_param` cannot be resumed:
        it is restarted from scratch (at most `max_restarts` times) and companies already given
        are not given again. A page repeated within one scroll is a pagination loop: stopped.
        """
        seen: set[str] = set()
        restarts = 0
        while True:
            try:
                for company in _scroll_once(self):
                    key = str(company.get("id"))
                    if key not in seen:
                        seen.add(key)
                        yield company
                return
            except (IntercomNotFound, IntercomServerError, IntercomUnavailable) as exc:
                if isinstance(exc, IntercomPaginationLoop) or restarts >= max_restarts:
                    raise
                restarts += 1
                logger.info("intercom.scroll.restart", extra={"restarts": restarts, "error": type(exc).__name__})

    # -- tags ------------------------------------------------------------------------------

    def list_tags(self) -> dict:
        return self._request("GET", "/tags")

    def create_tag(self, name: str) -> dict:
        """Creates the tag, or returns the existing one with that name (case-insensitive)."""
        return self._request("POST", "/tags", json={"name": name})

    def tag_users(self, name: str, contact_ids: list[str]) -> dict:
        """Tag many contacts at once (`POST /tags {name, users: [{id}]}`); the tag is created if needed.

        One unknown id fails the whole call (404 not_found "User Not Found"). Intercom documents no
        bulk untag for contacts: `untag_contact` removes a tag one contact at a time.
        """
        return self._request("POST", "/tags", json={"name": name, "users": [{"id": str(cid)} for cid in contact_ids]})

    def tag_companies(self, name: str, company_ids: list[str], untag: bool = False) -> dict:
        """Tag (or untag) companies by Intercom `id`; the tag is created if needed."""
        companies = [{"id": str(cid), **({"untag": True} if untag else {})} for cid in company_ids]
        return self._request("POST", "/tags", json={"name": name, "companies": companies})

    # -- data attributes, events, conversations --------------------------------------------

    def list_data_attributes(self, model: str) -> dict:
        return self._request("GET", "/data_attributes", params={"model": model})

    def create_data_attribute(self, *, name: str, model: str, data_type: str, description: str | None = None) -> dict:
        body: dict[str, Any] = {"name": name, "model": model, "data_type": data_type}
        if description:
            body["description"] = description
        return self._request("POST", "/data_attributes", json=body)

    def create_event(self, body: dict) -> dict:
        """202 with an empty body: returns {}."""
        return self._request("POST", "/events", json=body)

    def list_subscription_types(self) -> dict:
        return self._request("GET", "/subscription_types")

    def list_contact_subscriptions(self, contact_id: str) -> dict:
        return self._request("GET", f"/contacts/{_seg(contact_id)}/subscriptions")

    def attach_subscription(self, contact_id: str, subscription_type_id: str, consent_type: str) -> dict:
        """Opt in (opt_in types) or out (opt_out types): `consent_type` must be the type's own."""
        body = {"id": str(subscription_type_id), "consent_type": consent_type}
        return self._request("POST", f"/contacts/{_seg(contact_id)}/subscriptions", json=body)

    def detach_subscription(self, contact_id: str, subscription_type_id: str) -> dict:
        """Back to the subscription type's default."""
        return self._request("DELETE", f"/contacts/{_seg(contact_id)}/subscriptions/{_seg(subscription_type_id)}")

    def get_conversation(self, conversation_id: str) -> dict:
        return self._request("GET", f"/conversations/{_seg(conversation_id)}")

    def search_conversations_page(self, query: dict, *, per_page: int = SEARCH_MAX_PER_PAGE, starting_after: str | None = None) -> dict:
        """One page of `POST /conversations/search` (a `conversation.list`: items under `conversations`)."""
        pagination: dict[str, Any] = {"per_page": min(per_page, SEARCH_MAX_PER_PAGE)}
        if starting_after:
            pagination["starting_after"] = starting_after
        return self._request("POST", "/conversations/search", json={"query": query, "pagination": pagination})

    def search_conversations(self, query: dict, *, per_page: int = SEARCH_MAX_PER_PAGE) -> Iterator[dict]:
        """Every matching conversation (with its statistics and rating), one page at a time."""
        cursor: str | None = None
        while True:
            page = self.search_conversations_page(query, per_page=per_page, starting_after=cursor)
            yield from page.get("conversations") or []
            next_page = (page.get("pages") or {}).get("next") or {}
            cursor = next_page.get("starting_after") if isinstance(next_page, dict) else None
            if not cursor:
                return


def create_is_idempotent(body: Mapping[str, Any]) -> bool:
    """Whether sending this `POST /contacts` body twice cannot make two contacts (reference §2.6:
    external_id is unique among users; email among users without one; leads never conflict)."""
    role = body.get("role") or "user"
    return role == "user" and bool(body.get("external_id") or body.get("email"))


def _seg(value: Any) -> str:
    """A path segment, escaped (ids are hex, but external ids are whatever the customer chose)."""
    return quote(str(value), safe="")


def _cursor_items(fetch_page: Callable[[str | None], dict]) -> Iterator[dict]:
    """Items of a cursor-paginated list, one page in memory; stops when `pages.next` is absent.
    A cursor served twice would loop forever (a cursor sent where Intercom ignores it returns
    page 1 again, reference §7.6): IntercomPaginationLoop."""
    cursor: str | None = None
    used: set[str] = set()
    while True:
        page = fetch_page(cursor)
        yield from page.get("data") or []
        next_page = (page.get("pages") or {}).get("next") or {}
        cursor = next_page.get("starting_after") if isinstance(next_page, dict) else None
        if not cursor:
            return
        if cursor in used:
            raise IntercomPaginationLoop(f"the cursor {cursor[:40]!r} was served twice", status=None, code="pagination_loop")
        used.add(cursor)


def scroll_page_key(items: list[dict]) -> str:
    """A short fingerprint of a scroll page's ids: the same page twice in one scroll is a loop."""
    ids = ",".join(str(item.get("id")) for item in items)
    return hashlib.sha1(ids.encode()).hexdigest()[:16]  # noqa: S324 - a fingerprint, not security


def _scroll_once(client: IntercomClient) -> Iterator[dict]:
    """One scroll from its opening to its empty last page. Intercom gives the same `scroll_param`
    on every page (airbyte#69149), so a loop shows as a repeated page, not a repeated param."""
    page = client.open_companies_scroll()
    previous = ""
    while True:
        data = page.get("data") or []
        if not data:
            return
        key = scroll_page_key(data)
        if key == previous:
            raise IntercomPaginationLoop("the company scroll served the same page twice", status=None, code="pagination_loop")
        previous = key
        yield from data
        scroll_param = page.get("scroll_param")
        if not scroll_param:
            return
        page = client.scroll_companies_page(scroll_param)
