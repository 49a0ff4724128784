"""The Hull stand-in over HTTP for the local demo: every path under /sandbox/hull/ goes to `handle_request`."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.hull.api import handle_request


@csrf_exempt
def hull_api(request: HttpRequest, path: str = "") -> HttpResponse:
    status, headers, payload = handle_request(
        request.method or "GET", "/" + path, request.GET.dict(), dict(request.headers), request.body or None
    )
    if isinstance(payload, str):
        content_type = "application/x-ndjson" if "/_exports/" in path else "text/plain"  # also the PEM of /_keys/
        return HttpResponse(payload, status=status, content_type=content_type)
    return HttpResponse(json.dumps(payload), status=status, content_type="application/json")
