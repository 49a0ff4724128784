"""Connector admin actions. Each asks for confirmation, then calls one service per connector.

The same functions serve the changelist's action menu and the buttons on a connector's own page
(`ConnectorAdmin.object_action_view`), so there is one code path to test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from settings_ui.history import history_record
from settings_ui.words import error_words
from sync.models import Connector, HullSegment, SyncCursor

logger = logging.getLogger(__name__)

CONFIRMATION_TEMPLATE = "admin/sync/connector/action_confirmation.html"

# What an action's `run` returns: one success message, or messages each at its own level.
Outcome = str | list[tuple[int, str]]


class ActionRefused(Exception):
    """The connector is not in a state where the action makes sense; the message says why."""


def _require_intercom(connector: Connector) -> None:
    if not connector.is_intercom_connected:
        raise ActionRefused("connect Intercom first (Getting started).")


def _require_hull(connector: Connector) -> None:
    if not connector.is_hull_configured:
        raise ActionRefused("enter the Hull credentials first (Getting started).")


def confirm_then_run(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Connector],
    *,
    title: str,
    explanation: str,
    run: Callable[[Connector], Outcome],
    segment_options: list[tuple[str, str]] | None = None,
) -> TemplateResponse | None:
    """Show a confirmation page; on "Yes, I'm sure" run `run` on each connector and report each outcome.

    `run` returns a success message, or a list of (message level, message) pairs.
    With `segment_options` the page also asks for a Hull segment (picked or typed), posted as `segment`.
    """
    if request.POST.get("post") != "yes" or (segment_options is not None and not request.POST.get("segment", "").strip()):
        context = {
            "segment_options": segment_options,
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "explanation": explanation,
            "queryset": queryset,
            "opts": modeladmin.model._meta,
            "action_name": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)
    for connector in queryset:
        try:
            outcome = run(connector)
        except ActionRefused as refusal:
            modeladmin.message_user(request, f"{connector}: {refusal}", messages.WARNING)
        except ImportError:
            logger.exception("admin.action.unavailable", extra={"connector": connector.pk, "title": title})
            modeladmin.message_user(request, f"{connector}: {title} is not available in this version.", messages.ERROR)
        except Exception as error:  # the service's failure is reported, never a 500 page
            logger.exception("admin.action.failed", extra={"connector": connector.pk, "title": title})
            modeladmin.message_user(request, f"{connector}: {title} failed: {error}", messages.ERROR)
            history_record(request, connector, f"{title}: failed ({type(error).__name__}).")
        else:
            report = [(messages.SUCCESS, outcome)] if isinstance(outcome, str) else outcome
            for level, text in report:
                modeladmin.message_user(request, f"{connector}: {text}", level)
            # The connector's history records the action and its outcome (the last line sums it up).
            history_record(request, connector, f"{title}: {report[-1][1]}" if report else title)
    return None


def _fetch_all(stream: str) -> Callable[[Connector], str]:
    def run(connector: Connector) -> str:
        _require_intercom(connector)
        _require_hull(connector)
        from sync.incoming.fetch import connector_fetch_all

        connector_fetch_all(connector=connector, stream=stream)
        return f"fetch all {stream} started; follow it on the dashboard."

    return run


def _make_fetch_action(stream: str, label: str) -> Callable:
    @admin.action(description=f"Fetch all {label} from Intercom", permissions=["change"])
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Connector]) -> TemplateResponse | None:
        return confirm_then_run(
            modeladmin,
            request,
            queryset,
            title=f"Fetch all {label}",
            explanation=(
                f"Retrieves every {label[:-1] if label != 'companies' else 'company'} in the Intercom workspace and "
                "sends it to Hull, page by page in the background. It resumes where it stopped after a restart."
            ),
            run=_fetch_all(stream),
        )

    action.__name__ = f"fetch_all_{stream}"
    return action


fetch_all_users = _make_fetch_action("users", "users")
fetch_all_leads = _make_fetch_action("leads", "leads")
fetch_all_companies = _make_fetch_action("companies", "companies")


def _cancel_fetches(connector: Connector) -> str:
    from sync.services.ops import fetch_all_cancel  # twin: manage.py cancel_fetch_all

    unfinished = (SyncCursor.Status.RUNNING, SyncCursor.Status.HALTED)
    running = set(
        SyncCursor.objects.filter(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, status__in=unfinished).values_list("stream", flat=True)
    )
    fetch_all_cancel(connector=connector)
    if not running:
        return "no fetch-all was running, so there was nothing to cancel."
    names = " and ".join(label.lower() for value, label in SyncCursor.Stream.choices if value in running)
    return f"fetch all {names} will stop after the page in progress."


@admin.action(description="Cancel running fetch-all", permissions=["change"])
def cancel_fetch_all(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Connector]) -> TemplateResponse | None:
    return confirm_then_run(
        modeladmin,
        request,
        queryset,
        title="Cancel running fetch-all",
        explanation="Stops every running fetch-all of these connectors after the page in progress.",
        run=_cancel_fetches,
    )


def _sync_data_attributes(connector: Connector) -> str:
    _require_intercom(connector)
    from sync.services.ops import data_attributes_create  # twin: manage.py sync_data_attributes

    created = data_attributes_create(connector=connector)
    if not created:
        return "every mapped Intercom attribute already exists."
    return "created in Intercom: " + ", ".join(f"{model} attribute {name}" for model, name in created) + "."


@admin.action(description="Sync data attributes to Intercom", permissions=["change"])
def sync_data_attributes(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Connector]) -> TemplateResponse | None:
    return confirm_then_run(
        modeladmin,
        request,
        queryset,
        title="Sync data attributes",
        explanation=(
            "Creates in Intercom the custom attributes your outgoing mappings write and that do not exist yet, "
            "with the data type of the Hull value."
        ),
        run=_sync_data_attributes,
    )


def _replay_failures(connector: Connector) -> str:
    from sync.services.replay import connector_failures_replay

    deliveries, notifications = connector_failures_replay(connector=connector)
    return f"{deliveries} webhook deliveries and {notifications} Hull notifications queued again."


@admin.action(description="Replay failed webhook deliveries and notifications", permissions=["change"])
def replay_failures(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Connector]) -> TemplateResponse | None:
    return confirm_then_run(
        modeladmin,
        request,
        queryset,
        title="Replay failed deliveries and notifications",
        explanation=(
            "Every failed Intercom webhook delivery and Hull notification of these connectors goes back to the "
            "queue and is processed again. Processing is idempotent: nothing is duplicated."
        ),
        run=_replay_failures,
    )


def _push_segment(segment_id: str) -> Callable[[Connector], str]:
    def run(connector: Connector) -> str:
        from sync.services.ops import SegmentPushRefused, segment_push

        try:
            push = segment_push(connector=connector, segment_id=segment_id)
        except SegmentPushRefused as refusal:
            raise ActionRefused(str(refusal)) from refusal
        return (
            f"export of segment {push.segment_name} requested from Hull; its users go to Intercom as "
            f"{connector.get_send_batch_as_display()} when Hull delivers it."
        )

    return run


@admin.action(description="Push a Hull segment to Intercom (export)", permissions=["change"])
def push_segment(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Connector]) -> TemplateResponse | None:
    connectors = list(queryset[:2])
    if len(connectors) != 1:
        # Segment ids belong to one Hull organization: one connector at a time.
        modeladmin.message_user(request, "Push a segment for one connector at a time.", messages.WARNING)
        return None
    segments = HullSegment.objects.filter(connector=connectors[0], kind=HullSegment.Kind.USER, deleted=False).order_by("name")
    return confirm_then_run(
        modeladmin,
        request,
        queryset,
        title="Push a Hull segment to Intercom",
        explanation=(
            "Hull exports every user of the segment to this connector, which sends them to Intercom whatever the "
            "User and Lead filters say, as users or leads according to “Send batch as”."
        ),
        run=_push_segment(request.POST.get("segment", "").strip()),
        segment_options=[(segment.hull_id, segment.name) for segment in segments],
    )


def check_words(message: str) -> str:
    """The check's messages are shared with `manage.py check_connector`, written for operators."""
    return error_words(message).replace("(set PUBLIC_BASE_URL)", "(ask whoever runs the server to set its public address)")


def _check_connector(connector: Connector) -> list[tuple[int, str]]:
    from sync.services.ops import FAIL, WARN, connector_check

    result = connector_check(connector=connector)
    levels = {FAIL: messages.ERROR, WARN: messages.WARNING}
    report = []
    for item in result.items:
        text = check_words(item.message).removeprefix(f"{item.label}: ")
        report.append((levels.get(item.level, messages.SUCCESS), f"{item.label}: {text}"))
    if result.ok:
        report.append((messages.SUCCESS, "ready."))
    else:
        names = ", ".join(item.label for item in result.failures)
        report.append((messages.ERROR, f"not ready: see {names} above."))
    return report


@admin.action(description="Check connector (Hull, Intercom, webhook URL, rate budget, queue)", permissions=["change"])
def check_connector(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Connector]) -> TemplateResponse | None:
    """The admin twin of `manage.py check_connector`: one message per check, at its level."""
    return confirm_then_run(
        modeladmin,
        request,
        queryset,
        title="Check connector",
        explanation=(
            "Checks that Hull accepts the connector's credentials, that Intercom accepts its access token, that "
            "the webhook address can be reached, how much of Intercom's rate limit is left, and that the worker "
            "keeps up with the queue. Nothing is changed."
        ),
        run=_check_connector,
    )


CONNECTOR_ACTIONS = [
    check_connector,
    fetch_all_users,
    fetch_all_leads,
    fetch_all_companies,
    cancel_fetch_all,
    sync_data_attributes,
    replay_failures,
    push_segment,
]
