"""State of the Hull organization stand-in: users, accounts, events, segments, and every call seen."""

from __future__ import annotations

from django.db import models


class SandboxUser(models.Model):
    """A Hull user as the platform reports it: custom attributes keep their `traits_` prefix."""

    hull_id = models.CharField(max_length=24, unique=True)
    organization = models.CharField(max_length=255, db_index=True)
    email = models.CharField(max_length=255, blank=True, db_index=True)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    anonymous_ids = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    account = models.ForeignKey("SandboxAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="users")
    segment_ids = models.JSONField(default=list, blank=True)
    # What changed since the last notification about this user (consumed by the notifier).
    pending_changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    indexed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.email or self.external_id or self.hull_id


class SandboxAccount(models.Model):
    hull_id = models.CharField(max_length=24, unique=True)
    organization = models.CharField(max_length=255, db_index=True)
    domain = models.CharField(max_length=255, blank=True, db_index=True)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    anonymous_ids = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    segment_ids = models.JSONField(default=list, blank=True)
    pending_changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    indexed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.domain or self.external_id or self.hull_id


class SandboxEvent(models.Model):
    user = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=255)
    event = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.CharField(max_length=64, blank=True)
    delivered = models.BooleanField(default=False, help_text="Already sent in a notification.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event_id"], name="sandbox_hull_unique_event")]


class SandboxSegment(models.Model):
    """A segment: membership is `rule` (attribute equals value) or the static `member_ids`."""

    class Kind(models.TextChoices):
        USERS = "users_segment", "Users segment"
        ACCOUNTS = "accounts_segment", "Accounts segment"

    hull_id = models.CharField(max_length=24, unique=True)
    organization = models.CharField(max_length=255, db_index=True)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.USERS)
    rule = models.JSONField(default=dict, blank=True, help_text='e.g. {"attribute": "traits_plan", "equals": "pro"}')
    member_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class SandboxCall(models.Model):
    """Every request the stand-in received or sent (firehose, REST, notifications, exports)."""

    kind = models.CharField(max_length=20)  # firehose | rest | notify | batch | export-file
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=1000)
    connector_id = models.CharField(max_length=64, blank=True)
    body = models.JSONField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(default=200)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class SandboxFirehoseRecord(models.Model):
    """One decoded firehose record and what the stand-in did with it."""

    call = models.ForeignKey(SandboxCall, on_delete=models.CASCADE, related_name="records")
    type = models.CharField(max_length=20)
    claims = models.JSONField(default=dict)
    body = models.JSONField(default=dict)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]


class SandboxConnectorStatus(models.Model):
    connector_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=20)
    messages = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)


class SandboxExportFile(models.Model):
    """A newline-delimited JSON export, served at /sandbox/hull/_exports/<token>."""

    token = models.CharField(max_length=64, unique=True)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
