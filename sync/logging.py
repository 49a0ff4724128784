"""Structured JSON log lines, with a redaction pass so secrets never reach a log sink.

Redaction happens twice: `RedactingFilter` on the handler rewrites every record (Django's own
`django.request` lines included, whatever formatter prints them), and `JsonFormatter` masks the
`extra` fields. Query strings are masked whole: Hull puts the connector secret in them
(`?ship=...&secret=...`), and a query may carry any other credential (docs/security.md).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
MASK = "***"
# Bearer tokens, JWTs, query strings and key=value pairs labelled secret/token/password.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-=:+/]+"),
    re.compile(r"()eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
    # A URL or a path followed by a query string: keep the path, mask the query.
    re.compile(r"((?:[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>?]*|(?<![\w.])/[^\s'\"<>?]*)\?)[^\s'\"<>#]+"),
    re.compile(r"(?i)((?:secret|token|password|access_token|refresh_token|api_key)[\"']?\s*[=:]\s*[\"']?)[^\s&'\",}]+"),
]
_SECRET_KEYS = re.compile(r"(?i)(secret|token|password|authorization|signature|credential|api_?key|cookie)")


def redact_text(value: str) -> str:
    for pattern in _SECRET_PATTERNS:
        value = pattern.sub(lambda m: m.group(1) + MASK, value)
    return value


def redact(value: Any) -> Any:
    """Mask secrets in a log value (strings, and nested dicts/lists by key name); other objects are
    printed with str() first, so their text is masked too (a request object shows its query)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (MASK if _SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(_describe(value))


def _describe(value: Any) -> str:
    # A Django request says its method and path, never its query string, headers or body.
    method, path = getattr(value, "method", None), getattr(value, "path", None)
    if isinstance(method, str) and isinstance(path, str) and hasattr(value, "META"):
        return f"{method} {path}"
    return str(value)


class RedactingFilter(logging.Filter):
    """On the handler: every record's message is rendered and masked before any formatter runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = str(record.msg)
        record.msg, record.args = redact_text(message), None
        if hasattr(record, "request"):  # django.request's extra: the whole request, query string included
            record.request = _describe(record.request)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message key, and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                # The key name counts at the top level too: extra={"hull_secret": ...} is masked.
                payload[key] = MASK if _SECRET_KEYS.search(key) else redact(value)
        if record.exc_info:
            payload["exc_info"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack_info"] = redact(record.stack_info)
        return json.dumps(payload, default=lambda v: redact_text(str(v)))
