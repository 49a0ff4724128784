"""DRF authentication for calls from Hull (docs/decisions.md#hull-authentication).

- Notifications (`/smart-notifier`): the RS256 signature headers when present (the public-key
  URL only from settings.HULL_PUBLIC_KEY_HOSTS, no SSRF), otherwise the connector id and secret in
  the body's `configuration`, compared in constant time.
- Batch and status calls: the query-string credentials `?ship|id=<id>&secret=<secret>` (docs/hull-protocol.md#credentials).

Anything else: 401 and nothing stored. Both classes return `(None, connector)`.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import jwt
from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from sync.hull.client import HullApiError, fetch_public_key, public_key_url
from sync.net import UnsafeUrl
from sync.models import Connector
from webhooks.connector_lookup import connector_for_slug
from webhooks.hull_body import MalformedBody, body_credentials
from webhooks.json_body import loads_json_body


logger = logging.getLogger("webhooks.hull")

# Hull notifications can carry thousands of messages; beyond this we answer 413.
MAX_NOTIFICATION_BYTES = settings.HULL_MAX_NOTIFICATION_BYTES

FLAG_HEADER = "HTTP_X_HULL_SMART_NOTIFIER"
SIGNATURE_HEADER = "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE"
VERSION_HEADER = "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_VERSION"
KEY_URL_HEADER = "HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_PUBLIC_KEY_URL"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _connector(request: Request) -> Connector:
    view_kwargs = request.parser_context.get("kwargs", {}) if request.parser_context else {}
    connector = connector_for_slug(view_kwargs.get("slug"))
    if connector is None:
        raise exceptions.NotFound("Unknown connector.")
    return connector


def authenticated_connector(request: Request) -> Connector:
    """The connector an authentication class of this app put in `request.auth`."""
    if not isinstance(request.auth, Connector):
        raise exceptions.NotAuthenticated()
    return request.auth


def _same(expected: str, given: Any) -> bool:
    # Both sides must be non-empty: an unset secret never matches an empty one.
    return bool(expected) and isinstance(given, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes (413) before and while reading it.

    Django's own DATA_UPLOAD_MAX_MEMORY_SIZE would answer 400; Hull deserves a 413.
    """
    django_request = request._request
    if hasattr(django_request, "_body"):
        body = django_request._body
    else:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge()
        body = django_request.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge()
        django_request._body = body  # so request.body keeps working after our read
    return body


def parse_json_body(request: Request, limit: int) -> Any:
    body = read_limited_body(request, limit)
    if not body:
        raise exceptions.ParseError("Empty body: MISSING_NOTIFICATION_PAYLOAD.")
    cached = getattr(request._request, "_hull_json", None)
    if cached is not None:
        return cached
    try:
        payload = loads_json_body(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ParseError("Malformed JSON body.") from exc
    setattr(request._request, "_hull_json", payload)  # noqa: B010 - a per-request cache HttpRequest does not declare
    return payload


def public_key_host_allowed(url: str) -> bool:
    """Checked with urllib3's parser, as requests will read it (sync.net.check_url)."""
    try:
        public_key_url(url, settings.HULL_PUBLIC_KEY_HOSTS)
    except UnsafeUrl:
        return False
    return True


class HullNotificationAuthentication(BaseAuthentication):
    """Order, cheapest first, so a caller without credentials costs little (issue 13 item 2):
    connector exists (404) → signature headers, key and JWT, body unread (401) → size (413) →
    credentials found by a bounded scan of the body (400 malformed, 401 wrong). The body is
    decoded for storage only after this (webhooks/hull_body.py). Failed attempts are counted per
    source by the view's FailedAttemptThrottle, checked before any of this.
    """

    def authenticate(self, request: Request) -> tuple[None, Connector]:
        connector = _connector(request)
        claims = self._verify_signature(request, connector) if request.META.get(SIGNATURE_HEADER) else None
        body = read_limited_body(request, MAX_NOTIFICATION_BYTES)
        if not body:
            raise exceptions.ParseError("Empty body: MISSING_NOTIFICATION_PAYLOAD.")
        try:
            credentials = body_credentials(body)
        except MalformedBody as exc:
            raise exceptions.ParseError(str(exc)) from exc
        if claims is not None:
            if credentials.notification_id is None or str(claims.get("jti")) != credentials.notification_id:
                raise exceptions.AuthenticationFailed("INVALID_SIGNATURE: jti does not match notification_id.")
            if not _same(connector.hull_id, credentials.hull_id):
                logger.info("hull.notification.wrong-connector", extra={"connector": connector.pk})
                raise exceptions.AuthenticationFailed("The notification is for another connector.")
            return None, connector
        if not (_same(connector.hull_id, credentials.hull_id) and _same(connector.hull_secret, credentials.secret)):
            logger.info("hull.notification.invalid-credentials", extra={"connector": connector.pk})
            raise exceptions.AuthenticationFailed("Missing or invalid Hull credentials in `configuration`.")
        return None, connector

    def _verify_signature(self, request: Request, connector: Connector) -> dict[str, Any]:
        """The signature's claims; only headers and the key are read (the body is still unread)."""
        signature = request.META.get(SIGNATURE_HEADER, "")
        version = request.META.get(VERSION_HEADER, "")
        key_url = request.META.get(KEY_URL_HEADER, "")
        if not version or not key_url:
            raise exceptions.AuthenticationFailed("MISSING_SIGNATURE_HEADERS")
        if version != "v1":
            raise exceptions.AuthenticationFailed("UNSUPPORTED_SIGNATURE_VERSION")
        try:
            safe_url = public_key_url(key_url, settings.HULL_PUBLIC_KEY_HOSTS)
        except UnsafeUrl as refusal:
            logger.warning("hull.notification.key-url-refused", extra={"connector": connector.pk, "reason": str(refusal)})
            raise exceptions.AuthenticationFailed("INVALID_CERTIFICATE: public key URL not allowed.") from refusal
        try:
            public_key = fetch_public_key(safe_url, signature, allowed_hosts=settings.HULL_PUBLIC_KEY_HOSTS)
        except (HullApiError, UnsafeUrl) as exc:
            raise exceptions.AuthenticationFailed("INVALID_CERTIFICATE") from exc
        try:
            return jwt.decode(signature, public_key, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            logger.info("hull.notification.invalid-signature", extra={"connector": connector.pk})
            raise exceptions.AuthenticationFailed("INVALID_SIGNATURE") from exc

    def authenticate_header(self, request: Request) -> str:
        # A value here makes DRF answer 401 (not 403) when authentication fails.
        return 'Hull realm="smart-notifier"'


class HullQueryAuthentication(BaseAuthentication):
    """`?ship=<id>&secret=<secret>` (or `id=`), as Hull calls batch, status and schedule URLs."""

    def authenticate(self, request: Request) -> tuple[None, Connector]:
        connector = _connector(request)
        given_id = request.query_params.get("ship") or request.query_params.get("id")
        given_secret = request.query_params.get("secret")
        if not (_same(connector.hull_id, given_id) and _same(connector.hull_secret, given_secret)):
            logger.info("hull.query.invalid-credentials", extra={"connector": connector.pk, "path": request.path})
            raise exceptions.AuthenticationFailed("Missing or invalid Hull credentials (ship, secret).")
        return None, connector

    def authenticate_header(self, request: Request) -> str:
        return 'Hull realm="connector"'


# --- OpenAPI (drf-spectacular): how Hull authenticates, for the schema at /api/schema/ ----------

from drf_spectacular.extensions import OpenApiAuthenticationExtension  # noqa: E402


class HullNotificationAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "webhooks.authentication.HullNotificationAuthentication"
    name = "hullNotification"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "x-hull-smart-notifier-signature",
            "description": "RS256 JWT (jti = notification_id) with its public-key URL header; "
            "otherwise the connector id and secret in the body's `configuration`.",
        }


class HullQueryAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "webhooks.authentication.HullQueryAuthentication"
    name = "hullQueryCredentials"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "query", "name": "secret", "description": "With `ship` (the connector id)."}
