"""Creates the two staff groups of the admin, idempotently (safe on every deploy).

- "Connector editors" configure connectors (settings, identity, mappings), run their actions and
  replay failed deliveries (the change permission on a log model means "may replay": rows stay
  read-only for everyone).
- "Log readers" read logs only: sync log, notifications, deliveries, identity links, cursors.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

LOG_MODELS = ["synclog", "hullnotification", "webhookdelivery", "identitylink", "synccursor", "hullsegment"]

GROUP_PERMISSIONS: dict[str, list[str]] = {
    "Connector editors": [
        *(f"{verb}_{model}" for model in ("connector",) for verb in ("add", "change", "view")),
        *(f"{verb}_{model}" for model in ("identityclaim", "fieldmapping") for verb in ("add", "change", "delete", "view")),
        *(f"view_{model}" for model in LOG_MODELS),
        "change_hullnotification",
        "change_webhookdelivery",
    ],
    "Log readers": [f"view_{model}" for model in LOG_MODELS],
}


@transaction.atomic
def groups_setup() -> dict[str, Group]:
    """Create or update the groups so each has exactly its listed permissions on the `sync` models."""
    groups: dict[str, Group] = {}
    for name, codenames in GROUP_PERMISSIONS.items():
        permissions = list(Permission.objects.filter(content_type__app_label="sync", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise CommandError(f"Unknown permissions {sorted(missing)}: run migrate first.")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
        groups[name] = group
    return groups


class Command(BaseCommand):
    help = 'Create or update the staff groups "Connector editors" and "Log readers".'

    def handle(self, *args: Any, **options: Any) -> None:
        for name, group in groups_setup().items():
            self.stdout.write(f"{name}: {group.permissions.count()} permissions")
