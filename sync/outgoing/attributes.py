"""Intercom custom data attributes for the outgoing mappings.

Intercom rejects a write naming a custom attribute that does not exist (docs/intercom-api.md#data-attributes).
docs/decisions.md#attributes-and-events: create them when settings are saved (`data_attributes_sync`, Hull's
`syncDataAttributes` on `ship:update`) and, lazily, when a push is rejected for one (then the push
is retried once). The data type follows the Hull value, not always `string` (Hull's connector's
choice, docs/intercom-behaviour.md#data-attributes).
"""

from __future__ import annotations

import logging
from typing import Any

from sync.intercom.errors import IntercomValidationError
from sync.mapping import (
    COMPANY_STANDARD_FIELDS,
    CONTACT_STANDARD_FIELDS,
    intercom_data_type,
    is_date_attribute,
    mapping_rows,
)
from sync.models import Connector, Direction, Entity

logger = logging.getLogger("sync.outgoing.attributes")

MODEL_FOR_ENTITY = {Entity.USER: "contact", Entity.LEAD: "contact", Entity.COMPANY: "company"}


def _custom_target(entity: str, intercom_attribute: str) -> str | None:
    standard = COMPANY_STANDARD_FIELDS if entity == Entity.COMPANY else CONTACT_STANDARD_FIELDS
    if intercom_attribute.startswith("custom_attributes."):
        return intercom_attribute[len("custom_attributes.") :]
    return None if intercom_attribute in standard else intercom_attribute


def _type_for_mapping(hull_attribute: str) -> str:
    """Without a value at hand, the attribute's name is all we have: `*_at`/`*_date` are dates."""
    return "date" if is_date_attribute(hull_attribute) else "string"


def data_attribute_create(*, intercom: Any, model: str, name: str, hull_attribute: str = "", value: Any = None) -> bool:
    """Create one custom attribute typed from the Hull value; False when Intercom says it exists."""
    if value is not None:
        data_type = intercom_data_type(value, hull_attribute=hull_attribute)
    else:
        data_type = _type_for_mapping(hull_attribute)
    try:
        intercom.create_data_attribute(name=name, model=model, data_type=data_type)
    except IntercomValidationError as exc:
        # "You already have 'x' in your company data": another worker (or a person) was first.
        if "already" in (exc.message or "").lower():
            return False
        raise
    logger.info("outgoing.attribute.created", extra={"attribute": name, "model": model, "data_type": data_type})
    return True


def data_attributes_sync(*, connector: Connector, intercom: Any = None) -> list[tuple[str, str]]:
    """Create every custom attribute the outgoing mappings write that Intercom does not have yet.

    Returns the (model, name) pairs created. Called when settings are saved (`ship:update`, admin).
    """
    if not connector.is_intercom_connected:
        return []
    if intercom is None:
        from sync.intercom.client import IntercomClient

        intercom = IntercomClient.for_connector(connector)
    wanted: dict[str, dict[str, str]] = {"contact": {}, "company": {}}
    for entity in (Entity.USER, Entity.LEAD, Entity.COMPANY):
        for row in mapping_rows(connector, entity, Direction.OUTGOING):
            name = _custom_target(entity, row.intercom_attribute)
            if name:
                wanted[MODEL_FOR_ENTITY[entity]].setdefault(name, row.hull_attribute)
    created: list[tuple[str, str]] = []
    for model, names in wanted.items():
        if not names:
            continue
        existing = {str(a.get("name")) for a in (intercom.list_data_attributes(model).get("data") or [])}
        for name, hull_attribute in names.items():
            if name in existing:
                continue
            if data_attribute_create(intercom=intercom, model=model, name=name, hull_attribute=hull_attribute):
                created.append((model, name))
    return created
