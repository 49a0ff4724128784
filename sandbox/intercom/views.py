"""The sandbox over HTTP for the local demo: every path under /sandbox/intercom/ goes to `handle_request`."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.intercom.api import AnswerLost, error_body, handle_request


@csrf_exempt
def intercom_api(request: HttpRequest, path: str = "") -> HttpResponse:
    body = None
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            return HttpResponse(json.dumps(error_body("bad_request", "Invalid JSON")), status=400, content_type="application/json")
    try:
        status, headers, payload = handle_request(request.method or "GET", "/" + path, request.GET.dict(), request.headers, body)
    except AnswerLost as lost:
        # Over HTTP a lost answer looks like a gateway giving up on a call the backend finished.
        status, headers, payload = 504, lost.headers, error_body("server_timeout", "Server timed out when making request")
    content = b"" if payload is None else json.dumps(payload).encode()
    response = HttpResponse(content, status=status, content_type="application/json")
    for key, value in headers.items():
        if key.lower() != "content-type":
            response[key] = value
    return response
