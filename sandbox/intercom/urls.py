from django.urls import re_path

from sandbox.intercom.views import intercom_api

urlpatterns = [
    re_path(r"^(?P<path>.*)$", intercom_api, name="sandbox-intercom-api"),
]
