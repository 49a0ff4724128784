"""Admin pages of the features beyond the specification: erase a person from Intercom, acknowledge alerts, and the settings' sections.

Kept out of admin.py (whose layout other work restructures): `ConnectorAdmin.get_urls` adds
`feature_urls(...)`, and its fieldsets add `FEATURE_FIELDSETS`.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from sync.services.erasure import INTERCOM_KEEPS, KINDS, ErasureError, erase_person

# One block per feature, appended to the connector page's sections.
FEATURE_FIELDSETS = [
    (
        "Removal and erasure",
        {
            "description": (
                "What happens in Intercom when a Hull user is deleted or leaves every synchronized segment. "
                "To erase one person from Intercom on request (right to erasure), use “Erase a person” on the dashboard."
            ),
            "fields": ("removal_policy",),
        },
    ),
    (
        "Company moves",
        {
            "description": "Applies when “link users in Intercom” (Advanced) is on.",
            "fields": ("move_company_memberships",),
        },
    ),
    (
        "Intercom event-name limit",
        {
            "description": (
                "Intercom counts distinct event names per workspace and silently ignores new ones past its limit. "
                "The dashboard shows how many names this connector has sent."
            ),
            "fields": ("event_name_limit", "stop_new_event_names_at_limit"),
        },
    ),
    (
        "Consent (Intercom subscription types)",
        {
            "description": (
                "Hull → Intercom: the consent attributes below set the person's subscription types. Intercom → Hull: "
                "subscribe the Intercom app's webhooks to granular.subscribe and granular.unsubscribe (and add them to the "
                "Intercom events whitelist) to get a subscription_<type name> trait per type and a “Subscription changed” event."
            ),
            "fields": ("consent_mappings",),
        },
    ),
    (
        "Support context",
        {
            "description": "Per-person traits from Intercom conversations, for segmenting in Hull.",
            "fields": ("support_context_traits",),
        },
    ),
    (
        "Alerts",
        {
            "description": (
                "Alerts email the connector editors (staff in the “Connector editors” group and superusers, with an "
                "email address) at most once an hour per connector, and stay on the dashboard until acknowledged."
            ),
            "fields": ("alert_failure_threshold",),
        },
    ),
]


class ErasureForm(forms.Form):
    kind = forms.ChoiceField(
        label="Identify the person by",
        choices=[("email", "Email"), ("external_id", "External id"), ("hull_id", "Hull id")],
    )
    value = forms.CharField(label="Value", max_length=255)
    confirm = forms.BooleanField(
        label="I understand the Intercom contact(s) are deleted permanently", required=True
    )

    def clean_kind(self) -> str:
        kind = self.cleaned_data["kind"]
        if kind not in KINDS:
            raise forms.ValidationError("Unknown identity kind.")
        return kind


def erase_view(modeladmin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: the form with what Intercom keeps; POST: erase, then back to the dashboard with the outcome."""
    connector = modeladmin._connector_or_404(request, object_id)
    if not modeladmin.has_change_permission(request, connector):
        raise PermissionDenied
    form = ErasureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        actor = request.user.get_username() or f"user #{request.user.pk}"
        try:
            result = erase_person(connector=connector, kind=form.cleaned_data["kind"], value=form.cleaned_data["value"], actor=actor)
        except ErasureError as error:
            modeladmin.message_user(request, f"Erasure stopped: {error}", messages.ERROR)
        else:
            assert result.audit is not None  # erase_person always records the audit row
            level = messages.WARNING if result.errors else messages.SUCCESS
            modeladmin.message_user(request, f"{result.summary} Audit row #{result.audit.pk}.", level)
        return redirect(reverse("admin:sync_connector_dashboard", args=[connector.pk]))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Erase a person from Intercom",
        "opts": modeladmin.model._meta,
        "connector": connector,
        "form": form,
        "intercom_keeps": INTERCOM_KEEPS,
    }
    return TemplateResponse(request, "admin/sync/connector/erase.html", context)


def acknowledge_alerts_view(modeladmin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    from sync.services.alerts import acknowledge_alerts

    connector = modeladmin._connector_or_404(request, object_id)
    if request.method != "POST" or not modeladmin.has_change_permission(request, connector):
        raise PermissionDenied
    count = acknowledge_alerts(connector=connector, actor=request.user.get_username(), alert_id=request.POST.get("alert") or None)
    modeladmin.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)
    return redirect(reverse("admin:sync_connector_dashboard", args=[connector.pk]))


def feature_urls(modeladmin: Any, view: Callable) -> list[URLPattern]:
    def bound(func: Callable) -> Callable:
        return view(lambda request, object_id: func(modeladmin, request, object_id))

    return [
        path("<path:object_id>/erase/", bound(erase_view), name="sync_connector_erase"),
        path("<path:object_id>/alerts/acknowledge/", bound(acknowledge_alerts_view), name="sync_connector_acknowledge_alerts"),
    ]


def features_dashboard(connector: Any) -> dict[str, Any]:
    """The dashboard's alert panel and event-name count (template: features_dashboard.html)."""
    from sync.outgoing.event_names import sent_names_count, warn_at
    from sync.services.alerts import open_alerts

    names = sent_names_count(connector)
    return {
        "open_alerts": open_alerts(connector),
        "event_names": {
            "sent": names,
            "limit": connector.event_name_limit,
            "warn": names >= warn_at(connector),
            "reached": names >= connector.event_name_limit,
            "stopping": connector.stop_new_event_names_at_limit,
        },
        "erase_url": reverse("admin:sync_connector_erase", args=[connector.pk]),
        "acknowledge_url": reverse("admin:sync_connector_acknowledge_alerts", args=[connector.pk]),
    }


# --- read-only lists: the erasure audit and the alert history -------------------------------------

from django.contrib import admin  # noqa: E402 - registered here to keep admin.py's edits to two lines

from sync.models import ConnectorAlert, ErasureAudit  # noqa: E402


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ErasureAudit)
class ErasureAuditAdmin(_ReadOnly):
    list_display = ("created_at", "connector", "actor", "identity_kind", "outcome", "contacts_deleted", "identity_hash")
    list_filter = ("connector", "outcome", "identity_kind")
    search_fields = ("identity_hash",)  # paste the hash `identity_hash()` gives for an identity


@admin.register(ConnectorAlert)
class ConnectorAlertAdmin(_ReadOnly):
    list_display = ("created_at", "connector", "kind", "text", "occurrences", "emailed_at", "acknowledged_at", "acknowledged_by")
    list_filter = ("connector", "kind")
