"""Small pages around the admin."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control

# A plain two-colour mark, so browsers asking for /favicon.ico get an icon rather than a 404 in the log.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#417690"/>'
    '<path d="M9 16h14M17 10l6 6-6 6" stroke="#fff" stroke-width="3" fill="none" stroke-linecap="round"/></svg>'
)


@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FAVICON_SVG, content_type="image/svg+xml")
