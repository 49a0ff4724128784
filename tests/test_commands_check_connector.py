"""`manage.py check_connector`: each check, the happy path, and a non-zero exit with the reason."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sync.models import DeliveryStatus, WebhookDelivery
from sync.services.connectors import connector_create
from sync.services.ops import connector_check


def run(*args: str) -> str:
    out = StringIO()
    call_command("check_connector", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_a_configured_connector_is_ready(connector, intercom_sandbox, hull_sandbox, settings):
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    output = run("--connector", "acme")
    assert "[OK  ] Hull: Hull accepts the connector's credentials for acme.hullapp.io." in output
    assert "[OK  ] Intercom: Intercom answers GET /me" in output
    assert "[OK  ] Webhook address: Webhook URL https://connector.example.com/intercom/acme/webhooks" in output
    assert "[OK  ] Intercom rate limit:" in output
    assert "[OK  ] Queue: 0 waiting, 0 failed." in output
    assert output.strip().endswith("acme is ready.")
    assert ("GET", "/me") in [(call.method, call.path) for call in intercom_sandbox.calls]


def test_a_refused_token_fails_with_intercoms_answer(connector, intercom_sandbox, hull_sandbox):
    connector.intercom_access_token = "not-a-token"
    connector.save()
    with pytest.raises(CommandError, match=r"acme is not ready: Intercom refused GET /me \(HTTP 401\)"):
        run("--connector", "acme")


def test_missing_credentials_fail_with_what_is_missing(db):
    connector_create(name="Bare", slug="bare")
    with pytest.raises(CommandError) as failure:
        run("--connector", "bare")
    message = str(failure.value)
    assert "Hull credentials missing: organization, connector id, secret." in message
    assert "Intercom is not connected" in message


def test_a_wrong_hull_secret_fails_with_hulls_answer(connector, intercom_sandbox, hull_sandbox):
    # The sandbox trusts the Connector row, so the wrong secret is given to the client directly.
    from sync.hull.client import HullClient

    wrong = HullClient(connector.hull_id, "not-the-secret", connector.hull_organization)
    result = connector_check(connector=connector, hull_client=wrong)
    assert not result.ok
    [failure] = result.failures
    assert failure.message.startswith("Hull refused the connector's credentials for acme.hullapp.io (HTTP 401)")


def test_warnings_do_not_fail_the_check(connector, intercom_sandbox, hull_sandbox, settings):
    settings.PUBLIC_BASE_URL = "http://connector.example.com"
    connector.is_active = False
    connector.save()
    WebhookDelivery.objects.create(connector=connector, notification_id="n1", topic="user.created", status=DeliveryStatus.FAILED)
    result = connector_check(connector=connector)
    assert result.ok
    levels = {item.name: item.level for item in result.items}
    assert levels == {"active": "warning", "hull": "ok", "intercom": "ok", "webhook": "warning", "rate budget": "ok", "queue": "warning"}
    assert "manage.py replay" in [item for item in result.items if item.name == "queue"][0].message


def test_an_unknown_connector_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No connector with slug 'nope'"):
        run("--connector", "nope")
