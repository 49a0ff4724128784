"""A stand-in Intercom workspace, stored in the database so the web demo and worker share it.

Times are unix seconds (floats where sub-second order matters) from the sandbox clock
(`sandbox.intercom.clock`), so tests can move time forward for search lag, windows and scrolls.
"""

from __future__ import annotations

import secrets

from django.db import models


def new_intercom_id() -> str:
    return secrets.token_hex(12)  # Intercom ids are 24 hex characters


class Workspace(models.Model):
    """One Intercom workspace (an app `id_code`), reached with one bearer token; also its knobs."""

    token = models.CharField(max_length=255, unique=True)
    id_code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, default="Sandbox workspace")
    timezone = models.CharField(max_length=64, default="UTC")
    region = models.CharField(max_length=8, default="US")

    # Knobs (settable from tests and the admin).
    # Intercom's defaults: 10,000 calls a minute per app, spread over 10-second windows (1,666 each),
    # with the X-RateLimit-* headers on every answer. 0 = unlimited and no headers.
    rate_limit = models.PositiveIntegerField(default=1666, help_text="Calls per window; 0 = unlimited (and no rate-limit headers).")
    rate_window_seconds = models.PositiveIntegerField(default=10, help_text="Intercom uses 10-second windows.")
    # Intercom's search shows a write "within a few minutes": never 0 by default.
    search_lag_seconds = models.FloatField(default=120.0, help_text="Writes become searchable after this delay.")
    fault_rate = models.FloatField(default=0.0, help_text="Share of calls answered with a 5xx (0..1).")
    fault_mode = models.CharField(
        max_length=8,
        choices=[
            ("before", "Before the work: nothing was done"),
            ("after", "After the work: done, then a 5xx"),
            ("drop", "After the work: done, then the answer is lost (timeout)"),
        ],
        default="before",
        help_text="When an injected fault strikes. Intercom can carry out a call and still fail to answer.",
    )
    latency_ms = models.PositiveIntegerField(default=0, help_text="Added to every answer.")
    scroll_ttl_seconds = models.PositiveIntegerField(default=60)

    # Rate-limit window state.
    window_index = models.BigIntegerField(default=0)
    window_count = models.PositiveIntegerField(default=0)

    # The one open companies scroll (docs/intercom-api.md#company-scroll).
    scroll_param = models.CharField(max_length=64, blank=True)
    scroll_position = models.PositiveIntegerField(default=0)
    scroll_expires_at = models.FloatField(default=0.0)

    next_tag_id = models.PositiveIntegerField(default=100)
    next_attribute_id = models.PositiveIntegerField(default=12000)

    def __str__(self) -> str:
        return f"{self.name} ({self.id_code})"


class Contact(models.Model):
    """A user or lead. `seq` orders lists and cursors; `searchable_at` models the lagging index."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="contacts")
    seq = models.BigAutoField(primary_key=True)
    intercom_id = models.CharField(max_length=24, unique=True, default=new_intercom_id)
    role = models.CharField(max_length=8, default="user")
    external_id = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    email = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    phone = models.CharField(max_length=64, null=True, blank=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    avatar = models.CharField(max_length=500, null=True, blank=True)
    owner_id = models.BigIntegerField(null=True, blank=True)
    unsubscribed_from_emails = models.BooleanField(default=False)
    signed_up_at = models.BigIntegerField(null=True, blank=True)
    last_seen_at = models.BigIntegerField(null=True, blank=True)
    created_at = models.BigIntegerField()
    updated_at = models.BigIntegerField()
    custom_attributes = models.JSONField(default=dict, blank=True)
    archived = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    merged_into = models.CharField(max_length=24, blank=True)
    searchable_at = models.FloatField(default=0.0)
    # What the search index shows until `searchable_at` (the state before the last write).
    indexed_snapshot = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"{self.role} {self.intercom_id}"


class Company(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="companies")
    seq = models.BigAutoField(primary_key=True)
    intercom_id = models.CharField(max_length=24, unique=True, default=new_intercom_id)
    company_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255, null=True, blank=True)
    plan = models.CharField(max_length=255, null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    website = models.CharField(max_length=500, null=True, blank=True)
    industry = models.CharField(max_length=255, null=True, blank=True)
    monthly_spend = models.BigIntegerField(default=0)
    remote_created_at = models.BigIntegerField(null=True, blank=True)
    # When the company last made a request: `/companies/list` is sorted by it (reference §3.3).
    last_request_at = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.BigIntegerField()
    updated_at = models.BigIntegerField()
    custom_attributes = models.JSONField(default=dict, blank=True)
    contacts = models.ManyToManyField(Contact, related_name="companies", blank=True)
    # Not a column: set by a list page's rendering, which counts a whole page's users in one query.
    listed_user_count: int

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "companies"
        constraints = [models.UniqueConstraint(fields=["workspace", "company_id"], name="sandbox_company_unique_company_id")]

    def __str__(self) -> str:
        return f"{self.name or self.company_id} ({self.intercom_id})"


class Tag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tags")
    tag_id = models.CharField(max_length=24)
    name = models.CharField(max_length=255)
    contacts = models.ManyToManyField(Contact, through="ContactTag", related_name="tags", blank=True)
    companies = models.ManyToManyField(Company, related_name="tags", blank=True)

    class Meta:
        ordering = ["tag_id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "tag_id"], name="sandbox_tag_unique_id")]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)
    applied_at = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="sandbox_contact_tag_unique")]


class DataAttribute(models.Model):
    """Custom data attributes only; the standard ones are a constant list in the handlers."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="data_attributes")
    attribute_id = models.PositiveIntegerField()
    model = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    data_type = models.CharField(max_length=16)
    description = models.TextField(blank=True)
    options = models.JSONField(default=list, blank=True)
    archived = models.BooleanField(default=False)
    created_at = models.BigIntegerField()

    class Meta:
        ordering = ["attribute_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "model", "name"], name="sandbox_attribute_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.model}.{self.name}"


class Event(models.Model):
    """A stored data event; (contact, name, created_at) is Intercom's dedup key."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events")
    event_name = models.CharField(max_length=255)
    created_at = models.BigIntegerField()
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "event_name", "created_at"], name="sandbox_event_dedup")
        ]


class Conversation(models.Model):
    """A conversation as Intercom returns it (seeded by tests and the demo)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="conversations")
    conversation_id = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "conversation_id"], name="sandbox_conversation_unique")
        ]


class SubscriptionType(models.Model):
    """A workspace's subscription type (`GET /subscription_types`); contacts attached to it are in `contacts`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="subscription_types")
    type_id = models.CharField(max_length=24)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    consent_type = models.CharField(max_length=8, default="opt_out", help_text="opt_out: subscribed unless attached; opt_in: the reverse.")
    state = models.CharField(max_length=8, default="live")
    content_types = models.JSONField(default=list, blank=True)
    contacts = models.ManyToManyField(Contact, related_name="subscription_types", blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["workspace", "type_id"], name="sandbox_subscription_type_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.consent_type})"
