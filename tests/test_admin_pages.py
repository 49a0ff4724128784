"""Every admin page of the project renders for staff and sends an anonymous visitor to the login page."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from sync.models import HullSegment, IdentityLink, SyncCursor, SyncLog, WebhookDelivery, HullNotification

PROJECT_APPS = {"sync", "sandbox_intercom", "sandbox_hull"}


@pytest.fixture
def one_of_each(connector):
    """One row per model so change pages have something to show."""
    SyncLog.objects.create(connector=connector, direction="incoming", entity="user", action="incoming.user.success", status="success", email="a@example.com")
    WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", payload={"id": "n1"})
    HullNotification.objects.create(connector=connector, notification_id="h1", channel="user:update", payload={"messages": []})
    HullSegment.objects.create(connector=connector, kind="user", hull_id="s1", name="Customers")
    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic1", hull_id="h1")
    SyncCursor.objects.create(connector=connector, kind="fetch_all", stream="users")
    return connector


def project_admin_pages():
    pages = []
    for model in admin.site._registry:
        if model._meta.app_label not in PROJECT_APPS:
            continue
        info = model._meta.app_label, model._meta.model_name
        pages.append((model, f"admin:{info[0]}_{info[1]}_changelist"))
    return pages


@pytest.mark.parametrize("model,url_name", project_admin_pages(), ids=lambda v: getattr(v, "__name__", v))
def test_staff_see_every_list_and_change_page(staff_client, one_of_each, model, url_name):
    assert staff_client.get(reverse(url_name)).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        info = model._meta.app_label, model._meta.model_name
        assert staff_client.get(reverse(f"admin:{info[0]}_{info[1]}_change", args=[obj.pk])).status_code == 200


@pytest.mark.parametrize("model,url_name", project_admin_pages(), ids=lambda v: getattr(v, "__name__", v))
def test_anonymous_visitors_get_the_login_page_instead(client, one_of_each, model, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
