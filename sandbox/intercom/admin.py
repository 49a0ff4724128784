"""The sandbox workspace's knobs in the admin (rate limit, window, search lag, faults, latency)."""

from django.contrib import admin

from sandbox.intercom.models import Company, Contact, DataAttribute, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "id_code", "rate_limit", "rate_window_seconds", "search_lag_seconds", "fault_rate", "latency_ms"]
    fieldsets = [
        (None, {"fields": ["name", "id_code", "token", "timezone", "region"]}),
        ("Behaviour", {"fields": ["rate_limit", "rate_window_seconds", "search_lag_seconds", "fault_rate", "fault_mode", "latency_ms", "scroll_ttl_seconds"]}),
    ]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["intercom_id", "role", "email", "external_id", "archived", "deleted", "workspace"]
    list_filter = ["role", "archived", "deleted", "workspace"]
    search_fields = ["intercom_id", "email", "external_id"]


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["intercom_id", "company_id", "name", "workspace"]
    search_fields = ["intercom_id", "company_id", "name"]


@admin.register(DataAttribute)
class DataAttributeAdmin(admin.ModelAdmin):
    list_display = ["model", "name", "data_type", "archived", "workspace"]
    list_filter = ["model", "data_type", "workspace"]
