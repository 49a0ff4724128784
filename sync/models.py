"""The connector's data model: configuration, identity links, cursors, and the delivery/sync logs.

Setting names follow Hull's Intercom connector (reference/hull-intercom-behaviour.md §2.1) so a
support engineer who knows Hull's manifest finds each one under the same name and default.
"""

from __future__ import annotations

import secrets
from typing import Any
from datetime import timedelta

from django.db import models
from django.db.models import Q

from sync.crypto import EncryptedTextField

DEFAULT_INCOMING_EVENTS = ["user.created", "user.deleted", "contact.created"]


def default_incoming_events() -> list[str]:
    return list(DEFAULT_INCOMING_EVENTS)


def new_public_token() -> str:
    return secrets.token_urlsafe(24)


class Entity(models.TextChoices):
    USER = "user", "User"
    LEAD = "lead", "Lead"
    COMPANY = "company", "Company"


class Direction(models.TextChoices):
    INCOMING = "incoming", "Intercom → Hull"
    OUTGOING = "outgoing", "Hull → Intercom"


class Connector(models.Model):
    """One Hull connector instance bound to one Intercom workspace."""

    class SendBatchAs(models.TextChoices):
        USERS = "Users", "Users"
        LEADS = "Leads", "Leads"

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True, help_text="Appears in the URLs Hull and Intercom call.")
    is_active = models.BooleanField(default=True, help_text="Paused connectors store what they receive but sync nothing.")

    # Getting started: Hull credentials (reference/hull-platform.md §1.1).
    hull_organization = models.CharField(max_length=255, blank=True, help_text='Hull organization host, e.g. "acme.hullapp.io".')
    hull_id = models.CharField("Hull connector id", max_length=64, blank=True, db_index=True)
    hull_secret = EncryptedTextField("Hull connector secret", blank=True)
    hull_firehose_url = models.URLField(blank=True, help_text="Blank for Hull's own firehose (https://firehose.hullapp.io for an organization on hullapp.io); the demo points this at the sandbox.")

    # Getting started: Intercom connection.
    intercom_workspace_id = models.CharField(max_length=64, blank=True)
    intercom_workspace_name = models.CharField(max_length=200, blank=True)
    intercom_access_token = EncryptedTextField(blank=True)
    intercom_client_secret = EncryptedTextField(
        blank=True, help_text="Client secret of the Intercom app, used to verify webhook signatures (defaults to INTERCOM_CLIENT_SECRET)."
    )
    intercom_api_base = models.URLField(blank=True, help_text="Blank for https://api.intercom.io; the demo points this at the sandbox.")
    webhook_id = models.CharField(max_length=64, blank=True)
    public_token = models.CharField(max_length=64, default=new_public_token, unique=True, editable=False)

    # Batch / exports.
    send_batch_as = models.CharField(max_length=10, choices=SendBatchAs.choices, default=SendBatchAs.USERS)

    # Leads.
    synchronized_lead_segments = models.JSONField("Lead filter", default=list, blank=True)
    fetch_leads = models.BooleanField(default=True)
    fetch_leads_interval = models.PositiveIntegerField("Lead fetch interval (minutes)", default=5)
    tag_leads = models.BooleanField(default=True)
    convert_leads = models.BooleanField(default=False)

    # Users.
    synchronized_user_segments = models.JSONField("User filter", default=list, blank=True)
    fetch_users = models.BooleanField(default=True)
    fetch_users_interval = models.PositiveIntegerField("User fetch interval (minutes)", default=5)
    tag_users = models.BooleanField(default=True)
    ignore_deleted_users = models.BooleanField(default=True)
    mark_deleted_users = models.BooleanField(default=True)

    # Companies.
    synchronized_account_segments = models.JSONField("Company filter", default=list, blank=True)
    fetch_companies = models.BooleanField(default=False)
    fetch_companies_interval = models.PositiveIntegerField("Company fetch interval (minutes)", default=30)
    tag_companies = models.BooleanField(default=True)
    ignore_deleted_accounts = models.BooleanField(default=True)
    mark_deleted_accounts = models.BooleanField(default=True)
    link_users_in_hull = models.BooleanField(default=False)
    link_users_in_service = models.BooleanField(default=False)

    # Events.
    send_events = models.BooleanField(default=True)
    outgoing_events = models.JSONField("Hull events whitelist", default=list, blank=True)
    receive_events = models.BooleanField(default=True)
    incoming_events = models.JSONField("Intercom events whitelist", default=default_incoming_events, blank=True)

    # Advanced.
    legacy_attribute_mode = models.BooleanField(
        default=False, help_text="Also write the legacy intercom/ group and intercom:{Intercom id} anonymous ids (migration)."
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_intercom_connected(self) -> bool:
        return bool(self.intercom_access_token)

    @property
    def is_hull_configured(self) -> bool:
        return bool(self.hull_organization and self.hull_id and self.hull_secret)


class IdentityClaim(models.Model):
    """One identity-strategy row: which Hull attribute matches which Intercom field."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="identity_claims")
    entity = models.CharField(max_length=10, choices=Entity.choices)
    hull_attribute = models.CharField(max_length=100)
    intercom_attribute = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=0, help_text="Lower is tried first (external_id before email).")

    class Meta:
        ordering = ["connector", "entity", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "entity", "hull_attribute", "intercom_attribute"], name="unique_identity_claim"
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity}: {self.hull_attribute} ↔ {self.intercom_attribute}"


class FieldMapping(models.Model):
    """One attribute mapping row. Incoming rows write `hull_attribute`; outgoing rows write `intercom_attribute`."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="field_mappings")
    entity = models.CharField(max_length=10, choices=Entity.choices)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    hull_attribute = models.CharField(max_length=255)
    intercom_attribute = models.CharField(max_length=255)
    overwrite = models.BooleanField(default=True, help_text="Off: only set the value when it is empty (setIfNull).")
    read_only = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["connector", "entity", "direction", "id"]
        constraints = [
            # One source per target: two rows may not write the same attribute.
            models.UniqueConstraint(
                fields=["connector", "entity", "direction", "hull_attribute"],
                condition=Q(direction="incoming"),
                name="unique_incoming_target",
            ),
            models.UniqueConstraint(
                fields=["connector", "entity", "direction", "intercom_attribute"],
                condition=Q(direction="outgoing"),
                name="unique_outgoing_target",
            ),
        ]

    def __str__(self) -> str:
        arrow = "→" if self.direction == Direction.OUTGOING else "←"
        return f"{self.entity}: {self.hull_attribute} {arrow} {self.intercom_attribute}"


class HullSegment(models.Model):
    """Segments Hull has told us about (for the admin's filter pickers and for tags)."""

    class Kind(models.TextChoices):
        USER = "user", "User segment"
        ACCOUNT = "account", "Account segment"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="segments")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    hull_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    deleted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["connector", "kind", "hull_id"], name="unique_hull_segment")]

    def __str__(self) -> str:
        return self.name


class IdentityLink(models.Model):
    """What we know joins a Hull entity to an Intercom contact or company.

    Also remembers the hash of the last payload pushed (no identical re-sends) and the newest
    `updated_at` ingested (the incremental fetch's overlap costs pages, not Hull writes).
    """

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="identity_links")
    entity = models.CharField(max_length=10, choices=Entity.choices)
    intercom_id = models.CharField(max_length=64)
    hull_id = models.CharField(max_length=64, blank=True)
    email = models.CharField(max_length=255, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    last_payload_hash = models.CharField(max_length=64, blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    last_ingested_updated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connector", "entity", "intercom_id"], name="unique_link_intercom_id"),
            models.UniqueConstraint(
                fields=["connector", "entity", "hull_id"], condition=~Q(hull_id=""), name="unique_link_hull_id"
            ),
        ]
        indexes = [models.Index(fields=["connector", "email"]), models.Index(fields=["connector", "external_id"])]

    def __str__(self) -> str:
        return f"{self.entity} {self.hull_id or '?'} ↔ {self.intercom_id}"


class SyncCursor(models.Model):
    """Progress of one fetch stream: the incremental high-water mark, or a fetch-all's page cursor."""

    class Kind(models.TextChoices):
        INCREMENTAL = "incremental", "Incremental fetch"
        FETCH_ALL = "fetch_all", "Fetch all"

    class Stream(models.TextChoices):
        USERS = "users", "Users"
        LEADS = "leads", "Leads"
        COMPANIES = "companies", "Companies"

    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        HALTED = "halted", "Halted (rate limited, will resume)"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="cursors")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    stream = models.CharField(max_length=10, choices=Stream.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IDLE)
    high_water_mark = models.DateTimeField(null=True, blank=True, help_text="Newest updated_at handed to Hull.")
    run_started_from = models.DateTimeField(null=True, blank=True, help_text="Where the current run started searching.")
    page_cursor = models.TextField(blank=True, help_text="Intercom's starting_after / scroll_param of the next page.")
    pages = models.PositiveIntegerField(default=0)
    entities = models.PositiveIntegerField(default=0)
    total_estimate = models.PositiveIntegerField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connector", "kind", "stream"], name="unique_cursor")]

    def __str__(self) -> str:
        return f"{self.connector} {self.get_kind_display()} {self.stream}"


class SyncLog(models.Model):
    """Exactly one row per entity the connector touched: success, skip (with reason) or error."""

    RETENTION_PERIOD = timedelta(days=30)

    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        SKIPPED = "skip", "Skipped"
        HALTED = "halted", "Halted"
        ERROR = "error", "Error"

    class EntityType(models.TextChoices):
        USER = "user", "User"
        LEAD = "lead", "Lead"
        ACCOUNT = "account", "Account"
        EVENT = "event", "Event"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="sync_logs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    entity = models.CharField(max_length=10, choices=EntityType.choices)
    action = models.CharField(max_length=64, help_text="Hull's message name, e.g. outgoing.user.success.")
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True, help_text="Stable reason code for skips and errors.")
    message = models.TextField(blank=True, help_text="Human explanation, or the remote system's error message.")
    hull_id = models.CharField(max_length=64, blank=True)
    intercom_id = models.CharField(max_length=64, blank=True)
    email = models.CharField(max_length=255, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    notification = models.ForeignKey("HullNotification", null=True, blank=True, on_delete=models.SET_NULL)
    delivery = models.ForeignKey("WebhookDelivery", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["connector", "-created_at"]),
            models.Index(fields=["connector", "status", "-created_at"]),
            models.Index(fields=["email"]),
            models.Index(fields=["hull_id"]),
            models.Index(fields=["intercom_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.email or self.hull_id or self.intercom_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Processed"
    IGNORED = "ignored", "Ignored"
    UNSUPPORTED = "unsupported", "Unsupported topic"
    FAILED = "failed", "Failed"


class HullNotification(models.Model):
    """A notification (or export batch) from Hull, stored before we acknowledge it."""

    RETENTION_PERIOD = timedelta(days=14)

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="notifications")
    notification_id = models.CharField(max_length=128)
    channel = models.CharField(max_length=64)
    is_export = models.BooleanField(default=False)
    payload = models.JSONField(default=dict)
    raw_messages = models.BinaryField(
        null=True,
        blank=True,
        editable=False,
        help_text="The messages array as received (raw JSON), when the payload holds only the rest; parsed by the worker.",
    )
    message_count = models.PositiveIntegerField(default=0)
    processed_messages = models.JSONField(default=list, blank=True, help_text="Indexes already done (resume after a crash).")
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connector", "notification_id"], name="unique_hull_notification")]
        indexes = [models.Index(fields=["connector", "status"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.notification_id}"

    @staticmethod
    def decode_messages(raw: bytes | memoryview) -> Any:
        from sync.json_values import loads_json_body  # the endpoint's own rules (NaN, depth, NUL)

        # No nesting-depth walk (0.3 s on 10,000 messages): nothing here is encoded again as a
        # whole, and a message too deep for an encoder ends in that entity's error row.
        return loads_json_body(bytes(raw), check_depth=False)

    def full_payload(self) -> dict[str, Any]:
        """The notification as Hull sent it (secrets redacted): `payload` plus its raw messages.

        Receipt keeps a large `messages` array unparsed so Hull gets its answer fast; readers
        (the worker, the admin) call this. Raises ValueError for messages that do not decode.
        """
        if self.raw_messages is None:
            return self.payload
        return {**self.payload, "messages": self.decode_messages(self.raw_messages)}


class WebhookDelivery(models.Model):
    """A webhook notification from Intercom, stored before we answer 200."""

    RETENTION_PERIOD = timedelta(days=14)

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="webhook_deliveries")
    notification_id = models.CharField(max_length=128)
    topic = models.CharField(max_length=128)
    payload = models.JSONField(default=dict)
    delivery_attempts = models.PositiveIntegerField(default=1, help_text="Intercom's own attempt counter.")
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["connector", "notification_id"], name="unique_webhook_delivery")]
        indexes = [models.Index(fields=["connector", "status"]), models.Index(fields=["topic"])]

    def __str__(self) -> str:
        return f"{self.topic} {self.notification_id}"


class RateBudget(models.Model):
    """Intercom's rate-limit window for one workspace, shared by every process (database backend)."""

    workspace_key = models.CharField(max_length=128, unique=True)
    limit = models.PositiveIntegerField(default=0)
    remaining = models.IntegerField(default=0)
    reset_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace_key}: {self.remaining}/{self.limit}"
