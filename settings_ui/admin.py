"""The Django admin: where support staff configure connectors and read what happened."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from sync.models import (
    Connector,
    FieldMapping,
    HullNotification,
    HullSegment,
    IdentityClaim,
    IdentityLink,
    SyncCursor,
    SyncLog,
    WebhookDelivery,
)
from sync.services.connectors import connector_apply_defaults

SECRET_FIELDS = ("hull_secret", "intercom_access_token", "intercom_client_secret")


class ConnectorForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them back; leaving them blank keeps the old value."""

    class Meta:
        model = Connector
        fields = "__all__"
        widgets = {name: forms.PasswordInput(render_value=False) for name in SECRET_FIELDS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            if name in self.fields and self.instance.pk and getattr(self.instance, name):
                self.fields[name].help_text = "Stored (encrypted). Leave blank to keep it, type a new value to replace it."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if name in cleaned and not cleaned[name] and self.instance.pk:
                cleaned[name] = getattr(Connector.objects.get(pk=self.instance.pk), name)
        return cleaned


class IdentityClaimInline(admin.TabularInline):
    model = IdentityClaim
    extra = 0
    fields = ("entity", "hull_attribute", "intercom_attribute", "priority")


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    extra = 0
    fields = ("entity", "direction", "hull_attribute", "intercom_attribute", "overwrite")


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    list_display = ("name", "slug", "is_active", "intercom_workspace_name", "updated_at")
    search_fields = ("name", "slug", "hull_id", "intercom_workspace_id")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [IdentityClaimInline, FieldMappingInline]
    fieldsets = [
        ("Getting started", {"fields": ("name", "slug", "is_active", "hull_organization", "hull_id", "hull_secret",
                                        "hull_firehose_url", "intercom_workspace_id", "intercom_workspace_name",
                                        "intercom_access_token", "intercom_client_secret", "intercom_api_base")}),
        ("Leads", {"fields": ("synchronized_lead_segments", "tag_leads", "convert_leads")}),
        ("Users", {"fields": ("synchronized_user_segments", "tag_users", "ignore_deleted_users", "mark_deleted_users",
                              "send_batch_as")}),
        ("Companies", {"fields": ("synchronized_account_segments", "tag_companies", "ignore_deleted_accounts",
                                  "mark_deleted_accounts", "link_users_in_hull", "link_users_in_service")}),
        ("Events", {"fields": ("send_events", "outgoing_events", "receive_events", "incoming_events")}),
        ("Fetching", {"fields": ("fetch_users", "fetch_users_interval", "fetch_leads", "fetch_leads_interval",
                                 "fetch_companies", "fetch_companies_interval")}),
        ("Advanced", {"fields": ("legacy_attribute_mode",)}),
    ]

    def save_model(self, request: HttpRequest, obj: Connector, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            connector_apply_defaults(connector=obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are evidence: staff read them, nobody edits them by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "connector", "action", "status", "reason", "email", "hull_id", "intercom_id")
    list_filter = ("direction", "entity", "status", "action", "created_at", "connector")
    search_fields = ("email", "hull_id", "intercom_id", "external_id", "message")
    date_hierarchy = "created_at"
    readonly_fields = ("data_pretty",)
    exclude = ("data",)

    @admin.display(description="data")
    def data_pretty(self, obj: SyncLog) -> str:
        return pretty_json(obj.data)


@admin.register(HullNotification)
class HullNotificationAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "connector", "channel", "notification_id", "message_count", "status", "attempts")
    list_filter = ("status", "channel", "is_export", "connector")
    search_fields = ("notification_id",)
    readonly_fields = ("payload_pretty",)
    exclude = ("payload",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.resolver_match and request.resolver_match.url_name.endswith("change") else qs.defer("payload")

    @admin.display(description="payload")
    def payload_pretty(self, obj: HullNotification) -> str:
        return pretty_json(obj.payload)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "connector", "topic", "notification_id", "status", "attempts", "delivery_attempts")
    list_filter = ("status", "topic", "connector")
    search_fields = ("notification_id", "topic")
    readonly_fields = ("payload_pretty",)
    exclude = ("payload",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.resolver_match and request.resolver_match.url_name.endswith("change") else qs.defer("payload")

    @admin.display(description="payload")
    def payload_pretty(self, obj: WebhookDelivery) -> str:
        return pretty_json(obj.payload)


@admin.register(HullSegment)
class HullSegmentAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "hull_id", "connector", "deleted", "updated_at")
    list_filter = ("kind", "deleted", "connector")
    search_fields = ("name", "hull_id")


@admin.register(IdentityLink)
class IdentityLinkAdmin(ReadOnlyAdmin):
    list_display = ("entity", "hull_id", "intercom_id", "email", "external_id", "connector", "updated_at")
    list_filter = ("entity", "connector")
    search_fields = ("hull_id", "intercom_id", "email", "external_id")


@admin.register(SyncCursor)
class SyncCursorAdmin(ReadOnlyAdmin):
    list_display = ("connector", "kind", "stream", "status", "high_water_mark", "pages", "entities", "total_estimate", "updated_at")
    list_filter = ("kind", "stream", "status", "connector")
