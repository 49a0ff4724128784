"""Read-only admins for what happened: sync logs, Hull notifications, Intercom webhook deliveries.

Logs are evidence: nobody edits them by hand. Rows link to each other (a log row to its
notification or delivery, to the IdentityLink joining its Hull entity and Intercom contact, and to
every other log row about the same entity), and failed deliveries can be replayed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from sync.models import (
    Connector,
    Entity,
    HullNotification,
    HullSegment,
    IdentityLink,
    SyncCursor,
    SyncLog,
    WebhookDelivery,
)

__all__ = [
    "SyncLogAdmin",
    "HullNotificationAdmin",
    "WebhookDeliveryAdmin",
    "HullSegmentAdmin",
    "IdentityLinkAdmin",
    "SyncCursorAdmin",
]

# Intercom's own pages for a contact or company, for rows of a real (not sandbox) workspace.
INTERCOM_CONTACT_URL = "https://app.intercom.com/a/apps/{workspace}/users/{id}/all-conversations"
INTERCOM_COMPANY_URL = "https://app.intercom.com/a/apps/{workspace}/companies/{id}"


def pretty_json(value: Any) -> str:
    return format_html('<pre class="pretty-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, default=str))


def changelist_link(model: str, label: str, **filters: Any) -> str:
    url = reverse(f"admin:sync_{model}_changelist") + "?" + urlencode(filters)
    return format_html('<a href="{}">{}</a>', url, label)


def intercom_page(row: SyncLog | IdentityLink) -> str | None:
    """The Intercom app page of the row's contact or company; None for the sandbox or unknown ids."""
    connector = row.connector
    if not row.intercom_id or not connector.intercom_workspace_id or connector.intercom_api_base:
        return None
    template = INTERCOM_COMPANY_URL if row.entity in (Entity.COMPANY, SyncLog.EntityType.ACCOUNT) else INTERCOM_CONTACT_URL
    return template.format(workspace=connector.intercom_workspace_id, id=row.intercom_id)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are evidence: staff read them, nobody edits them by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReplayableAdmin(ReadOnlyAdmin):
    """Deliveries and notifications: read-only, but may be queued again (like django-q2's "Resubmit")."""

    list_select_related = ("connector",)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # The rows stay read-only for everyone; the model's change permission means "may replay".
        return request.user.has_perm(f"sync.change_{self.model._meta.model_name}")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        # The payload can be large; only the detail page needs it.
        match = request.resolver_match
        return qs if match and match.url_name and match.url_name.endswith("change") else qs.defer("payload")

    @admin.display(description="payload")
    def payload_pretty(self, obj: HullNotification | WebhookDelivery) -> str:
        return pretty_json(obj.payload)


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "connector", "direction", "action", "status", "why", "email", "hull_entity", "intercom_entity", "source")
    list_filter = ("status", "direction", "entity", "reason", "created_at", "connector")
    list_select_related = ("connector", "notification", "delivery")
    search_fields = ("=hull_id", "=intercom_id", "email", "external_id", "message", "action")
    search_help_text = "Email, Hull id, Intercom id, external id, action or message."
    date_hierarchy = "created_at"
    fields = (
        "created_at", "connector", "direction", "entity", "action", "status", "reason", "message", "email",
        "external_id", "hull_entity_detail", "intercom_entity_detail", "source", "data_pretty",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncLog]:
        qs = super().get_queryset(request)
        match = request.resolver_match
        return qs if match and match.url_name and match.url_name.endswith("change") else qs.defer("data")

    def get_list_display(self, request: HttpRequest) -> list[Any] | tuple[Any, ...]:
        # One connector (the usual deployment): its name in every row only pushes the rest off-screen.
        if Connector.objects.count() <= 1:
            return [name for name in self.list_display if name != "connector"]
        return self.list_display

    @admin.display(description="Why", ordering="reason")
    def why(self, obj: SyncLog) -> str:
        """The skip reason or Intercom's error message, readable in the list (whole text on hover)."""
        text = obj.message or obj.reason
        if not text:
            return "—"
        return format_html('<span title="{}">{}</span>', f"{obj.reason}: {obj.message}" if obj.reason else text, Truncator(text).chars(90))

    @admin.display(description="data")
    def data_pretty(self, obj: SyncLog) -> str:
        return pretty_json(obj.data)

    @admin.display(description="Hull entity", ordering="hull_id")
    def hull_entity(self, obj: SyncLog) -> str:
        if not obj.hull_id:
            return "—"
        return changelist_link("synclog", obj.hull_id, hull_id=obj.hull_id)

    @admin.display(description="Intercom", ordering="intercom_id")
    def intercom_entity(self, obj: SyncLog) -> str:
        if not obj.intercom_id:
            return "—"
        return changelist_link("identitylink", obj.intercom_id, intercom_id=obj.intercom_id)

    @admin.display(description="Hull entity")
    def hull_entity_detail(self, obj: SyncLog) -> str:
        if not obj.hull_id:
            return "—"
        return format_html(
            "<code>{}</code>: {} · {}",
            obj.hull_id,
            changelist_link("synclog", "every log row of this entity", hull_id=obj.hull_id),
            changelist_link("identitylink", "its identity links", hull_id=obj.hull_id),
        )

    @admin.display(description="Intercom contact or company")
    def intercom_entity_detail(self, obj: SyncLog) -> str:
        if not obj.intercom_id:
            return "—"
        parts = [
            changelist_link("identitylink", "identity link", intercom_id=obj.intercom_id),
            changelist_link("synclog", "every log row of this contact", intercom_id=obj.intercom_id),
        ]
        page = intercom_page(obj)
        if page:
            parts.append(format_html('<a href="{}" target="_blank" rel="noopener">open in Intercom</a>', page))
        return format_html("<code>{}</code>: {}", obj.intercom_id, format_html_join(" · ", "{}", ((p,) for p in parts)))

    @admin.display(description="Source")
    def source(self, obj: SyncLog) -> str:
        if obj.notification is not None:
            url = reverse("admin:sync_hullnotification_change", args=[obj.notification_id])
            return format_html('<a href="{}">Hull {}</a>', url, obj.notification.channel)
        if obj.delivery is not None:
            url = reverse("admin:sync_webhookdelivery_change", args=[obj.delivery_id])
            return format_html('<a href="{}">webhook {}</a>', url, obj.delivery.topic)
        return "fetch" if obj.direction == "incoming" else "—"


@admin.action(description="Replay (process again)", permissions=["replay"])
def replay_notifications(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[HullNotification]) -> None:
    from sync.services.replay import hull_notifications_replay

    count = hull_notifications_replay(notifications=queryset)
    modeladmin.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)


@admin.action(description="Replay (process again)", permissions=["replay"])
def replay_deliveries(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
    from sync.services.replay import webhook_deliveries_replay

    count = webhook_deliveries_replay(deliveries=queryset)
    modeladmin.message_user(request, f"{count} webhook deliver{'y' if count == 1 else 'ies'} queued again.", messages.SUCCESS)


@admin.register(HullNotification)
class HullNotificationAdmin(ReplayableAdmin):
    list_display = ("received_at", "connector", "channel", "notification_id", "is_export", "message_count", "status", "attempts", "logs")
    list_filter = ("status", "channel", "is_export", "received_at", "connector")
    search_fields = ("=notification_id", "synclog__email", "=synclog__hull_id", "=synclog__intercom_id")
    search_help_text = "Notification id, or the email / Hull id / Intercom id of an entity it carried."
    date_hierarchy = "received_at"
    actions = [replay_notifications]
    fields = (
        "connector", "channel", "notification_id", "is_export", "status", "attempts", "error", "message_count",
        "processed_messages", "received_at", "processed_at", "logs", "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Sync log")
    def logs(self, obj: HullNotification) -> str:
        return changelist_link("synclog", "log rows", notification__id__exact=obj.pk)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReplayableAdmin):
    list_display = ("received_at", "connector", "topic", "notification_id", "status", "attempts", "delivery_attempts", "logs")
    list_filter = ("status", "topic", "received_at", "connector")
    search_fields = ("=notification_id", "topic", "synclog__email", "=synclog__intercom_id", "=synclog__hull_id")
    search_help_text = "Intercom notification id, topic, or the email / Intercom id / Hull id of its contact."
    date_hierarchy = "received_at"
    actions = [replay_deliveries]
    fields = (
        "connector", "topic", "notification_id", "status", "attempts", "delivery_attempts", "error",
        "received_at", "processed_at", "logs", "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Sync log")
    def logs(self, obj: WebhookDelivery) -> str:
        return changelist_link("synclog", "log rows", delivery__id__exact=obj.pk)


@admin.register(HullSegment)
class HullSegmentAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "hull_id", "connector", "deleted", "updated_at")
    list_filter = ("kind", "deleted", "connector")
    search_fields = ("name", "=hull_id")


@admin.register(IdentityLink)
class IdentityLinkAdmin(ReadOnlyAdmin):
    list_display = ("entity", "hull_id", "intercom_id", "email", "external_id", "connector", "last_pushed_at", "updated_at", "logs")
    list_filter = ("entity", "connector")
    list_select_related = ("connector",)
    search_fields = ("=hull_id", "=intercom_id", "email", "external_id")
    search_help_text = "Hull id, Intercom id, email or external id."
    readonly_fields = ("logs", "intercom_link")

    @admin.display(description="Sync log")
    def logs(self, obj: IdentityLink) -> str:
        links = [changelist_link("synclog", "by Intercom id", intercom_id=obj.intercom_id)]
        if obj.hull_id:
            links.append(changelist_link("synclog", "by Hull id", hull_id=obj.hull_id))
        return format_html_join(" · ", "{}", ((link,) for link in links))

    @admin.display(description="Intercom")
    def intercom_link(self, obj: IdentityLink) -> str:
        page = intercom_page(obj)
        return format_html('<a href="{}" target="_blank" rel="noopener">open in Intercom</a>', page) if page else "—"


@admin.register(SyncCursor)
class SyncCursorAdmin(ReadOnlyAdmin):
    list_display = (
        "connector", "kind", "stream", "status", "high_water_mark", "pages", "entities", "total_estimate",
        "started_at", "finished_at", "updated_at",
    )
    list_filter = ("kind", "stream", "status", "connector")
