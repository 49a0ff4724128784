"""The sandboxes over HTTP, for the local demo (tests reach the same code through `responses`)."""

from django.urls import include, path

urlpatterns: list = [
    path("", include("sandbox.oauth")),  # Intercom's OAuth pages; before intercom/ so its token URL wins
    path("intercom/", include("sandbox.intercom.urls")),
    path("hull/", include("sandbox.hull.urls")),
]
