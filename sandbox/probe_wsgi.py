"""The project's WSGI app, plus a record of every Intercom-sandbox answer (for the rate-limit proof).

When SANDBOX_PROBE_FILE is set, each request under /sandbox/intercom/ appends one line
`<X-RateLimit-Reset> <status>` to it: the reset header names the sandbox's own window, so the
calls per window can be counted exactly (O_APPEND lines are atomic across processes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from connector_site.wsgi import application as django_application

PROBE_FILE = os.environ.get("SANDBOX_PROBE_FILE", "")


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if not PROBE_FILE or not environ.get("PATH_INFO", "").startswith("/sandbox/intercom/"):
        return django_application(environ, start_response)

    def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
        reset = next((value for name, value in headers if name.lower() == "x-ratelimit-reset"), "-")
        line = f"{reset} {status.split(' ', 1)[0]}\n".encode()
        fd = os.open(PROBE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return start_response(status, headers, *args)

    return django_application(environ, recording_start_response)
