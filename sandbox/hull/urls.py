from django.urls import re_path

from sandbox.hull.views import hull_api

urlpatterns = [
    re_path(r"^(?P<path>.*)$", hull_api, name="sandbox-hull-api"),
]
