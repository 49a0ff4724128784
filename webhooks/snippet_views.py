"""`GET /hull/<slug>/ship.js`: the browser snippet a Hull.js-tracked website loads from us.

Thin: find the connector, render the script (sync/services/snippet.py), answer with an ETag so
browsers re-validate cheaply. Public by design (a <script> tag on the customer's website), so the
body holds no secret: only the alias format, the event whitelist and the outgoing mapping names.
"""

from __future__ import annotations

import hashlib

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from sync.models import Connector
from sync.services.snippet import CACHE_MAX_AGE_SECONDS, snippet_render, snippet_tag  # noqa: F401 - re-exported for the admin

JS_CONTENT_TYPE = "application/javascript; charset=utf-8"


@csrf_exempt
def ship_js(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    connector = Connector.objects.filter(slug=slug).first()
    if connector is None:
        # A comment rather than HTML: the host page's <script> tag parses whatever we answer.
        return HttpResponse("/* unknown connector */\n", status=404, content_type=JS_CONTENT_TYPE)
    body = snippet_render(connector=connector)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    if etag in _if_none_match(request):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type=JS_CONTENT_TYPE)
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=CACHE_MAX_AGE_SECONDS)
    # Any website may load it; no cookies are involved.
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _if_none_match(request: HttpRequest) -> list[str]:
    header = request.headers.get("If-None-Match", "")
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]
