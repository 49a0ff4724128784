"""The connector's data model: configuration, identity links, cursors, and the delivery/sync logs.

Setting names follow Hull's Intercom connector (docs/intercom-behaviour.md#settings) so a
support engineer who knows Hull's manifest finds each one under the same name and default.
"""

from __future__ import annotations

import secrets
from typing import Any
from datetime import timedelta

from django.db import models
from django.db.models import Q

from sync.crypto import EncryptedTextField
from sync.intercom.regions import DEFAULT_REGION, REGION_CHOICES

DEFAULT_INCOMING_EVENTS = ["user.created", "user.deleted", "contact.created"]


def default_incoming_events() -> list[str]:
    return list(DEFAULT_INCOMING_EVENTS)


def validate_hull_organization(value: str) -> None:
    """A bare host name under one of Hull's domains: the Hull secret is sent to it (docs/security.md)."""
    from django.conf import settings
    from django.core.exceptions import ValidationError

    from sync.net import host_under, is_dns_hostname

    domains = settings.HULL_ORGANIZATION_DOMAINS
    if not value:
        return
    if not is_dns_hostname(value) or not host_under(value, domains) or value in domains:
        raise ValidationError(
            "Enter the organization's host name only, like acme.hullapp.io: lower case, no https://, no path, "
            "no port, under " + " or ".join(domains) + "."
        )


def new_public_token() -> str:
    return secrets.token_urlsafe(24)


class Entity(models.TextChoices):
    USER = "user", "User"
    LEAD = "lead", "Lead"
    COMPANY = "company", "Company"


class Direction(models.TextChoices):
    INCOMING = "incoming", "Intercom → Hull"
    OUTGOING = "outgoing", "Hull → Intercom"


def validate_consent_mappings(value: object) -> None:
    """Each row names a Hull attribute and an Intercom subscription type (name or id)."""
    from django.core.exceptions import ValidationError

    if not isinstance(value, list):
        raise ValidationError("Give a list of objects, e.g. [{\"hull_attribute\": \"newsletter_consent\", \"subscription_type\": \"Newsletters\"}].")
    for row in value:
        if not isinstance(row, dict) or not str(row.get("hull_attribute") or "").strip() or not str(row.get("subscription_type") or "").strip():
            raise ValidationError("Every row needs a hull_attribute and a subscription_type (its name or id in Intercom).")


class Connector(models.Model):
    """One Hull connector instance bound to one Intercom workspace."""

    class SendBatchAs(models.TextChoices):
        USERS = "Users", "Users"
        LEADS = "Leads", "Leads"

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True, help_text="Appears in the URLs Hull and Intercom call.")
    is_active = models.BooleanField(default=True, help_text="Paused connectors store what they receive but sync nothing.")

    # Getting started: Hull credentials (reference/hull-platform.md §1.1).
    hull_organization = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_hull_organization],
        help_text='Hull organization host name, e.g. "acme.hullapp.io" (no https://, no path). Hull\'s API and firehose are found from it.',
    )
    hull_id = models.CharField("Hull connector id", max_length=64, blank=True, db_index=True)
    hull_secret = EncryptedTextField("Hull connector secret", blank=True)
    # Set by the demo set-up (sandbox/wiring.py), never in the admin, and used only while the
    # sandbox is enabled: Hull's URLs otherwise come from the organization (docs/security.md).
    hull_firehose_url = models.URLField(
        blank=True, editable=False, help_text="Demo only: the Hull sandbox's firehose, used while SANDBOX_ENABLED is on."
    )

    # Getting started: Intercom connection.
    intercom_workspace_id = models.CharField(max_length=64, blank=True)
    intercom_workspace_name = models.CharField(max_length=200, blank=True)
    intercom_access_token = EncryptedTextField(blank=True)
    intercom_client_secret = EncryptedTextField(
        blank=True, help_text="Client secret of the Intercom app, used to verify webhook signatures (defaults to INTERCOM_CLIENT_SECRET)."
    )
    intercom_region = models.CharField(
        "Intercom region",
        max_length=2,
        choices=REGION_CHOICES,
        default=DEFAULT_REGION,
        help_text="Where the Intercom workspace is hosted (its address: app.intercom.com is the United States, "
        "app.eu.intercom.com Europe, app.au.intercom.com Australia). Choose it before connecting.",
    )
    # Set by the demo set-up only (not editable), used only while the sandbox is enabled.
    intercom_api_base = models.URLField(
        blank=True, editable=False, help_text="Demo only: the Intercom sandbox's API, used while SANDBOX_ENABLED is on."
    )
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

    # Set when Intercom answered 401 (token revoked, app uninstalled): all of the connector's work is
    # held until Intercom is connected again (docs/lifecycle.md "Token refused").
    intercom_token_refused_at = models.DateTimeField(null=True, blank=True, editable=False)
    intercom_token_refused_error = models.TextField(blank=True, editable=False)

    # --- beyond the specification: removal, company moves, event-name limit, consent, support context, alerts
    class RemovalPolicy(models.TextChoices):
        NOTHING = "nothing", "Do nothing (the Intercom contact stays as it is)"
        ARCHIVE = "archive", "Archive the Intercom contact (it can be unarchived)"
        DELETE = "delete", "Delete the Intercom contact (permanent)"

    removal_policy = models.CharField(
        "When a user is deleted in Hull or leaves every synced segment",
        max_length=10,
        choices=RemovalPolicy.choices,
        default=RemovalPolicy.NOTHING,
        help_text=(
            "What happens to the Intercom contact this connector created or updated for a Hull user who is deleted "
            "in Hull, or who leaves the last segment of the User and Lead filters. Archive hides the contact in "
            "Intercom and can be undone there; delete removes it for good (its conversations stay in Intercom). "
            "Only contacts this connector has linked to the Hull user are touched; each one gets a line in the sync log."
        ),
    )
    move_company_memberships = models.BooleanField(
        "Detach users from their previous company",
        default=True,
        help_text=(
            "With “link users in Intercom” on: when a Hull user's account changes, the Intercom contact is attached "
            "to the new company and detached from the company of its previous Hull account. Companies added in "
            "Intercom by hand (not from a Hull account) are left alone."
        ),
    )
    event_name_limit = models.PositiveIntegerField(
        "Intercom event-name limit",
        default=120,
        help_text=(
            "Intercom's help centre documents about 120 distinct event names per workspace, and its API accepts "
            "events past the limit without an error (they do not show up). The dashboard warns from 100 names sent "
            "by this connector; other sources sending events to the workspace count too, so the real number is higher."
        ),
    )
    stop_new_event_names_at_limit = models.BooleanField(
        "Stop sending new event names past the limit",
        default=False,
        help_text=(
            "On: once this connector has sent as many distinct event names as the limit above, events with a name "
            "Intercom has not had from us are not sent, and each gets a skip line in the sync log saying so. "
            "Names already sent keep flowing."
        ),
    )
    consent_mappings = models.JSONField(
        "Consent → Intercom subscription types",
        default=list,
        blank=True,
        validators=[validate_consent_mappings],
        help_text=(
            'A list like [{"hull_attribute": "newsletter_consent", "subscription_type": "Newsletters"}]: each Hull '
            "attribute (true = consents, false = refuses) is sent to the Intercom subscription type of that name or id. "
            "For an opt-in type, true subscribes the person and false returns them to the default (not subscribed); "
            "for an opt-out type, false unsubscribes them and true returns them to the default (subscribed). "
            "Sent when the attribute changes in Hull, and when the person is first sent to Intercom."
        ),
    )
    support_context_traits = models.BooleanField(
        "Write support context to Hull",
        default=False,
        help_text=(
            "Keeps per-person Hull traits from Intercom conversations: open conversations, last conversation at, "
            "last rating and remark, seconds to the first admin reply. Needs the conversation topics (conversation.*, "
            "including conversation.rating.added) in the Intercom events whitelist and in the Intercom app's webhooks. "
            "Webhooks keep them current; an operator can rebuild them from Intercom's own conversation "
            "data (“Support context” in the README)."
        ),
    )
    alert_failure_threshold = models.PositiveIntegerField(
        "Alert after this many errors in an hour",
        default=25,
        help_text=(
            "The connector's editors get an email (at most one digest an hour) and the dashboard shows an alert "
            "when the sync log has this many error lines within an hour. 0 turns this alert off; the alerts for "
            "a connector in error or an Intercom token that no longer works always apply."
        ),
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
    def is_intercom_token_refused(self) -> bool:
        return self.intercom_token_refused_at is not None

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
    archived_at = models.DateTimeField(null=True, blank=True, help_text="Set when the removal policy archived the contact; it is unarchived when the user comes back.")
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

    class Reason(models.TextChoices):
        """Every skip/halt/error reason code of both directions (the message text says more)."""

        # outgoing skips (sync.outgoing.routing.SkipReason spells the same values)
        NOT_CONFIGURED = "not_configured", "Connector not configured"
        NOT_IN_SEGMENT = "not_in_segment", "Not in a synchronized segment"
        DELETED = "deleted", "Deleted"
        NO_BATCH_TYPE = "no_batch_type", "No batch type"
        NO_OUTGOING_ATTRIBUTES = "no_outgoing_attributes", "No outgoing attributes"
        NO_CHANGES = "no_changes", "No changes"
        NO_MAPPED_CHANGES = "no_mapped_changes", "No changes of mapped attributes"
        OWN_CHANGES_ONLY = "own_changes_only", "Only the connector's own changes"
        IDENTICAL_PAYLOAD = "identical_payload", "Identical to the last push"
        MISSING_IDENTITY = "missing_identity", "No email or external id"
        EVENTS_OFF = "events_off", "Events off"
        EVENT_NOT_WHITELISTED = "event_not_whitelisted", "Event not whitelisted"
        EVENT_FROM_INTERCOM = "event_from_intercom", "Event came from Intercom"
        CONTACT_NOT_SYNCED = "contact_not_synced", "Contact not synced"
        EVENT_NAME_LIMIT = "event_name_limit", "Past Intercom's event-name limit"
        # outgoing removal policy and erasure (docs/beyond-the-spec.md)
        REMOVAL_POLICY_NOTHING = "removal_policy_nothing", "Removal policy: leave the contact"
        REMOVAL_NO_CONTACT = "removal_no_contact", "Nothing to remove in Intercom"
        REMOVAL_ARCHIVED = "removal_archived", "Archived in Intercom"
        REMOVAL_DELETED = "removal_deleted", "Deleted in Intercom"
        ERASURE = "erasure", "Erased on request"
        # incoming skips
        TAG_IS_SEGMENT = "tag_is_segment", "Tag mirrors a Hull segment"
        MARK_DELETED_USERS_OFF = "mark_deleted_users_off", "Marking deleted users is off"
        MARK_DELETED_ACCOUNTS_OFF = "mark_deleted_accounts_off", "Marking deleted accounts is off"
        NO_CONTACT = "no_contact", "No contact in the payload"
        NO_INTERCOM_ID = "no_intercom_id", "No Intercom id"
        SUPPORT_CONTEXT_OFF = "support_context_off", "Support context is off"
        # errors and halts, both directions (sync/work.py classifies them)
        INTERCOM_ERROR = "intercom_error", "Intercom refused the entity"
        INTERNAL_ERROR = "internal_error", "Internal error"
        UNEXPECTED_ERROR = "unexpected_error", "Unexpected error"
        RATE_LIMITED = "rate_limited", "Rate limited (resumes)"
        INTERCOM_UNAVAILABLE = "intercom_unavailable", "Intercom unavailable (retried)"
        DATABASE_UNAVAILABLE = "database_unavailable", "Database unavailable (retried)"
        INTERCOM_UNAUTHORIZED = "intercom_unauthorized", "Intercom refused the token"
        MALFORMED_MESSAGE = "malformed_message", "Malformed Hull message"

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
        # Read by support staff (admin titles and breadcrumbs): words, not the action code.
        return f"{self.get_entity_display()} {self.email or self.hull_id or self.intercom_id}: {self.get_status_display().lower()}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Processed"
    IGNORED = "ignored", "Ignored"
    UNSUPPORTED = "unsupported", "Unsupported topic"
    FAILED = "failed", "Failed"


class WorkUnit(models.Model):
    """What a stored unit of work (a Hull notification or export, an Intercom webhook delivery) has:
    its identity from the sender, the payload, and the lifecycle's state (sync/work.py, docs/lifecycle.md).

    `lease_owner` / `lease_until` say who runs the unit now and until when; `resume_at` when a
    halted unit is due to resume (the stale-work sweep leaves those alone). Each try also leaves a
    `WorkAttempt` row.
    """

    RETENTION_PERIOD = timedelta(days=14)

    notification_id = models.CharField(max_length=128)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    resume_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True
        ordering = ["-received_at", "-id"]


class HullNotification(WorkUnit):
    """A notification (or export batch) from Hull, stored before we acknowledge it."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=64)
    is_export = models.BooleanField(default=False)
    raw_messages = models.BinaryField(
        null=True,
        blank=True,
        editable=False,
        help_text="The messages array as received (raw JSON), when the payload holds only the rest; parsed by the worker.",
    )
    message_count = models.PositiveIntegerField(default=0)
    processed_messages = models.JSONField(default=list, blank=True, help_text="Indexes already done (resume after a crash).")

    class Meta(WorkUnit.Meta):
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


class WebhookDelivery(WorkUnit):
    """A webhook notification from Intercom, stored before we answer 200."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="webhook_deliveries")
    topic = models.CharField(max_length=128)
    delivery_attempts = models.PositiveIntegerField(default=1, help_text="Intercom's own attempt counter.")

    class Meta(WorkUnit.Meta):
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


class WorkAttempt(models.Model):
    """One try at one unit of work (a notification, an export, a webhook delivery, a fetch step).

    Written when the try starts and closed when it ends, so a replay or a resume adds a row instead
    of erasing what happened before (docs/lifecycle.md). Deleted with its notification or delivery
    (retention); a fetch cursor lives on, so its rows go once older than RETENTION_PERIOD.
    """

    RETENTION_PERIOD = WorkUnit.RETENTION_PERIOD

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        HALTED = "halted", "Halted (resumes later)"
        HELD = "held", "Held (Intercom token refused)"
        RETRY = "retry", "Transient failure (retried)"
        FAILED = "failed", "Failed"
        LOST = "lost", "Lost (the worker died; the lease expired)"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="work_attempts")
    notification = models.ForeignKey(HullNotification, null=True, blank=True, on_delete=models.CASCADE, related_name="work_attempts")
    delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.CASCADE, related_name="work_attempts")
    cursor = models.ForeignKey(SyncCursor, null=True, blank=True, on_delete=models.CASCADE, related_name="work_attempts")
    number = models.PositiveIntegerField(
        default=1, help_text="The unit's attempt counter at this try (for a fetch step: the tries at this page of the run)."
    )
    page = models.PositiveIntegerField(null=True, blank=True, help_text="Fetch steps: the page of the run this try fetched (1 is the first).")
    owner = models.CharField(max_length=64, blank=True, help_text="The lease owner (worker process and a random part).")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connector", "-started_at"])]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"

class IdentityLock(models.Model):
    """One outgoing push in flight for an identity of a workspace (sync/outgoing/locks.py).

    A row is the lock: inserting it takes the lock (the unique key refuses a second holder on any
    database, SQLite included, across threads and processes), deleting it releases it, and
    `expires_at` lets a crashed holder's lock be taken over. `owner` "unsettled" marks an identity
    whose create had an unknown outcome: nobody creates it again until Intercom's search settles.
    """

    key = models.CharField(max_length=128, unique=True)
    owner = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} ({self.owner})"

# --- beyond the specification (docs/beyond-the-spec.md) ------------------------------------------------


class ErasureAudit(models.Model):
    """Who erased which person from Intercom, and when: a hash of the identity, never the identity itself."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="erasures")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="The admin user, or 'command' with the OS user.")
    identity_kind = models.CharField(max_length=16, help_text="email, external_id or hull_id.")
    identity_hash = models.CharField(max_length=64, help_text="SHA-256 of the connector key and the identity; proves a request was handled without keeping it.")
    contacts_deleted = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16)
    detail = models.TextField(blank=True, help_text="What happened, without personal data.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"erasure {self.identity_kind} {self.identity_hash[:12]}… {self.outcome}"


class SentEventName(models.Model):
    """A distinct event name this connector has sent to the Intercom workspace (a lower bound of its count)."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="sent_event_names")
    name = models.CharField(max_length=255)
    first_sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["first_sent_at", "id"]
        constraints = [models.UniqueConstraint(fields=["connector", "name"], name="unique_sent_event_name")]

    def __str__(self) -> str:
        return self.name


class ConnectorAlert(models.Model):
    """Something an editor must look at; shown on the dashboard until acknowledged, emailed in hourly digests."""

    class Kind(models.TextChoices):
        ERROR_STATE = "error_state", "Connector in error"
        TOKEN_LOST = "token_lost", "Intercom token no longer works"
        FAILURES = "failures", "Failures past the threshold"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField()
    occurrences = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connector", "acknowledged_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text[:60]}"


class SupportConversation(models.Model):
    """What the support-context traits are computed from: one Intercom conversation of one contact."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="support_conversations")
    conversation_id = models.CharField(max_length=64)
    contact_id = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=16, default="open", help_text="open, snoozed or closed.")
    state_at = models.BigIntegerField(default=0, help_text="Time (unix) of the news the state comes from: older news never overwrites it.")
    created_at_remote = models.BigIntegerField(null=True, blank=True)
    first_admin_reply_at = models.BigIntegerField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    remark = models.TextField(blank=True)
    rated_at = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connector", "conversation_id"], name="unique_support_conversation")]

    def __str__(self) -> str:
        return f"conversation {self.conversation_id} ({self.state})"


class ConsentState(models.Model):
    """The subscription states last seen for one Intercom contact: a change becomes a Hull event once."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="consent_states")
    contact_id = models.CharField(max_length=64)
    states = models.JSONField(default=dict, blank=True, help_text="subscription type id -> subscribed")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connector", "contact_id"], name="unique_consent_state")]
