"""Creating connectors and giving them their defaults."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from sync import defaults
from sync.models import Connector, Direction, Entity, FieldMapping, IdentityClaim


@transaction.atomic
def connector_apply_defaults(*, connector: Connector) -> None:
    """Add the default identity claims and incoming mappings a new connector starts with.

    Idempotent: rows that already exist (same target) are left as they are.
    """
    for entity, claims in defaults.DEFAULT_CLAIMS.items():
        for priority, (hull_attribute, intercom_attribute) in enumerate(claims):
            IdentityClaim.objects.get_or_create(
                connector=connector,
                entity=entity,
                hull_attribute=hull_attribute,
                intercom_attribute=intercom_attribute,
                defaults={"priority": priority},
            )
    for entity, group in ((Entity.USER, defaults.USER_GROUP), (Entity.LEAD, defaults.LEAD_GROUP)):
        for intercom_field, hull_name in defaults.CONTACT_INCOMING_FIELDS:
            FieldMapping.objects.get_or_create(
                connector=connector,
                entity=entity,
                direction=Direction.INCOMING,
                hull_attribute=f"{group}/{hull_name}",
                defaults={
                    "intercom_attribute": intercom_field,
                    "overwrite": True,
                    "read_only": intercom_field in defaults.CONTACT_READ_ONLY,
                },
            )
    for intercom_field, hull_name in defaults.COMPANY_INCOMING_FIELDS:
        FieldMapping.objects.get_or_create(
            connector=connector,
            entity=Entity.COMPANY,
            direction=Direction.INCOMING,
            hull_attribute=f"{defaults.ACCOUNT_GROUP}/{hull_name}",
            defaults={"intercom_attribute": intercom_field, "overwrite": True, "read_only": True},
        )


@transaction.atomic
def connector_create(*, name: str, slug: str, **fields: Any) -> Connector:
    """Create a connector with its default claims and mappings."""
    connector = Connector.objects.create(name=name, slug=slug, **fields)
    connector_apply_defaults(connector=connector)
    return connector
