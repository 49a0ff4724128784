"""Read-only admins for what happened: sync logs, Hull notifications, Intercom webhook deliveries.

Logs are evidence: nobody edits them by hand. Rows link to each other (a log row to its
notification or delivery, to the IdentityLink joining its Hull entity and Intercom contact, and to
every other log row about the same entity), and failed deliveries can be replayed.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from settings_ui.words import error_words
from sync.intercom.regions import sandbox_api_base
from sync.models import (
    Connector,
    Entity,
    HullNotification,
    HullSegment,
    IdentityLink,
    SyncCursor,
    SyncLog,
    WebhookDelivery,
    WorkAttempt,
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
    if not row.intercom_id or not connector.intercom_workspace_id or sandbox_api_base(connector) or settings.INTERCOM_API_BASE_OVERRIDE:
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

    @admin.display(description="What was received")
    def payload_pretty(self, obj: HullNotification | WebhookDelivery) -> str:
        if isinstance(obj, HullNotification):
            try:
                return pretty_json(obj.full_payload())  # with its raw messages, parsed for reading
            except ValueError:
                pass
        return pretty_json(obj.payload)


STATUS_WORDS = {"success": "Synced", "skip": "Skipped", "halted": "Waiting (rate limit)", "error": "Failed"}
STATUS_COLOURS = {"success": "#2e7d32", "skip": "#6d6d6d", "halted": "#ef6c00", "error": "#c62828"}
DELIVERY_WORDS = {"pending": "Waiting", "processing": "Working on it", "done": "Done", "failed": "Failed"}


def status_words(code: str, words: dict[str, str]) -> str:
    colour = STATUS_COLOURS.get({"done": "success", "failed": "error", "pending": "halted"}.get(code, code), "inherit")
    return format_html('<span class="outcome outcome-{}" style="color:{};font-weight:bold">{}</span>', code, colour, words.get(code, code))


class OneConnectorColumns:
    """One connector (the usual deployment): its name in every row only pushes the rest off-screen."""

    list_display: tuple[str, ...]

    # The admin's own return type (a list or a tuple), so it overrides ModelAdmin's cleanly.
    def get_list_display(self, request: HttpRequest) -> list[Any] | tuple[Any, ...]:
        if Connector.objects.count() <= 1:
            return [name for name in self.list_display if name != "connector"]
        return self.list_display


@admin.register(SyncLog)
class SyncLogAdmin(OneConnectorColumns, ReadOnlyAdmin):
    # The columns a support person reads first fit at 1280 px; ids and codes are on the row's page
    # and in the filters.
    list_display = ("created_at", "connector", "email", "intercom_entity", "outcome", "what", "why", "source")
    list_display_links = ("created_at",)
    list_filter = ("status", "direction", "entity", "reason", "action", "created_at", "connector")
    list_select_related = ("connector", "notification", "delivery")
    search_fields = ("=hull_id", "=intercom_id", "email", "external_id", "message", "action")
    search_help_text = "Search by email, Hull id, Intercom id, external id or words of the message."
    date_hierarchy = "created_at"
    fields = (
        "created_at", "connector", "what", "outcome", "why", "email",
        "external_id", "hull_entity_detail", "intercom_entity_detail", "source", "data_pretty",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncLog]:
        qs = super().get_queryset(request)
        match = request.resolver_match
        return qs if match and match.url_name and match.url_name.endswith("change") else qs.defer("data")

    @admin.display(description="Outcome", ordering="status")
    def outcome(self, obj: SyncLog) -> str:
        return status_words(obj.status, STATUS_WORDS)

    @admin.display(description="What", ordering="entity")
    def what(self, obj: SyncLog) -> str:
        return f"{obj.get_entity_display()}, {obj.get_direction_display()}"

    @admin.display(description="Why", ordering="reason")
    def why(self, obj: SyncLog) -> str:
        """The skip reason or Intercom's error message, readable in the list (whole text on hover)."""
        if not obj.message:
            return "—"
        text = error_words(obj.message)
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(90))

    @admin.display(description="Data sent or received")
    def data_pretty(self, obj: SyncLog) -> str:
        return pretty_json(obj.data)

    @admin.display(description="Hull entity", ordering="hull_id")
    def hull_entity(self, obj: SyncLog) -> str:
        if not obj.hull_id:
            return "—"
        return changelist_link("synclog", obj.hull_id, hull_id=obj.hull_id)

    @admin.display(description="Intercom id", ordering="intercom_id")
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

    @admin.display(description="From")
    def source(self, obj: SyncLog) -> str:
        if obj.notification is not None:
            url = reverse("admin:sync_hullnotification_change", args=[obj.notification_id])
            return format_html('<a href="{}">Hull notification</a>', url)
        if obj.delivery_id:
            url = reverse("admin:sync_webhookdelivery_change", args=[obj.delivery_id])
            return format_html('<a href="{}">Intercom webhook</a>', url)
        return "Fetch from Intercom" if obj.direction == "incoming" else "—"


@admin.action(description="Replay (process again)", permissions=["replay"])
def replay_notifications(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[HullNotification]) -> None:
    from sync.services.replay import hull_notifications_replay

    replayed = _replayed_ids(queryset)  # before the replay: a "failed" filter no longer matches after it
    count = hull_notifications_replay(notifications=queryset)
    modeladmin.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)
    _record_replays(request, replayed, "Hull notification")


@admin.action(description="Replay (process again)", permissions=["replay"])
def replay_deliveries(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
    from sync.services.replay import webhook_deliveries_replay

    replayed = _replayed_ids(queryset)
    count = webhook_deliveries_replay(deliveries=queryset)
    modeladmin.message_user(request, f"{count} webhook deliver{'y' if count == 1 else 'ies'} queued again.", messages.SUCCESS)
    _record_replays(request, replayed, "Intercom webhook")


def _replayed_ids(queryset: QuerySet) -> dict[int, list[str]]:
    per_connector: dict[int, list[str]] = {}
    for connector_id, notification_id in queryset.values_list("connector_id", "notification_id"):
        per_connector.setdefault(connector_id, []).append(notification_id)
    return per_connector


def _record_replays(request: HttpRequest, per_connector: dict[int, list[str]], what: str) -> None:
    """The replay goes in each affected connector's history, with the ids replayed."""
    from settings_ui.history import history_record

    for connector in Connector.objects.filter(pk__in=per_connector):
        ids = per_connector[connector.pk]
        history_record(request, connector, f"Replayed {len(ids)} {what}(s) from the list: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''}.")


class DeliveryColumns:
    @admin.display(description="Status", ordering="status")
    def status_text(self, obj: HullNotification | WebhookDelivery) -> str:
        return status_words(obj.status, DELIVERY_WORDS)

    @admin.display(description="What went wrong")
    def error_text(self, obj: HullNotification | WebhookDelivery) -> str:
        if not obj.error:
            return "—"
        text = error_words(obj.error)
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(80))

    @admin.display(description="What went wrong")
    def error_detail(self, obj: HullNotification | WebhookDelivery) -> str:
        return error_words(obj.error) or "—"


# A cursor collects a row per page it fetched, for WorkAttempt.RETENTION_PERIOD: its page shows the latest.
CURSOR_ATTEMPTS_SHOWN = 50


class WorkAttemptInline(admin.TabularInline):
    """Every try at the unit (sync/work.py): a replay or a resume adds a row, none is erased."""

    model = WorkAttempt
    fields: ClassVar[tuple[str, ...]] = ("number", "started_at", "finished_at", "outcome", "error", "resume_at", "owner")
    readonly_fields: ClassVar[tuple[str, ...]] = fields
    extra = 0
    can_delete = False
    ordering = ("started_at", "id")
    verbose_name = "attempt"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NotificationAttemptInline(WorkAttemptInline):
    fk_name = "notification"


class DeliveryAttemptInline(WorkAttemptInline):
    fk_name = "delivery"


class CursorAttemptInline(WorkAttemptInline):
    """The fetch steps of a cursor: one row per try at a page (`number` counts the tries at that page)."""

    fk_name = "cursor"
    fields = ("page", "number", "started_at", "finished_at", "outcome", "error", "resume_at", "owner")
    readonly_fields = fields
    ordering = ("-started_at", "-id")
    verbose_name_plural = f"attempts (the latest {CURSOR_ATTEMPTS_SHOWN}, newest first)"


@admin.register(WorkAttempt)
class WorkAttemptAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "connector", "unit", "page", "number", "outcome", "finished_at", "error")
    list_filter = ("outcome", "started_at", "connector")
    date_hierarchy = "started_at"
    list_select_related = ("connector", "notification", "delivery", "cursor")

    @admin.display(description="Unit of work")
    def unit(self, obj: WorkAttempt) -> str:
        if obj.notification_id:
            url = reverse("admin:sync_hullnotification_change", args=[obj.notification_id])
            return format_html('<a href="{}">{}</a>', url, obj.notification)
        if obj.delivery_id:
            url = reverse("admin:sync_webhookdelivery_change", args=[obj.delivery_id])
            return format_html('<a href="{}">{}</a>', url, obj.delivery)
        if obj.cursor_id:
            url = reverse("admin:sync_synccursor_change", args=[obj.cursor_id])
            return format_html('<a href="{}">{}</a>', url, obj.cursor)
        return "—"


@admin.register(HullNotification)
class HullNotificationAdmin(OneConnectorColumns, DeliveryColumns, ReplayableAdmin):
    inlines = [NotificationAttemptInline]
    list_display = ("received_at", "connector", "kind", "message_count", "status_text", "attempts", "error_text", "logs")
    list_display_links = ("received_at",)
    list_filter = ("status", "channel", "is_export", "received_at", "connector")
    search_fields = ("=notification_id", "synclog__email", "=synclog__hull_id", "=synclog__intercom_id")
    search_help_text = "Search by notification id, or the email, Hull id or Intercom id of someone it carried."
    date_hierarchy = "received_at"
    actions = [replay_notifications]
    fields = (
        "connector", "kind", "notification_id", "status_text", "attempts", "error_detail", "message_count",
        "progress", "received_at", "processed_at", "logs", "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Kind", ordering="is_export")
    def kind(self, obj: HullNotification) -> str:
        # Words, not Django's red-cross boolean: "not an export" is no error.
        return f"Export ({obj.channel})" if obj.is_export else f"Notification ({obj.channel})"

    @admin.display(description="Progress")
    def progress(self, obj: HullNotification) -> str:
        return f"{len(obj.processed_messages or [])} of {obj.message_count} messages done (a restart resumes after them)."

    @admin.display(description="Sync log")
    def logs(self, obj: HullNotification) -> str:
        return changelist_link("synclog", "log rows", notification__id__exact=obj.pk)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OneConnectorColumns, DeliveryColumns, ReplayableAdmin):
    inlines = [DeliveryAttemptInline]
    list_display = ("received_at", "connector", "topic", "status_text", "attempts", "error_text", "logs")
    list_display_links = ("received_at",)
    list_filter = ("status", "topic", "received_at", "connector")
    search_fields = ("=notification_id", "topic", "synclog__email", "=synclog__intercom_id", "=synclog__hull_id")
    search_help_text = "Search by Intercom notification id, topic, or the email, Intercom id or Hull id of its contact."
    date_hierarchy = "received_at"
    actions = [replay_deliveries]
    fields = (
        "connector", "topic", "notification_id", "status_text", "attempts", "intercom_attempts", "error_detail",
        "received_at", "processed_at", "logs", "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Intercom's attempts")
    def intercom_attempts(self, obj: WebhookDelivery) -> int:
        return obj.delivery_attempts

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
    inlines = [CursorAttemptInline]
    list_display = (
        "connector", "kind", "stream", "status", "high_water_mark", "pages", "entities", "total_estimate",
        "started_at", "finished_at", "updated_at",
    )
    list_filter = ("kind", "stream", "status", "connector")
    exclude = ("last_error",)
    readonly_fields = ("what_went_wrong", "all_attempts")

    @admin.display(description="Last error")
    def what_went_wrong(self, obj: SyncCursor) -> str:
        return error_words(obj.last_error) or "—"

    @admin.display(description="Attempts")
    def all_attempts(self, obj: SyncCursor) -> str:
        return changelist_link("workattempt", f"all {obj.work_attempts.count()} attempts", cursor__id__exact=obj.pk)

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, CursorAttemptInline) and obj is not None:
            # The latest rows only: a filter (the inline formset filters the queryset again, so no slice).
            starts = obj.work_attempts.order_by("-started_at", "-id").values_list("started_at", flat=True)
            oldest_shown = next(iter(starts[CURSOR_ATTEMPTS_SHOWN - 1 : CURSOR_ATTEMPTS_SHOWN]), None)
            if oldest_shown is not None:
                kwargs["queryset"] = kwargs["queryset"].filter(started_at__gte=oldest_shown)
        return kwargs
