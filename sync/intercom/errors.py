"""Typed errors for Intercom REST failures (docs/conventions.md "One client per remote system").

Every error carries Intercom's own `code` and `message` from its `error.list` envelope, the HTTP
status, the URL path (never the token) and the parsed body, so callers can write the entity's
SyncLog row with Intercom's words and decide whether to retry.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# Intercom only gives the conflicting contact's id inside the message text (docs/intercom-api.md#uniqueness-and-conflicts).
_CONFLICT_ID = re.compile(r"id=([0-9a-zA-Z]+)")
# "Custom attribute 'x' does not exist"; also "User attribute 'x' ..." on some endpoints (docs/intercom-api.md#data-attributes).
_UNKNOWN_ATTRIBUTE = re.compile(r"(?:Custom|User|Company) attribute '(?P<name>[^']+)' does not exist")


class IntercomApiError(Exception):
    """Any failed Intercom call; subclasses say which kind."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        url: str = "",
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.url = url
        self.body = body

    # Convention 5 names: `text` and `json` are the same facts under Sentry's spelling.
    @property
    def text(self) -> str:
        return self.message

    @property
    def json(self) -> Any:
        return self.body

    def __str__(self) -> str:
        parts = [str(self.status) if self.status else "", self.code, self.message]
        return " ".join(p for p in parts if p)


class IntercomUnauthorized(IntercomApiError):
    """401: token invalid, revoked or the app uninstalled. Configuration error, not transient."""


class IntercomForbidden(IntercomApiError):
    """403: plan or scope does not allow the call."""


class IntercomNotFound(IntercomApiError):
    """404 (and 410 for merged-away contacts in newer API versions)."""


class IntercomConflict(IntercomApiError):
    """409: a contact with the same external_id/email exists; `existing_id` names it when Intercom does."""

    @property
    def existing_id(self) -> str | None:
        match = _CONFLICT_ID.search(self.message or "")
        return match.group(1) if match else None


class IntercomValidationError(IntercomApiError):
    """400/422 about this request: the entity's own error, never retried."""


class IntercomUnknownAttribute(IntercomValidationError):
    """A write named a custom attribute that does not exist yet: create it, then retry once."""

    @property
    def attribute(self) -> str | None:
        match = _UNKNOWN_ATTRIBUTE.search(self.message or "")
        return match.group("name") if match else None


class IntercomRateLimited(IntercomApiError):
    """429, or the shared budget is empty, and waiting for the reset was longer than allowed."""

    def __init__(self, message: str, *, reset_at: datetime | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("status", 429)
        kwargs.setdefault("code", "rate_limit_exceeded")
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


class IntercomServerError(IntercomApiError):
    """5xx that persisted through the retries."""


class IntercomUnavailable(IntercomApiError):
    """Timeouts or connection errors that persisted through the retries."""


class IntercomOutcomeUnknown(IntercomUnavailable):
    """A create was sent but its answer was lost (read timeout, connection dropped mid-answer).

    Not retried in-line: Intercom may have made the contact, and a second create would make a
    twin (leads have no unique field to answer 409 with). The batch halts instead and resumes
    once Intercom's search can see a contact created just now, so the resume finds it.
    """


class IntercomPaginationLoop(IntercomApiError):
    """A listing served the same page (or the same cursor) again: following it would never end
    (airbyte#69149: a workspace of 253 companies read as 4 million records). Stopped, not retried."""


def error_for_status(status: int, *, code: str, message: str, url: str, body: Any) -> IntercomApiError:
    """The typed error for a non-2xx answer (429 is built by the client, which knows the reset)."""
    kwargs: dict[str, Any] = {"status": status, "code": code, "url": url, "body": body}
    if status == 401:
        return IntercomUnauthorized(message, **kwargs)
    if status == 403:
        return IntercomForbidden(message, **kwargs)
    if status in (404, 410):
        return IntercomNotFound(message, **kwargs)
    if status == 409:
        return IntercomConflict(message, **kwargs)
    if status == 429:
        return IntercomRateLimited(message, **kwargs)
    if status >= 500:
        return IntercomServerError(message, **kwargs)
    if status in (400, 422):
        if _UNKNOWN_ATTRIBUTE.search(message or ""):
            return IntercomUnknownAttribute(message, **kwargs)
        return IntercomValidationError(message, **kwargs)
    return IntercomApiError(message, **kwargs)
