"""Public endpoints: called by Hull and by Intercom. Views live in this app; logic lives in sync."""

from django.urls import path

from webhooks import health

urlpatterns = [
    path("health", health.health, name="health"),
]
