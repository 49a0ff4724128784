"""The Django admin: where support staff configure connectors and read what happened.

The connector page follows the specification's Settings Reference (Getting started, Leads, Users,
Companies, Events, Fetching, Advanced), with each identity and mapping table inside its section
(`section` on the inline; see templates/admin/sync/connector/change_form.html). Log admins live in
`settings_ui.logs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from social_django.models import Association, Nonce, UserSocialAuth

from settings_ui import actions, layout, spec_texts
from settings_ui.background import data_attributes_create_later
from settings_ui.history import history_record
from settings_ui.dashboard import dashboard_context, webhook_url
from settings_ui.features import feature_urls
from settings_ui.forms import (
    ClaimFormSet,
    ConnectorForm,
    DatalistInput,
    FieldMappingForm,
    IdentityClaimForm,
    SECRET_FIELDS,
    MappingFormSet,
)
from settings_ui.logs import *  # noqa: F401,F403 - registers the log admins
from settings_ui.oauth import SESSION_CONNECTOR_KEY, intercom_disconnect
from settings_ui.schema import attribute_options

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec
from sync.models import Connector, Direction, Entity, FieldMapping, IdentityClaim
from sync.services.connectors import connector_apply_defaults

logger = logging.getLogger(__name__)


class SectionInline(admin.TabularInline):
    """An inline shown inside one fieldset of the connector page (see change_form.html)."""

    section: str = ""
    extra = 0


class IdentityClaimInline(SectionInline):
    model = IdentityClaim
    form = IdentityClaimForm
    formset = ClaimFormSet
    fields = ("entity", "hull_attribute", "intercom_attribute", "priority")
    entity: str = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[IdentityClaim]:
        return super().get_queryset(request).filter(entity=self.entity)

    def get_formset(self, request: HttpRequest, obj: Connector | None = None, **kwargs: Any) -> Any:
        form = type(f"{type(self).__name__}Form", (self.form,), {"ENTITY": self.entity})
        return super().get_formset(request, obj, form=form, **kwargs)


class LeadIdentityInline(IdentityClaimInline):
    entity, section, verbose_name_plural = Entity.LEAD, "Leads", "Lead identity"


class UserIdentityInline(IdentityClaimInline):
    entity, section, verbose_name_plural = Entity.USER, "Users", "User identity"


class CompanyIdentityInline(IdentityClaimInline):
    entity, section, verbose_name_plural = Entity.COMPANY, "Companies", "Company identity"


class FieldMappingInline(SectionInline):
    model = FieldMapping
    # 29 default incoming rows per contact type: folded until staff open them.
    classes: tuple[str, ...] = ()
    form = FieldMappingForm
    formset = MappingFormSet
    fields = ("entity", "direction", "hull_attribute", "intercom_attribute", "overwrite")
    entity: str = ""
    direction: str = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[FieldMapping]:
        return super().get_queryset(request).filter(entity=self.entity, direction=self.direction)

    def get_formset(self, request: HttpRequest, obj: Connector | None = None, **kwargs: Any) -> Any:
        outgoing = self.direction == Direction.OUTGOING
        model = "company" if self.entity == Entity.COMPANY else "contact"
        form = type(f"{type(self).__name__}Form", (self.form,), {"ENTITY": self.entity, "DIRECTION": self.direction})
        widget = DatalistInput(attribute_options(obj, model, writable=outgoing), f"intercom-{model}-{self.direction}-fields")
        # `widgets` replaces the form's Meta.widgets, so the fixed entity/direction stay hidden here too.
        widgets = {"entity": forms.HiddenInput, "direction": forms.HiddenInput, "intercom_attribute": widget}
        return super().get_formset(request, obj, form=form, widgets=widgets, **kwargs)


class LeadIncomingInline(FieldMappingInline):
    classes = ("collapse",)
    entity, direction, section = Entity.LEAD, Direction.INCOMING, "Incoming fields"
    verbose_name_plural = "Lead incoming fields (Intercom lead attribute → Hull user attribute)"


class LeadOutgoingInline(FieldMappingInline):
    entity, direction, section = Entity.LEAD, Direction.OUTGOING, "Leads"
    verbose_name_plural = "Lead outgoing fields (Hull user attribute → Intercom lead attribute)"


class UserIncomingInline(FieldMappingInline):
    classes = ("collapse",)
    entity, direction, section = Entity.USER, Direction.INCOMING, "Incoming fields"
    verbose_name_plural = "User incoming fields (Intercom user attribute → Hull user attribute)"


class UserOutgoingInline(FieldMappingInline):
    entity, direction, section = Entity.USER, Direction.OUTGOING, "Users"
    verbose_name_plural = "User outgoing fields (Hull user attribute → Intercom user attribute)"


class CompanyIncomingInline(FieldMappingInline):
    classes = ("collapse",)
    entity, direction, section = Entity.COMPANY, Direction.INCOMING, "Incoming fields"
    verbose_name_plural = "Company incoming fields (Intercom company attribute → Hull account attribute)"


class CompanyOutgoingInline(FieldMappingInline):
    entity, direction, section = Entity.COMPANY, Direction.OUTGOING, "Companies"
    verbose_name_plural = "Company outgoing fields (Hull account attribute → Intercom company attribute)"


def _without_secrets(fields: tuple) -> tuple:
    kept = []
    for field in fields:
        if isinstance(field, (tuple, list)):
            field = tuple(name for name in field if name not in SECRET_FIELDS)
            if field:
                kept.append(field)
        elif field not in SECRET_FIELDS:
            kept.append(field)
    return tuple(kept)


def _outgoing_mappings_changed(formsets: Any) -> bool:
    """Whether the save added or edited an outgoing mapping (only then can an attribute be missing)."""
    for formset in formsets:
        if getattr(formset.form, "DIRECTION", None) == Direction.OUTGOING and formset.has_changed():
            return True
    return False


# There is no public site besides the admin: no "View site" link to a 404.
admin.site.site_url = None
# The sidebar listing every table (internal ones too: identity links, cursors, the task queue) took
# 300 px from the log lists, pushing their columns off-screen at 1280 px; the home page lists them.
admin.site.enable_nav_sidebar = False

# Intercom is connected through social-auth without creating logins, so its tables stay empty: hide them.
for _model in (Association, Nonce, UserSocialAuth):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    change_form_template = "admin/sync/connector/change_form.html"
    list_display = ("name", "slug", "is_active", "intercom_workspace_name", "status_badge", "dashboard_link", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "hull_id", "intercom_workspace_id", "intercom_workspace_name")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("intercom_connection", "webhook_url", "website_snippet", "fetch_buttons")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = actions.CONNECTOR_ACTIONS
    inlines = [
        UserIdentityInline,
        UserOutgoingInline,
        LeadIdentityInline,
        LeadOutgoingInline,
        CompanyIdentityInline,
        CompanyOutgoingInline,
        UserIncomingInline,
        LeadIncomingInline,
        CompanyIncomingInline,
    ]
    fieldsets = cast("_FieldsetSpec", layout.fieldsets())  # tabs, sections and their fields: settings_ui/layout.py

    # A new connector gets its default claims and mappings on save; its add page asks only for
    # the basics, and the full page (with the tables) opens right after.
    def get_fieldsets(self, request: HttpRequest, obj: Connector | None = None) -> list:
        fieldsets = layout.fieldsets() if obj is not None else layout.add_page_fieldsets()  # self.fieldsets, typed
        if obj is not None and not self.has_change_permission(request, obj):
            # View-only staff get read-only fields rendered as text: the write-only secrets must go.
            fieldsets = [(name, opts | {"fields": _without_secrets(opts["fields"])}) for name, opts in fieldsets]
        return fieldsets

    def render_change_form(self, request: HttpRequest, context: dict, add: bool = False, change: bool = False, form_url: str = "", obj: Connector | None = None) -> HttpResponse:
        context["connector_tabs"] = [] if add else layout.TABS
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_inlines(self, request: HttpRequest, obj: Connector | None) -> list:
        return self.inlines if obj is not None else []

    def response_add(self, request: HttpRequest, obj: Connector, post_url_continue: str | None = None) -> HttpResponse:
        if "_addanother" not in request.POST and "_continue" not in request.POST:
            # Straight on to the rest of the settings rather than back to the list.
            post = request.POST.copy()
            post["_continue"] = "1"
            request.POST = post  # type: ignore[assignment]  # django-stubs types POST as immutable; Django lets a view replace it
        return super().response_add(request, obj, post_url_continue)

    # --- display fields -------------------------------------------------------------------

    @admin.display(description="Intercom connection")
    def intercom_connection(self, obj: Connector) -> str:
        if obj.pk is None:
            return "Save the connector first, then connect it to Intercom."
        connect_url = reverse("admin:sync_connector_intercom_connect", args=[obj.pk])
        if obj.is_intercom_connected:
            return format_html(
                '<strong class="intercom-connected">Connected</strong> to workspace “{}” ({}). '
                '<a class="button" href="{}">Reconnect</a> <a class="button" href="{}">Disconnect</a>',
                obj.intercom_workspace_name or "unnamed",
                obj.intercom_workspace_id or "id unknown",
                connect_url,
                reverse("admin:sync_connector_intercom_disconnect", args=[obj.pk]),
            )
        return format_html(
            '<strong class="intercom-disconnected">Not connected.</strong> '
            '<a class="button default" id="connect-intercom" href="{}">Connect Intercom</a> '
            "or paste a private app's access token below.",
            connect_url,
        )

    @admin.display(description="Webhook URL for Intercom")
    def webhook_url(self, obj: Connector) -> str:
        if obj.pk is None:
            return "Shown once the connector is saved."
        return format_html(
            "<code>{}</code><div class='help'>Paste it in your Intercom app's Webhooks page and subscribe to the "
            "topics chosen under Events.</div>",
            webhook_url(obj),
        )

    @admin.display(description="Website snippet")
    def website_snippet(self, obj: Connector) -> str:
        """The one-line <script> tag for the website, shown as text with a Copy button (change_form.html)."""
        if obj.pk is None:
            return "Shown once the connector is saved."
        from sync.services.snippet import snippet_tag

        return format_html(
            '<input type="text" id="website-snippet" readonly value="{}" '
            'onfocus="this.select()"> <button type="button" class="button copy-snippet" data-copy-target="website-snippet">'
            "Copy</button><div class='help'>{}</div>",
            snippet_tag(obj),
            spec_texts.WEBSITE_SNIPPET,
        )

    @admin.display(description="Fetch all")
    def fetch_buttons(self, obj: Connector) -> str:
        if obj.pk is None:
            return ""
        links = [
            (reverse("admin:sync_connector_run_action", args=[obj.pk, f"fetch_all_{stream}"]), f"Fetch all {stream}")
            for stream in ("users", "leads", "companies")
        ]
        return format_html(
            "{} <a href='{}'>Dashboard: progress of running fetches</a>",
            format_html_join("", '<a class="button fetch-all" href="{}">{}</a> ', links),
            reverse("admin:sync_connector_dashboard", args=[obj.pk]),
        )

    @admin.display(description="Status")
    def status_badge(self, obj: Connector) -> str:
        from sync.services.status import connector_status

        from settings_ui.dashboard import STATUS_WORDS

        status = connector_status(connector=obj)
        return format_html(
            '<span class="connector-status status-{}" title="{}">{}</span>',
            status.status,
            "\n".join(status.messages),
            STATUS_WORDS.get(status.status, status.status),
        )

    @admin.display(description="Dashboard")
    def dashboard_link(self, obj: Connector) -> str:
        return format_html('<a href="{}">Dashboard</a>', reverse("admin:sync_connector_dashboard", args=[obj.pk]))

    # --- saving ---------------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Connector, form: Any, change: bool) -> None:
        before = Connector.objects.filter(pk=obj.pk).values("is_active", "intercom_access_token").first() if change else None
        super().save_model(request, obj, form, change)
        if not change:
            connector_apply_defaults(connector=obj)
        elif before is not None:
            from sync.work import connector_token_accepted, connector_work_resume

            if obj.intercom_access_token and obj.intercom_access_token != before["intercom_access_token"]:
                connector_token_accepted(connector=obj)  # a pasted token lifts a refused one's hold
            elif obj.is_active and not before["is_active"]:
                connector_work_resume(connector=obj)  # unpaused: what was stored meanwhile runs now
        for warning in getattr(form, "warnings", []):
            self.message_user(request, warning, messages.WARNING)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # After the mappings are saved: schedules follow the fetch settings, and outgoing custom
        # attributes that do not exist in Intercom yet are created (spec: "Hull will create that field").
        # Schedules are rows in our own database: updated in the save. Creating Intercom attributes
        # talks to Intercom, so it runs in the worker after commit; the page says so and the
        # dashboard shows how it went (settings_ui/background.py).
        self._call_after_save(request, form.instance, "sync.incoming.fetch", "connector_schedules_update", "Updating the fetch schedules")
        if form.instance.is_intercom_connected and _outgoing_mappings_changed(formsets):
            data_attributes_create_later(form.instance)
            self.message_user(
                request,
                "Creating the Intercom data attributes of the new outgoing fields in the background. "
                "The dashboard shows the result under “Background work”.",
                messages.INFO,
            )

    def _call_after_save(self, request: HttpRequest, connector: Connector, module: str, name: str, doing: str) -> None:
        import importlib

        try:
            service = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            logger.info("admin.service.unavailable", extra={"service": f"{module}.{name}"})
            return
        try:
            service(connector=connector)
        except Exception as error:  # the settings are saved; the follow-up failure is reported, not a 500
            logger.exception("admin.service.failed", extra={"service": f"{module}.{name}", "connector": connector.pk})
            self.message_user(request, f"{doing} failed: {error}. The settings were saved.", messages.WARNING)

    # --- extra views ----------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/dashboard/", view(self.dashboard_view), name="sync_connector_dashboard"),
            path("<path:object_id>/dashboard/live/", view(self.dashboard_live_view), name="sync_connector_dashboard_live"),
            path("<path:object_id>/intercom/connect/", view(self.intercom_connect_view), name="sync_connector_intercom_connect"),
            path(
                "<path:object_id>/intercom/disconnect/",
                view(self.intercom_disconnect_view),
                name="sync_connector_intercom_disconnect",
            ),
            path("<path:object_id>/run/<str:action>/", view(self.object_action_view), name="sync_connector_run_action"),
            *feature_urls(self, view),  # erase a person, acknowledge alerts (settings_ui/features.py)
        ] + super().get_urls()

    def _connector_or_404(self, request: HttpRequest, object_id: str) -> Connector:
        connector = self.get_object(request, object_id)
        if connector is None:
            raise Http404("No such connector.")
        return connector

    def dashboard_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        return TemplateResponse(request, "admin/sync/connector/dashboard.html", self._dashboard_context(request, object_id))

    def dashboard_live_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        """The dashboard's changing part alone, which its script swaps in every few seconds."""
        return TemplateResponse(request, "admin/sync/connector/dashboard/live.html", self._dashboard_context(request, object_id))

    def _dashboard_context(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        connector = self._connector_or_404(request, object_id)
        if not self.has_view_permission(request, connector):
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),
            **dashboard_context(connector),
            "title": f"{connector} — dashboard",
            "opts": self.model._meta,
            "original": connector,
            "has_change_permission": self.has_change_permission(request, connector),
            "available_actions": {name for name in self.get_actions(request)},
        }

    def intercom_connect_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        """Remember which connector is being connected, then start social-auth's Intercom flow."""
        connector = self._connector_or_404(request, object_id)
        if not self.has_change_permission(request, connector):
            raise PermissionDenied
        request.session[SESSION_CONNECTOR_KEY] = connector.pk
        return redirect(reverse("social:begin", args=["intercom"]))

    def intercom_disconnect_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        connector = self._connector_or_404(request, object_id)
        if not self.has_change_permission(request, connector):
            raise PermissionDenied
        if request.method == "POST":
            intercom_disconnect(connector=connector)
            history_record(request, connector, "Disconnected from Intercom (the stored access token was deleted).")
            self._call_after_save(request, connector, "sync.incoming.fetch", "connector_schedules_update", "Updating the fetch schedules")
            self.message_user(request, f"{connector} is disconnected from Intercom.", messages.SUCCESS)
            return redirect(reverse("admin:sync_connector_change", args=[connector.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Disconnect Intercom",
            "explanation": (
                f"The stored access token of workspace “{connector.intercom_workspace_name or connector.intercom_workspace_id}” "
                "will be deleted. Nothing is synced with Intercom until you connect again. To revoke the token in "
                "Intercom itself, uninstall the app from the workspace."
            ),
            "queryset": [connector],
            "opts": self.model._meta,
            "action_name": "",
            "destructive": True,
            "confirm_label": "Disconnect",
        }
        return TemplateResponse(request, "admin/sync/connector/action_confirmation.html", context)

    def object_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """The buttons on a connector's pages: the changelist action, for this one connector."""
        connector = self._connector_or_404(request, object_id)
        available = self.get_actions(request)  # already filtered by the actions' permissions
        entry = available.get(action)
        if entry is None:
            raise PermissionDenied
        func: Callable[..., HttpResponse | None] = entry[0]  # type: ignore[assignment]  # django-stubs (Django 5 branch) says actions return str
        response = func(self, request, Connector.objects.filter(pk=connector.pk))
        return response or redirect(reverse("admin:sync_connector_dashboard", args=[connector.pk]))
