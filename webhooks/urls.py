"""Public endpoints: called by Hull and by Intercom. Views live in this app; logic lives in sync."""

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView

from webhooks import health
from webhooks.intercom_views import IntercomWebhookView
from webhooks import snippet_views
from webhooks import metrics
from webhooks import hull_views


@extend_schema_view(get=extend_schema(exclude=True))
class OpenApiSchemaView(SpectacularAPIView):
    """The OpenAPI schema of our own DRF endpoints (the schema route itself is left out of it)."""


urlpatterns = [
    path("health", health.health, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", OpenApiSchemaView.as_view(), name="openapi-schema"),
    path("intercom/<slug:slug>/webhooks", IntercomWebhookView.as_view(), name="intercom-webhooks"),
    path("hull/<slug:slug>/ship.js", snippet_views.ship_js, name="snippet-ship-js"),
    path("hull/<slug:slug>/smart-notifier", hull_views.HullSmartNotifierView.as_view(), name="hull-smart-notifier"),
    path("hull/<slug:slug>/batch", hull_views.HullBatchView.as_view(), name="hull-batch"),
    path("hull/<slug:slug>/batch-accounts", hull_views.HullBatchAccountsView.as_view(), name="hull-batch-accounts"),
    path("hull/<slug:slug>/status", hull_views.HullStatusView.as_view(), name="hull-status"),
]
