"""Intercom's OAuth pages, stood in for the offline demo and the browser tests.

`/sandbox/intercom-oauth/oauth` plays app.intercom.com/oauth (used by connectors wired to the sandbox) (an "Authorize" button that sends
the browser back with a code) and `/sandbox/intercom/auth/eagle/token` plays the token exchange
(docs/intercom-api.md#oauth-and-workspace-identity). The code is signed rather than stored: it names the sandbox
workspace and expires after five minutes, like Intercom's. The token handed out is the sandbox
workspace's own bearer token, so `/me` and the rest of the Intercom sandbox accept it.
"""

from __future__ import annotations

import json
import secrets

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from sandbox.intercom.models import Workspace

CODE_SALT = "sandbox.intercom.oauth.code"
CODE_MAX_AGE_SECONDS = 300  # "The code will expire after about 5 minutes"
DEFAULT_WORKSPACE = {"id_code": "ws_oauth", "name": "Sandbox workspace (OAuth)"}


def _with_params(url: str, **params: str) -> str:
    from urllib.parse import urlencode

    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """Intercom's consent page: pick the workspace, then Authorize (or Cancel)."""
    source = request.POST if request.method == "POST" else request.GET
    redirect_uri = source.get("redirect_uri", "")
    state = source.get("state", "")
    # Only back to this site: even a sandbox must not be an open redirect.
    if not redirect_uri or not url_has_allowed_host_and_scheme(redirect_uri, allowed_hosts={request.get_host()}):
        return HttpResponseBadRequest("redirect_uri must point back to this site.")
    if source.get("client_id") != settings.INTERCOM_CLIENT_ID:
        return HttpResponseBadRequest("Unknown client_id.")
    if request.method == "GET":
        workspaces = list(Workspace.objects.order_by("id_code"))
        return render(
            request,
            "sandbox/intercom_oauth_authorize.html",
            {"workspaces": workspaces, "default": DEFAULT_WORKSPACE, "redirect_uri": redirect_uri, "state": state,
             "client_id": source.get("client_id")},
        )
    if "cancel" in request.POST:
        return redirect(_with_params(redirect_uri, error="access_denied", error_description="The admin cancelled", state=state))
    id_code = request.POST.get("workspace") or DEFAULT_WORKSPACE["id_code"]
    workspace = Workspace.objects.filter(id_code=id_code).first()
    if workspace is None:
        workspace = Workspace.objects.create(
            id_code=DEFAULT_WORKSPACE["id_code"], name=DEFAULT_WORKSPACE["name"], token=f"sandbox-oauth-{secrets.token_hex(16)}"
        )
    code = signing.dumps({"workspace": workspace.id_code, "nonce": secrets.token_hex(4)}, salt=CODE_SALT)
    return redirect(_with_params(redirect_uri, code=code, state=state))


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"type": "error.list", "errors": [{"code": code, "message": message}]}, status=status)


@csrf_exempt
@require_POST
def token_exchange(request: HttpRequest) -> JsonResponse:
    """`POST /auth/eagle/token`: code + client credentials (form-encoded or JSON) for the bearer token."""
    data: dict = request.POST.dict()
    if not data and request.body:
        try:
            data = json.loads(request.body)
        except ValueError:
            return _error(400, "bad_request", "Invalid body")
    if data.get("client_id") != settings.INTERCOM_CLIENT_ID or data.get("client_secret") != settings.INTERCOM_CLIENT_SECRET:
        return _error(401, "unauthorized", "Invalid client credentials")
    try:
        claims = signing.loads(data.get("code", ""), salt=CODE_SALT, max_age=CODE_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return _error(401, "unauthorized", "Unauthorized Code")
    workspace = Workspace.objects.filter(id_code=claims["workspace"]).first()
    if workspace is None:
        return _error(401, "unauthorized", "Unauthorized Code")
    # Both spellings observed from Intercom; no refresh token, no expiry (tokens are long-lived).
    return JsonResponse({"token": workspace.token, "access_token": workspace.token, "token_type": "Bearer"})


urlpatterns = [
    path("intercom-oauth/oauth", authorize, name="sandbox-intercom-oauth-authorize"),
    # Under the Intercom sandbox's prefix, so a connector wired to <site>/sandbox/intercom finds it.
    path("intercom/auth/eagle/token", token_exchange, name="sandbox-intercom-oauth-token"),
]
