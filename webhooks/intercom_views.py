"""`/intercom/<slug>/webhooks`: verify, persist, enqueue, answer. No logic of its own.

Intercom retries a delivery that is not answered within 5 seconds (docs/intercom-api.md#webhooks), so processing happens in a task; every verified delivery, even an ignored or unknown
topic, gets a 200 so Intercom does not retry or suspend the subscription. The delivery is stored
before the 200; its processing is enqueued by this process's batch queue (webhooks/delivery_queue.py).
"""

from __future__ import annotations


from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.incoming.webhooks import webhook_delivery_receive
from webhooks.authentication import authenticated_connector
from webhooks.delivery_queue import delivery_enqueue, sqlite_write_lock
from webhooks.intercom_auth import IntercomSignatureAuthentication
from webhooks.json_body import loads_json_body
from webhooks.throttles import PublicEndpointThrottle


class HasVerifiedSignature(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method == "HEAD" or request.auth is not None


class IntercomWebhookView(APIView):
    authentication_classes = [IntercomSignatureAuthentication]
    permission_classes = [HasVerifiedSignature]
    throttle_classes = [PublicEndpointThrottle]

    def head(self, request: Request, slug: str) -> Response:
        # Intercom validates the URL with a HEAD when the webhook is saved.
        return Response(status=status.HTTP_200_OK)

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={200: OpenApiResponse(description="Stored (or already stored)"), 400: None, 401: None, 404: None},
    )
    def post(self, request: Request, slug: str) -> Response:
        connector = authenticated_connector(request)
        try:
            payload = loads_json_body(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError("Malformed JSON body.") from exc
        if not isinstance(payload, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        with sqlite_write_lock():
            delivery, created = webhook_delivery_receive(
                connector=connector, payload=payload, raw_body=request.body, enqueue=delivery_enqueue()
            )
        return Response({"status": delivery.status, "duplicate": not created}, status=status.HTTP_200_OK)
