"""Endpoints Hull calls: `/hull/<slug>/smart-notifier`, `/batch`, `/batch-accounts`, `/status`.

Each view authenticates (webhooks/authentication.py), calls one service in sync/hull/, and
answers. Hull's notifier expects `{"flow_control": ...}` on every answer, errors included
(docs/hull-protocol.md#flow-control), so failures carry a `retry` flow control and an `error` object.
"""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.outgoing.exports import hull_export_receive
from sync.outgoing.flow_control import ERROR_RETRY_IN_MS, retry_in
from sync.hull.messages import NotificationError
from sync.outgoing.receive import hull_notification_receive
from sync.services.hull_status import hull_status
from sync.models import Connector
from webhooks.authentication import (
    MAX_NOTIFICATION_BYTES,
    HullNotificationAuthentication,
    HullQueryAuthentication,
    authenticated_connector,
    parse_json_body,
    read_limited_body,
)
from webhooks.hull_body import MalformedBody, notification_envelope
from webhooks.throttles import FailedAttemptThrottleMixin, PublicEndpointThrottle


class IsHullConnector(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.auth is not None


class HullSmartNotifierView(FailedAttemptThrottleMixin, APIView):
    authentication_classes = [HullNotificationAuthentication]
    permission_classes = [IsHullConnector]
    throttle_classes = [PublicEndpointThrottle]

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={
            200: OpenApiResponse(description="Stored; `flow_control` next or retry"),
            400: None,
            401: None,
            404: None,
            413: None,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        body = read_limited_body(request, MAX_NOTIFICATION_BYTES)  # already read by authentication
        try:
            envelope = notification_envelope(body)
            receipt = hull_notification_receive(
                connector=cast(Connector, request.auth),  # HullNotificationAuthentication sets it
                payload=envelope.payload,
                raw_messages=envelope.raw_messages,
                message_count=envelope.message_count,
            )
        except (MalformedBody, NotificationError) as exc:
            raise exceptions.ParseError(str(exc)) from exc
        answer = {
            "flow_control": receipt.flow_control,
            "notification": receipt.notification.pk,
            "status": receipt.notification.status,
            "duplicate": not receipt.created,
        }
        return Response(answer, status=status.HTTP_200_OK)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(response.data, dict):
            detail = response.data.get("detail", "")
            code = getattr(getattr(exc, "detail", None), "code", None) or type(exc).__name__
            response.data = {
                "flow_control": retry_in(ERROR_RETRY_IN_MS),
                "error": {"message": str(detail), "name": type(exc).__name__, "code": str(code)},
                "detail": detail,
            }
        return response


class HullBatchView(FailedAttemptThrottleMixin, APIView):
    """`/batch` (users) and `/batch-accounts`: store the export request, answer at once."""

    authentication_classes = [HullQueryAuthentication]
    permission_classes = [IsHullConnector]
    throttle_classes = [PublicEndpointThrottle]
    default_object_type = "user_report"

    @extend_schema(request={"application/json": {"type": "object"}}, responses={200: None, 400: None, 401: None, 404: None})
    def post(self, request: Request, slug: str) -> Response:
        body = parse_json_body(request, MAX_NOTIFICATION_BYTES)
        try:
            notification, created = hull_export_receive(
                connector=authenticated_connector(request),
                body=body,
                segment_id=request.query_params.get("segment_id", ""),
                default_object_type=self.default_object_type,
            )
        except NotificationError as exc:
            raise exceptions.ParseError(str(exc)) from exc
        return Response({"status": "ok", "notification": notification.pk, "duplicate": not created})


class HullBatchAccountsView(HullBatchView):
    default_object_type = "account_report"


class HullStatusView(FailedAttemptThrottleMixin, APIView):
    """Hull's status poll: `{"status": ok|warning|error|setupRequired, "messages": [...]}`."""

    authentication_classes = [HullQueryAuthentication]
    permission_classes = [IsHullConnector]
    throttle_classes = [PublicEndpointThrottle]

    def _status(self, request: Request) -> Response:
        return Response(hull_status(connector=authenticated_connector(request)).as_dict())

    @extend_schema(responses={200: None, 401: None, 404: None})
    def get(self, request: Request, slug: str) -> Response:
        return self._status(request)

    @extend_schema(request=None, responses={200: None, 401: None, 404: None})
    def post(self, request: Request, slug: str) -> Response:
        return self._status(request)
