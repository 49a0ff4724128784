"""Forms behind the connector page: segment and topic pickers, write-only secrets, mapping rows."""

from __future__ import annotations

import logging
import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from settings_ui import schema, spec_texts
from sync.models import Connector, Direction, Entity, FieldMapping, HullSegment, IdentityClaim

logger = logging.getLogger(__name__)

SECRET_FIELDS = ("hull_secret", "intercom_access_token", "intercom_client_secret")
ALL_SEGMENTS = "ALL"
# An Intercom webhook topic (contact.user.created) or a pattern with * for any part (conversation.*).
TOPIC_PATTERN = re.compile(r"(\*|[a-z_]+)(\.(\*|[a-z_]+))*")

# Identity strategies Hull's manifest allows per entity (docs/intercom-behaviour.md#settings,
# with docs/decisions.md#identity's domain <-> website for companies).
CLAIM_CHOICES: dict[str, tuple[list[str], list[str]]] = {
    Entity.USER: (["external_id", "email"], ["external_id", "email"]),
    Entity.LEAD: (["email"], ["email"]),
    Entity.COMPANY: (["external_id", "domain"], ["company_id", "website"]),
}


class LinesField(forms.Field):
    """A list stored as JSON, edited one item per line."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value or ""

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, (list, tuple)):
            return [str(item).strip() for item in value if str(item).strip()]
        return list(dict.fromkeys(line.strip() for line in (value or "").splitlines() if line.strip()))

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(initial) != self.to_python(data)


class DatalistInput(forms.TextInput):
    """A text box with suggestions (HTML datalist): pick Intercom's attribute or type a new one."""

    def __init__(self, options: list[schema.AttributeOption], list_id: str, attrs: dict | None = None) -> None:
        super().__init__(attrs={"list": list_id, "autocomplete": "off", "size": 30, **(attrs or {})})
        self.options = options
        self.list_id = list_id

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> SafeString:
        # The list is rendered once per table, in the admin's hidden template row ("__prefix__"),
        # which is always in the page: every box of the table points at it by id. Rendering it next
        # to every box made the connector page 300 KB and slow to draw.
        if "__prefix__" not in name:
            return super().render(name, value, attrs, renderer)
        datalist = format_html(
            '<datalist id="{}">{}</datalist>',
            self.list_id,
            format_html_join("", '<option value="{}">{}</option>', ((o.value, o.label) for o in self.options)),
        )
        return format_html("{}{}", super().render(name, value, attrs, renderer), datalist)


def segment_choices(connector: Connector | None, kind: str, selected: list[str]) -> list[tuple[str, str]]:
    """`ALL`, then the segments Hull has sent us; ids no longer known are kept so saving loses nothing."""
    choices = [(ALL_SEGMENTS, "ALL (every one)")]
    known: set[str] = set()
    if connector is not None and connector.pk:
        for segment in HullSegment.objects.filter(connector=connector, kind=kind, deleted=False).order_by("name"):
            choices.append((segment.hull_id, segment.name))
            known.add(segment.hull_id)
    for value in selected or []:
        if value != ALL_SEGMENTS and value not in known:
            choices.append((value, f"{value} (not among the segments Hull has sent)"))
    return choices


def extra_supported_topics() -> list[str]:
    """Topics the connector handles beyond the spec's table (not mere 2.x names of a listed one)."""
    try:
        from sync.incoming.topics import SUPPORTED_TOPICS, TOPIC_ALIASES
    except ImportError:
        return []
    return [t for t in SUPPORTED_TOPICS if t not in spec_texts.INCOMING_TOPICS and t not in TOPIC_ALIASES]


def topic_choices() -> list[tuple[str, str]]:
    choices = [
        (topic, f"{topic}: {info.description} → {info.action}") for topic, info in spec_texts.INCOMING_TOPICS.items()
    ]
    choices += [(topic, f"{topic}: also handled by this connector") for topic in extra_supported_topics()]
    return choices


class ConnectorForm(forms.ModelForm):
    """The connector settings. Secrets are write-only: never shown back; leaving them blank keeps the old value."""

    synchronized_lead_segments = forms.MultipleChoiceField(
        label="Lead filter", required=False, widget=forms.SelectMultiple(attrs={"size": 6})
    )
    synchronized_user_segments = forms.MultipleChoiceField(
        label="User filter", required=False, widget=forms.SelectMultiple(attrs={"size": 6})
    )
    synchronized_account_segments = forms.MultipleChoiceField(
        label="Companies filter", required=False, widget=forms.SelectMultiple(attrs={"size": 6})
    )
    incoming_events = forms.MultipleChoiceField(
        label="Intercom events whitelist", required=False, widget=forms.CheckboxSelectMultiple
    )
    # Not a model field: merged into incoming_events, so wildcards need no checkbox of their own.
    incoming_event_patterns = LinesField(
        label="Other topics or patterns",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="One per line; wildcards work (conversation.*). Intercom's 2.x names of the topics above are accepted automatically.",
    )
    outgoing_events = LinesField(label="Hull events whitelist", required=False)

    class Meta:
        model = Connector
        fields = "__all__"
        widgets = {name: forms.PasswordInput(render_value=False) for name in SECRET_FIELDS}
        labels = {
            "is_active": "Active",
            "intercom_access_token": "Intercom access token (private app)",
            "intercom_api_base": "Intercom API address",
        }
        help_texts = {
            "intercom_client_secret": (
                "The client secret of your Intercom app, used to check that webhooks really come from Intercom. "
                "Leave blank to use the app secret set on the server."
            ),
            "intercom_api_base": "Leave blank for Intercom itself (https://api.intercom.io). The demo points it at the sandbox.",
            "intercom_access_token": (
                "Instead of connecting with OAuth you can paste the access token of a private Intercom app "
                "(Developer Hub → your app → Configure → Authentication)."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Warnings that do not block saving (Intercom unreachable); the admin shows them after save.
        self.warnings: list[str] = []
        connector = self.instance if self.instance.pk else None
        for name, kind in (
            ("synchronized_lead_segments", HullSegment.Kind.USER),
            ("synchronized_user_segments", HullSegment.Kind.USER),
            ("synchronized_account_segments", HullSegment.Kind.ACCOUNT),
        ):
            cast(forms.ChoiceField, self.fields[name]).choices = segment_choices(connector, kind, getattr(self.instance, name))
        events_field = cast(forms.ChoiceField, self.fields["incoming_events"])
        events_field.choices = topic_choices()
        for field in self.fields.values():
            # Fields with a callable model default (consent_mappings=list) compare against a hidden copy of
            # their initial value, which the page does not render: every save would count them as changed.
            # Compare against the stored value instead.
            field.show_hidden_initial = False
        if "intercom_region" in self.fields:
            # A form that does not send the region keeps the connector's (US for a new one).
            self.fields["intercom_region"].required = False
        offered = {value for value, _ in events_field.choices}
        self.initial["incoming_event_patterns"] = [t for t in self.instance.incoming_events or [] if t not in offered]
        for name in ("fetch_users_interval", "fetch_leads_interval", "fetch_companies_interval"):
            if name in self.fields:
                self.fields[name].widget.attrs["min"] = 1
        for name, text in spec_texts.HELP.items():
            if name in self.fields:
                self.fields[name].help_text = text
        for name in SECRET_FIELDS:
            if name in self.fields and self.instance.pk and getattr(self.instance, name):
                self.fields[name].help_text = (
                    "Stored (encrypted). Leave blank to keep it, type a new value to replace it. " + self.fields[name].help_text
                )

    def clean_intercom_region(self) -> str:
        return self.cleaned_data.get("intercom_region") or self.instance.intercom_region or "us"

    @property
    def changed_data(self) -> list[str]:
        """What the history records as changed: a secret left blank is kept, so it did not change."""
        changed = super().changed_data
        return [name for name in changed if not (name in SECRET_FIELDS and self.instance.pk and not self.data.get(self.add_prefix(name)))]

    def clean_incoming_event_patterns(self) -> list[str]:
        """Each line is an Intercom topic (contact.user.created) or a wildcard pattern (conversation.*)."""
        patterns = self.cleaned_data.get("incoming_event_patterns") or []
        wrong = [p for p in patterns if not TOPIC_PATTERN.fullmatch(p)]
        if wrong:
            raise ValidationError(
                "Not an Intercom topic: %(wrong)s. A topic is lower-case words joined by dots, such as "
                "contact.user.created; a * stands for any part, such as conversation.*.",
                params={"wrong": ", ".join(f"“{p}”" for p in wrong)},
            )
        return patterns

    def _clean_interval(self, name: str) -> int | None:
        value = self.cleaned_data.get(name)
        if value is not None and value < 1:
            raise ValidationError("Enter a number of minutes, 1 or more. To stop fetching, untick the box next to it instead.")
        return value

    def clean_fetch_users_interval(self) -> int | None:
        return self._clean_interval("fetch_users_interval")

    def clean_fetch_leads_interval(self) -> int | None:
        return self._clean_interval("fetch_leads_interval")

    def clean_fetch_companies_interval(self) -> int | None:
        return self._clean_interval("fetch_companies_interval")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns
        stored = Connector.objects.get(pk=self.instance.pk) if self.instance.pk else None
        for name in SECRET_FIELDS:
            if name in cleaned and not cleaned[name] and stored is not None:
                cleaned[name] = getattr(stored, name)
        new_token = cleaned.get("intercom_access_token")
        if new_token and (stored is None or new_token != stored.intercom_access_token):
            self._identify_workspace(new_token, cleaned)
        if "incoming_events" in cleaned:
            cleaned["incoming_events"] = list(
                dict.fromkeys([*cleaned["incoming_events"], *cleaned.get("incoming_event_patterns", [])])
            )
        for name in ("synchronized_lead_segments", "synchronized_user_segments", "synchronized_account_segments"):
            values = cleaned.get(name) or []
            if ALL_SEGMENTS in values and len(values) > 1:
                # ALL already includes every segment; keeping both would only confuse the next reader.
                cleaned[name] = [ALL_SEGMENTS]
        return cleaned

    def _identify_workspace(self, token: str, cleaned: dict[str, Any]) -> None:
        """A pasted token is checked against Intercom's /me, which also names the workspace."""
        try:
            from sync.intercom.client import IntercomClient
            from sync.intercom.errors import IntercomUnauthorized
        except ImportError:  # the client is not there yet: accept the token as it is
            return

        from sync.intercom.regions import intercom_api_base

        # The region chosen on this form (a fixed table), or the demo's sandbox base already on the row.
        probe = Connector(intercom_region=cleaned.get("intercom_region") or self.instance.intercom_region,
                          intercom_api_base=self.instance.intercom_api_base)
        base = intercom_api_base(probe)
        try:
            # One try with short timeouts (schema.ADMIN_TIMEOUT): the save never waits long on Intercom.
            me = IntercomClient(
                token,
                workspace_key=cleaned.get("intercom_workspace_id") or "admin-check",
                base_url=base,
                max_retries=0,
                timeout=schema.ADMIN_TIMEOUT,
            ).me()
        except IntercomUnauthorized:
            self.add_error(
                "intercom_access_token",
                "Intercom refused this access token. Copy it again from your Intercom app (Configure → Authentication).",
            )
            return
        except Exception as error:  # Intercom unreachable: keep the token, say we could not check it
            logger.warning("admin.token_check.unavailable", extra={"error": type(error).__name__})
            self.warnings.append(
                "The access token was saved, but Intercom did not answer in time to check it. "
                "Use “Check connector” in a few minutes to make sure it works."
            )
            return
        app = me.get("app") or {}
        from sync.intercom.regions import region_from_me

        if region_from_me(me):  # /me confirms the region; Intercom's word wins (a fixed table)
            cleaned["intercom_region"] = region_from_me(me)
        cleaned["intercom_workspace_id"] = app.get("id_code") or cleaned.get("intercom_workspace_id", "")
        cleaned["intercom_workspace_name"] = app.get("name") or cleaned.get("intercom_workspace_name", "")
        # Fields not in cleaned_data are not copied to the instance by construct_instance.
        self.instance.intercom_workspace_id = cleaned["intercom_workspace_id"]
        self.instance.intercom_workspace_name = cleaned["intercom_workspace_name"]


class FieldMappingForm(forms.ModelForm):
    """One mapping row of a fixed entity and direction (set by the inline, not by staff)."""

    ENTITY: str = ""
    DIRECTION: str = ""

    class Meta:
        model = FieldMapping
        fields = ("entity", "direction", "hull_attribute", "intercom_attribute", "overwrite")
        widgets = {"entity": forms.HiddenInput, "direction": forms.HiddenInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entity"].initial = self.ENTITY
        self.fields["direction"].initial = self.DIRECTION
        self.fields["hull_attribute"].widget.attrs.setdefault("size", 30)
        if self.instance.pk and self.instance.read_only:
            # The identity mappings (id, email, external_id) carry the join between the two systems.
            for name in ("hull_attribute", "intercom_attribute"):
                self.fields[name].disabled = True
                self.fields[name].help_text = "Identity field: always synced."

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns
        cleaned["entity"], cleaned["direction"] = self.ENTITY, self.DIRECTION
        self.instance.entity, self.instance.direction = self.ENTITY, self.DIRECTION
        name = (cleaned.get("intercom_attribute") or "").strip()
        if self.instance.pk and not self.has_changed():
            return cleaned  # a row left as it was: checked when it was saved
        if self.DIRECTION == Direction.OUTGOING and name:
            model = "company" if self.ENTITY == Entity.COMPANY else "contact"
            connector = Connector.objects.filter(pk=self.instance.connector_id).first() if self.instance.connector_id else None
            reason = schema.read_only_reason(connector, model, name)
            if reason:
                self.add_error("intercom_attribute", reason)
        hull = (cleaned.get("hull_attribute") or "").strip()
        if hull.startswith("traits_"):
            # Hull's UI shows attributes as traits_<name>; the connector reads the bare name. Saying so
            # at the field beats rewriting what staff typed behind their back.
            self.add_error(
                "hull_attribute",
                f"Write the Hull attribute without “traits_”: “{hull[len('traits_'):]}”. Hull's own screens add that prefix; "
                "the connector reads the bare name.",
            )
        return cleaned


def _render_input_fast(widget: forms.Widget, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> str:
    """Django's input.html, written out: the same HTML without one template render per box."""
    context = widget.get_context(name, value, attrs)["widget"]
    shown = context["value"]
    return format_html(
        '<input type="{}" name="{}"{}{}>',
        context["type"],
        context["name"],
        format_html(' value="{}"', str(shown)) if shown is not None else "",
        flatatt(context["attrs"]),
    )


def speed_up_inputs(form: forms.BaseForm) -> None:
    """The mapping tables hold about a hundred rows of six boxes; rendering each box through a
    template took most of the connector page's 2-4 s. Plain inputs and checkboxes render directly."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, (forms.TextInput, forms.NumberInput, forms.HiddenInput, forms.CheckboxInput)) and not isinstance(widget, DatalistInput):
            widget.render = _render_input_fast.__get__(widget)  # type: ignore[method-assign]


class MappingFormSet(forms.BaseInlineFormSet):
    """Refuses deleting identity mappings, and two rows writing the same target attribute."""

    def add_fields(self, form: forms.ModelForm, index: int | None) -> None:
        super().add_fields(form, index)
        speed_up_inputs(form)

    def get_unique_error_message(self, unique_check: Any) -> str:
        # Django's own text names the model fields ("duplicate data for entity, hull_attribute ...").
        return "Two rows map the same Hull attribute to the same Intercom field: remove one of them."

    def clean(self) -> None:
        super().clean()
        targets: dict[str, str] = {}
        for form in self.forms:
            if self.can_delete and self._should_delete_form(form):  # type: ignore[attr-defined]  # django-stubs omits this BaseFormSet method
                if form.instance.pk and form.instance.read_only:
                    raise ValidationError(f"“{form.instance.intercom_attribute}” is an identity mapping and cannot be removed.")
                continue
            data = getattr(form, "cleaned_data", None) or {}
            outgoing = data.get("direction") == Direction.OUTGOING
            target = data.get("intercom_attribute" if outgoing else "hull_attribute")
            if not target:
                continue
            if target in targets:
                side = "Intercom field" if outgoing else "Hull attribute"
                raise ValidationError(f"Two rows write the {side} “{target}”: keep one.")
            targets[target] = target


class IdentityClaimForm(forms.ModelForm):
    ENTITY: str = ""

    class Meta:
        model = IdentityClaim
        fields = ("entity", "hull_attribute", "intercom_attribute", "priority")
        widgets = {"entity": forms.HiddenInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hull_names, intercom_names = CLAIM_CHOICES[self.ENTITY]
        self.fields["entity"].initial = self.ENTITY
        self.fields["hull_attribute"].widget = forms.Select(choices=[("", "---------")] + [(n, n) for n in hull_names])
        self.fields["intercom_attribute"].widget = forms.Select(choices=[("", "---------")] + [(n, n) for n in intercom_names])

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns
        cleaned["entity"] = self.ENTITY
        self.instance.entity = self.ENTITY
        hull_names, intercom_names = CLAIM_CHOICES[self.ENTITY]
        if cleaned.get("hull_attribute") and cleaned["hull_attribute"] not in hull_names:
            self.add_error("hull_attribute", f"Choose one of: {', '.join(hull_names)}.")
        if cleaned.get("intercom_attribute") and cleaned["intercom_attribute"] not in intercom_names:
            self.add_error("intercom_attribute", f"Choose one of: {', '.join(intercom_names)}.")
        return cleaned


class ClaimFormSet(forms.BaseInlineFormSet):
    """An entity without any identity claim could never be matched, so at least one row must stay."""

    def get_unique_error_message(self, unique_check: Any) -> str:
        return "Two identity rows are the same: remove one of them."

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        remaining = [f for f in self.forms if f.cleaned_data and not (self.can_delete and self._should_delete_form(f))]  # type: ignore[attr-defined]  # as above
        if not remaining:
            raise ValidationError("Keep at least one identity claim: without one nothing can be matched.")
