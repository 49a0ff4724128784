"""DRF authentication for Intercom webhooks: `X-Hub-Signature` (HMAC-SHA1 of the raw body).

The key is the Intercom app's client secret: the connector's own, else INTERCOM_CLIENT_SECRET
(docs/intercom-api.md#webhooks). A connector without either cannot verify anything, so it
answers 401 too (as Sentry does when its own secret is unset).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from sync.models import Connector
from webhooks.connector_lookup import connector_for_slug

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "HTTP_X_HUB_SIGNATURE"
SIGNATURE_PREFIX = "sha1="


class WebhookTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _raw_body(request: Request) -> bytes:
    """The body; past DATA_UPLOAD_MAX_MEMORY_SIZE a JSON 413, not Django's HTML 400."""
    try:
        return request.body
    except RequestDataTooBig as exc:
        raise WebhookTooLarge() from exc


def intercom_signature(secret: str, body: bytes) -> str:
    """The header value Intercom sends for `body` (tests and the replay command sign with this)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def connector_client_secret(connector: Connector) -> str:
    return connector.intercom_client_secret or settings.INTERCOM_CLIENT_SECRET or ""


class IntercomSignatureAuthentication(BaseAuthentication):
    """Checks, in order: connector exists and has a secret, body present, header present, HMAC.

    Returns `(None, connector)`: there is no user, `request.auth` is the connector.
    """

    def authenticate(self, request: Request) -> tuple[None, Connector] | None:
        view_kwargs = request.parser_context.get("kwargs", {}) if request.parser_context else {}
        connector = connector_for_slug(view_kwargs.get("slug"))  # cached a few seconds per process
        if connector is None:
            raise exceptions.NotFound("Unknown connector.")
        if request.method == "HEAD":
            # Intercom sends a HEAD to validate the URL when the webhook is saved: no body to sign.
            return None
        secret = connector_client_secret(connector)
        if not secret:
            logger.warning("intercom.webhook.no-secret", extra={"connector": connector.pk})
            raise exceptions.AuthenticationFailed("The connector has no Intercom client secret.")
        body = _raw_body(request)  # raw bytes, read before any parser touches the stream
        if not body:
            raise exceptions.ParseError("Empty body.")
        signature = request.META.get(SIGNATURE_HEADER, "")
        if not signature:
            logger.info("intercom.webhook.missing-signature", extra={"connector": connector.pk})
            raise exceptions.AuthenticationFailed("Missing X-Hub-Signature.")
        if not hmac.compare_digest(intercom_signature(secret, body), signature.strip().lower()):
            logger.info("intercom.webhook.invalid-signature", extra={"connector": connector.pk})
            raise exceptions.AuthenticationFailed("Invalid X-Hub-Signature.")
        return None, connector

    def authenticate_header(self, request: Request) -> str:
        # A value here makes DRF answer 401 (not 403) when authentication fails.
        return 'X-Hub-Signature realm="intercom-webhooks"'


class IntercomSignatureScheme(OpenApiAuthenticationExtension):
    """Documents the signature in the OpenAPI schema (/api/schema/)."""

    target_class = "webhooks.intercom_auth.IntercomSignatureAuthentication"
    name = "IntercomSignature"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Hub-Signature",
            "description": "sha1=<hex HMAC-SHA1 of the raw body, keyed with the Intercom app's client secret>",
        }
