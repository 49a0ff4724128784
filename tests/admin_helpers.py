"""Helpers shared by the admin tests: posting the connector form as the browser would."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

from django.test import Client
from django.urls import reverse

from sync.models import Connector


def form_data(client: Client, connector: Connector) -> dict[str, Any]:
    """Every field of the connector change page, as the browser would submit it unchanged."""
    response = client.get(reverse("admin:sync_connector_change", args=[connector.pk]))
    assert response.status_code == 200
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        if name in form._meta.fields or name in form.declared_fields:
            value = form[name].value()
            if isinstance(value, bool):
                if value:
                    data[name] = "on"
            elif isinstance(value, (list, tuple)):
                data[name] = list(value) if not name == "outgoing_events" else "\n".join(value)
            elif value is not None:
                data[name] = value
    for name in ("hull_secret", "intercom_access_token", "intercom_client_secret"):
        data[name] = ""  # PasswordInput never renders the stored value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        prefix = formset.prefix
        data[f"{prefix}-TOTAL_FORMS"] = str(formset.total_form_count())
        data[f"{prefix}-INITIAL_FORMS"] = str(formset.initial_form_count())
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "1000"
        for index, sub in enumerate(formset.forms):
            for name in sub.fields:
                value = sub[name].value()
                key = f"{prefix}-{index}-{name}"
                if isinstance(value, bool):
                    if value:
                        data[key] = "on"
                elif value is not None:
                    data[key] = value
    return data


def formset_prefix(client: Client, connector: Connector, verbose_name_plural_start: str) -> str:
    response = client.get(reverse("admin:sync_connector_change", args=[connector.pk]))
    for inline in response.context["inline_admin_formsets"]:
        if str(inline.opts.verbose_name_plural).startswith(verbose_name_plural_start):
            return inline.formset.prefix
    raise AssertionError(f"no inline {verbose_name_plural_start!r}")


def add_row(data: dict[str, Any], prefix: str, **values: Any) -> None:
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in values.items():
        if value is True:
            data[f"{prefix}-{index}-{name}"] = "on"
        elif value is not False:
            data[f"{prefix}-{index}-{name}"] = value


def fake_module(monkeypatch: Any, dotted: str, **functions: Callable) -> types.ModuleType:
    """Stand in for a service module, so the admin's wiring is tested apart from the sync logic."""
    module = types.ModuleType(dotted)
    for name, function in functions.items():
        setattr(module, name, function)
    monkeypatch.setitem(sys.modules, dotted, module)
    parent, _, child = dotted.rpartition(".")
    if parent in sys.modules:
        monkeypatch.setattr(sys.modules[parent], child, module, raising=False)
    return module


class Recorder:
    """A service stand-in that records its keyword arguments (and may fail)."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.result = result
        self.error = error

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.result
