"""Public endpoints: called by Hull and by Intercom. Views live in this app; logic lives in sync."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from webhooks import health
from webhooks.intercom_views import IntercomWebhookView
from webhooks import snippet_views
from webhooks import metrics

urlpatterns = [
    path("health", health.health, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("intercom/<slug:slug>/webhooks", IntercomWebhookView.as_view(), name="intercom-webhooks"),
    path("hull/<slug:slug>/ship.js", snippet_views.ship_js, name="snippet-ship-js"),
]
